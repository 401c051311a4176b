"""Object detection datasets: the generated multi-class emoji set, and d2l's banana set.

:class:`EmojiDetection` reads the dataset that :mod:`d2lcv.data.emoji_scenes` generates: 1 to
6 emoji objects per image (by default), at varied scales, with some partial occlusion, in
train / val / test splits with COCO-format annotations. It is generated once per
:class:`~d2lcv.data.SceneSettings` and cached under ``<cache>/emoji-detection/<settings>/``::

    train_set = EmojiDetection("train")
    image, target = train_set[0]      # uint8 Tensor[3, H, W]; target["boxes"] xyxy pixels
    train_set.coco_json               # path of the COCO annotation file of the split

:class:`BananaDetection` reads d2l's banana detection set (one banana per image), which has
no offline copy: it needs a download (or a local copy of ``banana-detection.zip``).
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset

from d2lcv.transforms.detection import apply_detection_transform

from .cache import cache_dir
from .archive import extract
from .emoji_scenes import SPLITS, SceneSettings, generate_emoji_detection
from .registry import REGISTRY, fetch

__all__ = ["DetectionDataset", "EmojiDetection", "BananaDetection", "detection_collate"]


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


class DetectionDataset(Dataset):
    """Base class: images in memory (uint8 [N, 3, H, W]) with one target dict per image,
    and an optional v2 detection transform applied with the boxes."""

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
        image, boxes, labels = apply_detection_transform(self.transform, image, target["boxes"], target["labels"])
        return image, {"boxes": boxes, "labels": labels}


class EmojiDetection(DetectionDataset):
    """The generated emoji detection dataset (see :func:`generate_emoji_detection`).

    The first use of a set of settings generates all three splits (seconds for a thousand
    images) into ``<cache>/emoji-detection/<settings>/``; later uses read the cache.

    Args:
        split: ``"train"``, ``"val"`` or ``"test"``.
        transform: a ``torchvision.transforms.v2`` detection pipeline (e.g.
            :func:`d2lcv.transforms.detection_transforms`), applied with its boxes by
            :func:`d2lcv.transforms.apply_detection_transform`; None returns the stored image.
        settings: the generator's :class:`~d2lcv.data.SceneSettings` (default: 1000/200/200
            images of 128 px, five classes); or give its fields as keyword arguments
            (``sizes=..., image_size=...``).
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
        settings: SceneSettings | None = None,
        download: bool | None = None,
        **kwargs: Any,
    ) -> None:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        self.settings = SceneSettings.create(settings, **kwargs)
        if split not in self.settings.sizes:
            raise ValueError(f"split {split!r} has no size in sizes={self.settings.sizes}")
        self.root = cache_dir() / "emoji-detection" / self.settings.folder_name()
        generate_emoji_detection(self.root, self.settings, download=download)
        self.split = split
        self.coco_json = self.root / f"instances_{split}.json"
        self.images, self.targets, names = _read_coco(self.coco_json, self.root)
        self.classes = tuple(names)
        self.transform = transform

    def __repr__(self) -> str:
        return f"EmojiDetection(split={self.split!r}, n={len(self)}, classes={self.classes})"


class BananaDetection(DetectionDataset):
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
        top = extract(archive, folder, max_size=REGISTRY["banana-detection"].max_extracted_size)
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
