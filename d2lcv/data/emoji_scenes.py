"""The emoji detection generator: Noto emoji (with their alpha channel) composited onto real
photos, paintings and upscaled CIFAR-10 images, with COCO-format annotations (Lin et al.,
ECCV 2014). Deterministic for a seed; :class:`~d2lcv.data.EmojiDetection` reads it."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from d2lcv.utils.progress import progress as progress_bar

from .backgrounds import background_pools, random_background
from .images import emoji
from .scene_presets import HARD_SCENES, check_distractors, paste_order, scene_emoji_codes

__all__ = [
    "EMOJI_DETECTION_CLASSES",
    "GENERATOR_VERSION",
    "BACKGROUNDS",
    "SPLITS",
    "SceneSettings",
    "compose_scene",
    "generate_emoji_detection",
]

EMOJI_DETECTION_CLASSES: tuple[str, ...] = ("apple", "banana", "grapes", "kiwi", "carrot")
"""The default classes: five fruit/vegetable emoji of distinct shape and colour."""


GENERATOR_VERSION = 1
"""Bumped whenever the generator's output changes; part of the cache folder's name."""


BACKGROUNDS = ("photos", "paintings", "cifar10")
"""Background sources: d2l's and scikit-image's photos, the paintings, upscaled CIFAR-10."""

SPLITS = ("train", "val", "test")
_SPLIT_SEED = {"train": 0, "val": 1, "test": 2}


@dataclass(frozen=True)
class SceneSettings:
    """Everything the generator's output depends on (the cache folder is named by it).

    Attributes:
        sizes: images per split, e.g. ``{"train": 1000, "val": 200, "test": 200}``.
        classes: emoji names (see :data:`~d2lcv.data.EMOJI_NAMES`) or hex codepoints.
        image_size: side of the square images in pixels.
        seed: the seed.
        backgrounds: a subset of :data:`BACKGROUNDS`.
        num_objects, object_size, max_occlusion: see :func:`compose_scene`.
        distractors, num_distractors: unlabelled emoji (none by default), and (min, max) of
            them per image; the defaults keep the easy set's output and folder as they were.
    """

    sizes: dict[str, int] = dataclasses.field(default_factory=lambda: {"train": 1000, "val": 200, "test": 200})
    classes: tuple[str, ...] = EMOJI_DETECTION_CLASSES
    image_size: int = 128
    seed: int = 0
    backgrounds: tuple[str, ...] = BACKGROUNDS
    num_objects: tuple[int, int] = (1, 6)
    object_size: tuple[float, float] = (0.16, 0.45)
    max_occlusion: float = 0.4
    distractors: tuple[str, ...] = ()
    num_distractors: tuple[int, int] = (0, 0)

    def __post_init__(self) -> None:
        bad = [s for s in self.sizes if s not in SPLITS]
        if bad or any(int(n) < 0 for n in self.sizes.values()):
            raise ValueError(f"sizes must map splits {SPLITS} to counts >= 0, got {self.sizes}")
        if not self.backgrounds or any(b not in BACKGROUNDS for b in self.backgrounds):
            raise ValueError(f"backgrounds must be a non-empty subset of {BACKGROUNDS}, got {self.backgrounds}")
        check_distractors(self.distractors, self.num_distractors)
        if set(self.distractors) & set(self.classes):
            raise ValueError(f"distractors must not be classes, got {sorted(set(self.distractors) & set(self.classes))}")

    @classmethod
    def hard(cls, **overrides: Any) -> SceneSettings:
        """The harder preset :data:`~d2lcv.data.HARD_SCENES`, ``overrides`` replacing fields."""
        return cls.create(**{**HARD_SCENES, **overrides})

    @classmethod
    def create(cls, settings: SceneSettings | None = None, **kwargs: Any) -> SceneSettings:
        """``settings`` as it is, or settings built from keyword arguments (not both)."""
        if settings is not None and kwargs:
            raise ValueError(f"give settings or keyword arguments, not both; got settings and {sorted(kwargs)}")
        if settings is not None:
            return settings
        unknown = sorted(set(kwargs) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise TypeError(f"unknown generator settings {unknown}; see d2lcv.data.SceneSettings")
        kwargs = {k: v for k, v in kwargs.items() if not (k == "sizes" and v is None)}
        for name in ("classes", "backgrounds", "num_objects", "object_size", "distractors", "num_distractors"):
            if name in kwargs:
                kwargs[name] = tuple(kwargs[name])
        return cls(**kwargs)

    def folder_name(self) -> str:
        """A readable, unique folder name for these settings."""
        settings = dict(
            sizes=dict(self.sizes), classes=list(self.classes), image_size=int(self.image_size), seed=int(self.seed),
            backgrounds=sorted(self.backgrounds), num_objects=list(self.num_objects),
            object_size=list(self.object_size), max_occlusion=float(self.max_occlusion),
        )
        if self.distractors or tuple(self.num_distractors) != (0, 0):  # else the name is as before
            settings.update(distractors=list(self.distractors), num_distractors=list(self.num_distractors))
        digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:8]
        sizes = self.sizes
        return (f"v{GENERATOR_VERSION}-seed{self.seed}-{self.image_size}px-"
                f"{sizes.get('train', 0)}-{sizes.get('val', 0)}-{sizes.get('test', 0)}-{digest}")


def _check_scene(sprites: Sequence[Image.Image], num_objects: tuple[int, int],
                 object_size: tuple[float, float]) -> None:
    if not sprites:
        raise ValueError("sprites is empty: give one RGBA image per class")
    if not 1 <= num_objects[0] <= num_objects[1]:
        raise ValueError(f"num_objects must be (min, max) with 1 <= min <= max, got {num_objects}")
    if not 0 < object_size[0] <= object_size[1] <= 1:
        raise ValueError(f"object_size must be (min, max) fractions in (0, 1], got {object_size}")


def _random_sprite(sprite: Image.Image, object_size: tuple[float, float], side: int,
                   rng: np.random.Generator) -> Image.Image:
    """``sprite`` resized to a log-uniform fraction of ``side`` pixels, mirrored half the time."""
    s = max(2, round(float(np.exp(rng.uniform(*np.log(object_size)))) * side))
    sprite = sprite.resize((s, s), Image.Resampling.BILINEAR)
    if rng.random() < 0.5:
        sprite = sprite.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return sprite


def _boxes(owner: np.ndarray, labels: list[int]) -> tuple[Tensor, Tensor, Tensor]:
    """The tight box, class and area of the visible pixels of each object still visible
    (label -1, a distractor, is left out)."""
    boxes, areas, kept = [], [], []
    for k, label in enumerate(labels):
        ys, xs = np.nonzero(owner == k)
        if len(xs) and label >= 0:
            boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
            areas.append(len(xs))
            kept.append(label)
    return (torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
            torch.tensor(kept, dtype=torch.int64), torch.tensor(areas, dtype=torch.float32))


def compose_scene(
    background: Image.Image, sprites: Sequence[Image.Image],
    rng: np.random.Generator, *, num_objects: tuple[int, int] = (1, 6),
    object_size: tuple[float, float] = (0.16, 0.45), max_occlusion: float = 0.4,
    tries: int = 20, distractors: Sequence[Image.Image] = (),
    num_distractors: tuple[int, int] = (0, 0),
) -> tuple[Image.Image, Tensor, Tensor, Tensor]:
    """Paste random objects (RGBA sprites) onto a background, and annotate them.

    Each object is a sprite of a random class, resized so its side is ``object_size`` (a
    fraction of the image side, drawn log-uniformly), maybe mirrored, and placed at a random
    position fully inside the image. Later objects may hide earlier ones, but a placement that
    leaves any object with less than ``1 - max_occlusion`` of its pixels visible is redrawn
    (up to ``tries`` times, else that object is skipped). Distractors are pasted the same
    way, in random order among the objects, but not annotated.

    Args:
        background: RGB image, H x W.
        sprites: one RGBA image per class; alpha >= 128 counts as the object.
        rng: the source of randomness.
        num_objects: (min, max) objects per image, inclusive.
        object_size: (min, max) side of an object as a fraction of ``min(H, W)``.
        max_occlusion: the largest hidden fraction of any object's pixels.
        distractors, num_distractors: RGBA images pasted unlabelled, (min, max) of them.

    Returns:
        ``(image, boxes, labels, areas)``: RGB image; boxes Tensor[G, 4] float32 xyxy pixels
        (the tight box of each object's *visible* pixels, pixel edges: ``x2 = last column + 1``);
        labels Tensor[G] int64 class indices into ``sprites``; areas Tensor[G] float32 visible pixels.
    """
    _check_scene(sprites, num_objects, object_size)
    check_distractors(distractors, num_distractors)
    canvas = background.convert("RGBA")
    W, H = canvas.size
    owner = np.full((H, W), -1, dtype=np.int16)  # the object each pixel shows; -1: none
    full: list[int] = []  # each placed object's pixel count
    labels: list[int] = []  # and its class; -1: a distractor
    for labelled in paste_order(num_objects, num_distractors, rng):
        pool = sprites if labelled else distractors
        label = int(rng.integers(len(pool)))
        sprite = _random_sprite(pool[label], object_size, min(H, W), rng)
        mask, s, k = np.asarray(sprite)[..., 3] >= 128, sprite.size[0], len(full)
        for _ in range(tries):
            x, y = int(rng.integers(W - s + 1)), int(rng.integers(H - s + 1))
            trial = owner.copy()
            trial[y : y + s, x : x + s][mask] = k
            visible = np.bincount(trial[trial >= 0].ravel(), minlength=k + 1)[:k]
            if all(v >= (1 - max_occlusion) * f for v, f in zip(visible, full)):
                owner = trial
                canvas.alpha_composite(sprite, (x, y))
                full.append(int(mask.sum()))
                labels.append(label if labelled else -1)
                break
    return (canvas.convert("RGB"), *_boxes(owner, labels))


def _coco(split: str, classes: Sequence[str], records: list[dict[str, Any]], size: int) -> dict[str, Any]:
    images, annotations = [], []
    for image_id, rec in enumerate(records, start=1):
        images.append({"id": image_id, "file_name": rec["file_name"], "width": size, "height": size})
        for box, label, area in zip(rec["boxes"].tolist(), rec["labels"].tolist(), rec["areas"].tolist()):
            x1, y1, x2, y2 = box
            annotations.append({
                "id": len(annotations) + 1, "image_id": image_id, "category_id": label + 1,
                "bbox": [x1, y1, x2 - x1, y2 - y1], "area": area, "iscrowd": 0,
            })
    return {
        "info": {"description": f"d2lcv emoji detection, {split} split (generator v{GENERATOR_VERSION})"},
        "licenses": [{
            "id": 1, "name": "objects: Noto Emoji (OFL 1.1 / Apache-2.0); backgrounds: see d2lcv.data.REGISTRY",
        }],
        "images": images,
        "annotations": annotations,
        "categories": [{"id": i + 1, "name": c, "supercategory": "food"} for i, c in enumerate(classes)],
    }


def generate_emoji_detection(
    root: str | os.PathLike,
    settings: SceneSettings | None = None,
    *,
    download: bool | None = None,
    progress: bool = True,
    **kwargs: Any,
) -> Path:
    """Generate the emoji detection dataset into ``root`` (created atomically).

    Writes ``<split>/<index>.jpg`` (JPEG, quality 95) and ``instances_<split>.json`` (COCO
    format: ``bbox`` is ``[x, y, w, h]`` in pixels, ``category_id`` is the class index + 1)
    for each split in ``sizes``. Each split draws from its own seeded generator, so the
    output depends only on the arguments. Everything is written to a temporary folder next
    to ``root`` and renamed onto it at the end; an existing ``root`` is returned as it is.

    Args:
        root: the dataset folder.
        settings: the generator's settings (:class:`SceneSettings`); or give its fields as
            keyword arguments (``sizes=..., image_size=...``).
        download: allow downloads (emoji, backgrounds); None: unless ``$D2LCV_OFFLINE``.

    Returns:
        ``root`` as a Path.
    """
    st = SceneSettings.create(settings, **kwargs)
    root = Path(root)
    if root.exists():
        return root
    sprites = emoji(scene_emoji_codes(st.classes), download=download)
    clutter = emoji(scene_emoji_codes(st.distractors), download=download)
    pools = background_pools(st.backgrounds, download)
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.", suffix=".partial", dir=root.parent))
    try:
        for split, n in st.sizes.items():
            rng = np.random.default_rng([st.seed, _SPLIT_SEED[split]])
            if "cifar10" in pools:  # CIFAR-10's training images for train, its test images otherwise
                split_pools = {**pools, "cifar10": pools["cifar10"]["train" if split == "train" else "test"]}
            else:
                split_pools = pools
            (tmp / split).mkdir()
            records = []
            for i in progress_bar(range(n), progress, desc=f"generating {split}", leave=False):
                bg = random_background(split_pools, st.image_size, rng)
                img, boxes, labels, areas = compose_scene(
                    bg, sprites, rng, num_objects=st.num_objects, object_size=st.object_size,
                    max_occlusion=st.max_occlusion, distractors=clutter, num_distractors=st.num_distractors,
                )
                name = f"{split}/{i:06d}.jpg"
                img.save(tmp / name, quality=95)
                records.append({"file_name": name, "boxes": boxes, "labels": labels, "areas": areas})
            coco = _coco(split, st.classes, records, st.image_size)
            (tmp / f"instances_{split}.json").write_text(json.dumps(coco))
        os.chmod(tmp, 0o755)  # mkdtemp makes it 0700
        try:
            os.replace(tmp, root)
        except OSError:  # another process finished first: keep its copy
            if not root.exists():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return root
