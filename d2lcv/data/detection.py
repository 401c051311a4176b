"""Object detection data: a generated multi-class emoji dataset, and d2l's banana set.

:class:`EmojiDetection` composites real object images (Noto emoji with their alpha channel)
onto real photos (random crops of d2l's sample photos, scikit-image's photos, public-domain
paintings, upscaled CIFAR-10 images): 1 to 6 objects per image, at varied scales, with some
partial occlusion, in train / val / test splits with COCO-format annotations. It is
deterministic for a seed, generated once and cached under
``<cache>/emoji-detection/<settings>/``::

    train_set = EmojiDetection("train")
    image, target = train_set[0]      # uint8 Tensor[3, H, W]; target["boxes"] xyxy pixels
    train_set.coco_json               # path of the COCO annotation file of the split

:class:`BananaDetection` reads d2l's banana detection set (one banana per image), which has
no offline copy: it needs a download (or a local copy of ``banana-detection.zip``).

Reference: Lin et al., Microsoft COCO: Common Objects in Context, ECCV 2014 (the format).
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset

from ._download import cache_dir, extract
from .images import CONTENT_PHOTOS, PAINTINGS, PHOTOS, content_photo, emoji, load_image, painting
from .registry import fetch

__all__ = [
    "EMOJI_DETECTION_CLASSES",
    "GENERATOR_VERSION",
    "BACKGROUNDS",
    "compose_scene",
    "generate_emoji_detection",
    "EmojiDetection",
    "BananaDetection",
    "detection_collate",
]

EMOJI_DETECTION_CLASSES: tuple[str, ...] = ("apple", "banana", "grapes", "kiwi", "carrot")
"""The default classes: five fruit/vegetable emoji of distinct shape and colour."""

GENERATOR_VERSION = 1
"""Bumped whenever the generator's output changes; part of the cache folder's name."""

BACKGROUNDS = ("photos", "paintings", "cifar10")
"""Background sources: d2l's and scikit-image's photos, the paintings, upscaled CIFAR-10."""

_SPLITS = ("train", "val", "test")
_SPLIT_SEED = {"train": 0, "val": 1, "test": 2}


# ---------------------------------------------------------------------------- scenes


def _random_background(pools: dict[str, Any], size: int, rng: np.random.Generator) -> Image.Image:
    """A size x size RGB background: a random crop of a big picture, or an upscaled CIFAR image."""
    kinds = sorted(pools)
    kind = kinds[rng.integers(len(kinds))]
    if kind == "cifar10":
        images = pools[kind]  # uint8 [N, 32, 32, 3]
        img = Image.fromarray(images[rng.integers(len(images))])
        return img.resize((size, size), Image.Resampling.BICUBIC)
    pictures = pools[kind]
    img = pictures[rng.integers(len(pictures))]
    W, H = img.size
    side = int(rng.integers(min(size, W, H), min(W, H) + 1))  # crop side: from `size` px to the whole
    x, y = int(rng.integers(W - side + 1)), int(rng.integers(H - side + 1))
    crop = img.crop((x, y, x + side, y + side)).resize((size, size), Image.Resampling.BILINEAR)
    return crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if rng.random() < 0.5 else crop


def compose_scene(
    background: Image.Image,
    sprites: Sequence[Image.Image],
    rng: np.random.Generator,
    *,
    num_objects: tuple[int, int] = (1, 6),
    object_size: tuple[float, float] = (0.16, 0.45),
    max_occlusion: float = 0.4,
    tries: int = 20,
) -> tuple[Image.Image, Tensor, Tensor, Tensor]:
    """Paste random objects (RGBA sprites) onto a background, and annotate them.

    Each object is a sprite of a random class, resized so its side is ``object_size`` (a
    fraction of the image side, drawn log-uniformly), maybe mirrored, and placed at a random
    position fully inside the image. Later objects may hide earlier ones, but a placement that
    leaves any object with less than ``1 - max_occlusion`` of its pixels visible is redrawn
    (up to ``tries`` times, else that object is skipped).

    Args:
        background: RGB image, H x W.
        sprites: one RGBA image per class; alpha >= 128 counts as the object.
        rng: the source of randomness.
        num_objects: (min, max) objects per image, inclusive.
        object_size: (min, max) side of an object as a fraction of ``min(H, W)``.
        max_occlusion: the largest hidden fraction of any object's pixels.

    Returns:
        ``(image, boxes, labels, areas)``: RGB image; boxes Tensor[G, 4] float32 xyxy pixels
        (the tight box of each object's *visible* pixels, pixel edges: ``x2 = last column + 1``);
        labels Tensor[G] int64 class indices into ``sprites``; areas Tensor[G] float32 visible pixels.
    """
    if not sprites:
        raise ValueError("sprites is empty: give one RGBA image per class")
    lo, hi = num_objects
    if not 1 <= lo <= hi:
        raise ValueError(f"num_objects must be (min, max) with 1 <= min <= max, got {num_objects}")
    if not 0 < object_size[0] <= object_size[1] <= 1:
        raise ValueError(f"object_size must be (min, max) fractions in (0, 1], got {object_size}")
    canvas = background.convert("RGBA")
    W, H = canvas.size
    owner = np.full((H, W), -1, dtype=np.int16)  # which object each pixel shows (-1: background)
    full: list[int] = []  # each object's pixel count
    labels: list[int] = []
    for _ in range(int(rng.integers(lo, hi + 1))):
        label = int(rng.integers(len(sprites)))
        side = float(np.exp(rng.uniform(np.log(object_size[0]), np.log(object_size[1])))) * min(H, W)
        s = max(2, round(side))
        sprite = sprites[label].resize((s, s), Image.Resampling.BILINEAR)
        if rng.random() < 0.5:
            sprite = sprite.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        mask = np.asarray(sprite)[..., 3] >= 128
        k = len(full)
        for _ in range(tries):
            x, y = int(rng.integers(W - s + 1)), int(rng.integers(H - s + 1))
            trial = owner.copy()
            trial[y:y + s, x:x + s][mask] = k
            visible = np.bincount(trial[trial >= 0].ravel(), minlength=k + 1)[:k]
            if all(v >= (1 - max_occlusion) * f for v, f in zip(visible, full)):
                owner = trial
                canvas.alpha_composite(sprite, (x, y))
                full.append(int(mask.sum()))
                labels.append(label)
                break
    boxes, areas, kept = [], [], []
    for k in range(len(full)):
        ys, xs = np.nonzero(owner == k)
        if len(xs):
            boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
            areas.append(len(xs))
            kept.append(labels[k])
    return (
        canvas.convert("RGB"),
        torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
        torch.tensor(kept, dtype=torch.int64),
        torch.tensor(areas, dtype=torch.float32),
    )


# ---------------------------------------------------------------------------- generation


def _background_pools(backgrounds: Sequence[str], download: bool | None) -> dict[str, Any]:
    """The pictures to crop backgrounds from; CIFAR-10 as ``{"train": images, "test": images}``."""
    pools: dict[str, Any] = {}
    if "photos" in backgrounds:
        pools["photos"] = [load_image(n, download=download) for n in PHOTOS] + [
            content_photo(n, download=download) for n in CONTENT_PHOTOS
        ]
    if "paintings" in backgrounds:
        pools["paintings"] = [painting(n, download=download) for n in PAINTINGS]
    if "cifar10" in backgrounds:
        from .cifar10 import CIFAR10

        pools["cifar10"] = {s: CIFAR10(s, download=download).data for s in ("train", "test")}
    return pools


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
    *,
    sizes: dict[str, int],
    classes: Sequence[str] = EMOJI_DETECTION_CLASSES,
    image_size: int = 128,
    seed: int = 0,
    backgrounds: Sequence[str] = BACKGROUNDS,
    num_objects: tuple[int, int] = (1, 6),
    object_size: tuple[float, float] = (0.16, 0.45),
    max_occlusion: float = 0.4,
    download: bool | None = None,
    progress: bool = True,
) -> Path:
    """Generate the emoji detection dataset into ``root`` (created atomically).

    Writes ``<split>/<index>.jpg`` (JPEG, quality 95) and ``instances_<split>.json`` (COCO
    format: ``bbox`` is ``[x, y, w, h]`` in pixels, ``category_id`` is the class index + 1)
    for each split in ``sizes``. Each split draws from its own seeded generator, so the
    output depends only on the arguments. Everything is written to a temporary folder next
    to ``root`` and renamed onto it at the end; an existing ``root`` is returned as it is.

    Args:
        root: the dataset folder.
        sizes: images per split, e.g. ``{"train": 1000, "val": 200, "test": 200}``.
        classes: emoji names (see :data:`~d2lcv.data.EMOJI_NAMES`) or hex codepoints.
        image_size: side of the square images in pixels.
        seed: the seed.
        backgrounds: a subset of :data:`BACKGROUNDS`.
        num_objects, object_size, max_occlusion: see :func:`compose_scene`.

    Returns:
        ``root`` as a Path.
    """
    from tqdm.auto import tqdm

    root = Path(root)
    if root.exists():
        return root
    bad = [s for s in sizes if s not in _SPLITS]
    if bad or any(int(n) < 0 for n in sizes.values()):
        raise ValueError(f"sizes must map splits {_SPLITS} to counts >= 0, got {sizes}")
    if not backgrounds or any(b not in BACKGROUNDS for b in backgrounds):
        raise ValueError(f"backgrounds must be a non-empty subset of {BACKGROUNDS}, got {backgrounds}")
    sprites = emoji(list(classes), download=download)
    pools = _background_pools(backgrounds, download)
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.", suffix=".partial", dir=root.parent))
    try:
        for split, n in sizes.items():
            rng = np.random.default_rng([seed, _SPLIT_SEED[split]])
            if "cifar10" in pools:  # CIFAR-10's training images for train, its test images otherwise
                split_pools = {**pools, "cifar10": pools["cifar10"]["train" if split == "train" else "test"]}
            else:
                split_pools = pools
            (tmp / split).mkdir()
            records = []
            for i in tqdm(range(n), desc=f"generating {split}", leave=False,
                          **({} if progress else {"disable": True})):  # unset: TQDM_DISABLE=1 silences it
                bg = _random_background(split_pools, image_size, rng)
                img, boxes, labels, areas = compose_scene(
                    bg, sprites, rng, num_objects=num_objects, object_size=object_size, max_occlusion=max_occlusion
                )
                name = f"{split}/{i:06d}.jpg"
                img.save(tmp / name, quality=95)
                records.append({"file_name": name, "boxes": boxes, "labels": labels, "areas": areas})
            coco = _coco(split, classes, records, image_size)
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


def _settings_name(**settings: Any) -> str:
    """A readable, unique folder name for a set of generator settings."""
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:8]
    sizes = settings["sizes"]
    return (f"v{GENERATOR_VERSION}-seed{settings['seed']}-{settings['image_size']}px-"
            f"{sizes.get('train', 0)}-{sizes.get('val', 0)}-{sizes.get('test', 0)}-{digest}")


# ---------------------------------------------------------------------------- datasets


def _read_coco(path: Path, root: Path) -> tuple[Tensor, list[dict[str, Tensor]], list[str]]:
    coco = json.loads(path.read_text())
    by_image: dict[int, list[dict[str, Any]]] = {img["id"]: [] for img in coco["images"]}
    for ann in coco["annotations"]:
        by_image[ann["image_id"]].append(ann)
    images, targets = [], []
    for img in coco["images"]:
        with Image.open(root / img["file_name"]) as im:
            images.append(torch.from_numpy(np.asarray(im.convert("RGB")).copy()).permute(2, 0, 1))
        anns = by_image[img["id"]]
        xywh = torch.tensor([a["bbox"] for a in anns], dtype=torch.float32).reshape(-1, 4)
        boxes = torch.cat([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], dim=1)
        labels = torch.tensor([a["category_id"] - 1 for a in anns], dtype=torch.int64)
        targets.append({"boxes": boxes, "labels": labels})
    classes = [c["name"] for c in sorted(coco["categories"], key=lambda c: c["id"])]
    return torch.stack(images) if images else torch.empty(0, 3, 0, 0, dtype=torch.uint8), targets, classes


class _DetectionSet(Dataset):
    """Images in memory (uint8 [N, 3, H, W]) with one target dict per image."""

    images: Tensor
    targets: list[dict[str, Tensor]]
    classes: tuple[str, ...]
    transform: Callable | None

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[Tensor, dict[str, Tensor]]:
        image, target = self.images[index], self.targets[index]
        if self.transform is None:
            return image, {"boxes": target["boxes"].clone(), "labels": target["labels"].clone()}
        from d2lcv.boxaug import apply_detection_transform

        image, boxes, labels = apply_detection_transform(self.transform, image, target["boxes"], target["labels"])
        return image, {"boxes": boxes, "labels": labels}


class EmojiDetection(_DetectionSet):
    """The generated emoji detection dataset (see :func:`generate_emoji_detection`).

    The first use of a set of settings generates all three splits (seconds for a thousand
    images) into ``<cache>/emoji-detection/<settings>/``; later uses read the cache.

    Args:
        split: ``"train"``, ``"val"`` or ``"test"``.
        transform: a ``torchvision.transforms.v2`` detection pipeline (e.g.
            :func:`d2lcv.boxaug.detection_transforms`), applied with its boxes by
            :func:`d2lcv.boxaug.apply_detection_transform`; None returns the stored image.
        sizes: images per split; default ``{"train": 1000, "val": 200, "test": 200}``.
        classes, image_size, seed, backgrounds, num_objects, object_size, max_occlusion:
            generator settings (see :func:`generate_emoji_detection`).
        download: allow downloads (emoji, backgrounds); None: unless ``$D2LCV_OFFLINE``.

    Attributes:
        images: uint8 Tensor[N, 3, S, S]; targets: list of dict(boxes Tensor[G, 4] float32 xyxy
        pixels, labels Tensor[G] int64 in ``0..C-1``); classes: the class names;
        root: the dataset folder; coco_json: the split's COCO annotation file.
    """

    def __init__(
        self,
        split: str = "train",
        transform: Callable | None = None,
        *,
        sizes: dict[str, int] | None = None,
        classes: Sequence[str] = EMOJI_DETECTION_CLASSES,
        image_size: int = 128,
        seed: int = 0,
        backgrounds: Sequence[str] = BACKGROUNDS,
        num_objects: tuple[int, int] = (1, 6),
        object_size: tuple[float, float] = (0.16, 0.45),
        max_occlusion: float = 0.4,
        download: bool | None = None,
    ) -> None:
        if split not in _SPLITS:
            raise ValueError(f"split must be one of {_SPLITS}, got {split!r}")
        sizes = dict(sizes or {"train": 1000, "val": 200, "test": 200})
        if split not in sizes:
            raise ValueError(f"split {split!r} has no size in sizes={sizes}")
        settings = dict(
            sizes=sizes, classes=list(classes), image_size=int(image_size), seed=int(seed),
            backgrounds=sorted(backgrounds), num_objects=list(num_objects), object_size=list(object_size),
            max_occlusion=float(max_occlusion),
        )
        self.root = cache_dir() / "emoji-detection" / _settings_name(**settings)
        generate_emoji_detection(
            self.root, sizes=sizes, classes=classes, image_size=image_size, seed=seed, backgrounds=backgrounds,
            num_objects=num_objects, object_size=object_size, max_occlusion=max_occlusion, download=download,
        )
        self.split = split
        self.coco_json = self.root / f"instances_{split}.json"
        self.images, self.targets, names = _read_coco(self.coco_json, self.root)
        self.classes = tuple(names)
        self.transform = transform

    def __repr__(self) -> str:
        return f"EmojiDetection(split={self.split!r}, n={len(self)}, classes={self.classes})"


class BananaDetection(_DetectionSet):
    """d2l's banana detection set: 1,000 training and 100 validation 256x256 images, one
    banana (class 0) each. It needs a download (no offline copy exists) or ``archive``.

    Args:
        split: ``"train"`` or ``"val"``.
        transform: as in :class:`EmojiDetection`.
        archive: a local copy of ``banana-detection.zip`` to read instead (not checksum-verified).
        download: allow downloading; None: unless ``$D2LCV_OFFLINE``.

    Attributes:
        images, targets, classes (``("banana",)``), as in :class:`EmojiDetection`.

    Reference: Zhang et al., Dive into Deep Learning, section 14.6.
    """

    def __init__(
        self,
        split: str = "train",
        transform: Callable | None = None,
        *,
        archive: str | os.PathLike | None = None,
        download: bool | None = None,
    ) -> None:
        if split not in ("train", "val"):
            raise ValueError(f"split must be 'train' or 'val', got {split!r}")
        if archive is None:
            archive = fetch("banana-detection", download=download)
            folder = cache_dir() / "banana-detection" / "extracted"
        else:
            key = hashlib.sha256(str(Path(archive).resolve()).encode()).hexdigest()[:8]
            folder = cache_dir() / "banana-detection" / f"extracted-{key}"
        top = extract(archive, folder)
        found = sorted(top.glob(f"**/bananas_{split}/label.csv"))
        if not found:
            raise FileNotFoundError(
                f"{archive}: no bananas_{split}/label.csv inside; is it d2l's banana-detection.zip?"
            )
        split_dir = found[0].parent
        with open(found[0], newline="") as f:
            rows = list(csv.DictReader(f))
        images, targets = [], []
        for row in rows:
            with Image.open(split_dir / "images" / row["img_name"]) as im:
                images.append(torch.from_numpy(np.asarray(im.convert("RGB")).copy()).permute(2, 0, 1))
            box = [float(row[k]) for k in ("xmin", "ymin", "xmax", "ymax")]
            targets.append({"boxes": torch.tensor([box]), "labels": torch.tensor([int(row["label"])])})
        self.images = torch.stack(images)
        self.targets = targets
        self.classes = ("banana",)
        self.split = split
        self.transform = transform

    def __repr__(self) -> str:
        return f"BananaDetection(split={self.split!r}, n={len(self)})"


def detection_collate(batch: Sequence[tuple[Tensor, dict[str, Tensor]]]) -> tuple[Tensor, list[dict[str, Tensor]]]:
    """``DataLoader`` collate function for detection: stack the images, keep the targets in a list.

    Returns:
        ``(images Tensor[B, 3, H, W], targets list[B] of dict(boxes, labels))``.
    """
    images, targets = zip(*batch)
    return torch.stack(images), list(targets)
