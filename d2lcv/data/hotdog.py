"""d2l's hot dog / not hot dog photos as a ``torch.utils.data.Dataset``.

The archive ``hotdog.zip`` (registry entry ``"hotdog"``) holds 2,000 training photos (1,000
per class) and 800 test photos (400 per class) of various sizes, laid out like torchvision's
``ImageFolder``::

    hotdog/train/hotdog/*.png       hotdog/train/not-hotdog/*.png
    hotdog/test/hotdog/*.png        hotdog/test/not-hotdog/*.png

It is fetched through :func:`~d2lcv.data.fetch` (cache, mirror, official URL, checksum
verified) and extracted once into ``<cache>/hotdog/``.

Reference: Zhang et al., Dive into Deep Learning, Section 14.2 (Fine-Tuning), 2023.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image
from torch.utils.data import Dataset

from .archive import ArchiveError, extract
from .cache import cache_dir, file_checksum, parse_checksum
from .registry import REGISTRY, fetch

__all__ = ["Hotdog", "HOTDOG_CLASSES"]

HOTDOG_CLASSES = ("hotdog", "not-hotdog")  # ImageFolder's (sorted) order: label 0 is hotdog
_SPLITS = ("train", "test")
_SUFFIXES = (".png", ".jpg", ".jpeg")


def _extracted(archive: Path, checksum: str) -> Path:
    """Extract ``archive`` (once) into ``<cache>/hotdog/hotdog-<checksum prefix>``."""
    return extract(archive, cache_dir() / "hotdog" / f"hotdog-{parse_checksum(checksum)[1][:10]}",
                   max_size=REGISTRY["hotdog"].max_extracted_size)


def _split_root(root: Path, split: str, archive: Path) -> Path:
    """``<root>/[<one folder>/]<split>``, the folder holding one sub-folder per class."""
    for base in (root, *sorted(p for p in root.iterdir() if p.is_dir())):
        if all((base / s / c).is_dir() for s in _SPLITS for c in HOTDOG_CLASSES):
            return base / split
    raise ArchiveError(
        f"{archive}: expected folders [hotdog/]{{train,test}}/{{{','.join(HOTDOG_CLASSES)}}}/ "
        f"(as in d2l's hotdog.zip), found {sorted(p.name for p in root.iterdir())}"
    )


class Hotdog(Dataset):
    """d2l's hot dog data set: 2,000 train / 800 test RGB photos in two classes,
    ``hotdog`` (label 0) and ``not-hotdog`` (label 1), half of each split each.

    Args:
        split: ``"train"`` or ``"test"``.
        transform: applied to the PIL image (RGB) in ``__getitem__``.
        target_transform: applied to the int label.
        archive: a local zip with the same layout to read instead (not checksum-verified).
        download: allow downloading; None means "unless ``$D2LCV_OFFLINE`` is set".

    Attributes:
        classes: :data:`HOTDOG_CLASSES`.
        samples: list of ``(path, label)``, sorted by class, then file name.
        targets: list[int], the labels.

    Raises:
        DatasetNotFoundError: the archive is nowhere (the message says where to put it).
        ArchiveError: the archive does not have the expected layout.
    """

    classes: tuple[str, ...] = HOTDOG_CLASSES

    def __init__(
        self,
        split: str = "train",
        transform: Callable[[Image.Image], Any] | None = None,
        target_transform: Callable[[int], Any] | None = None,
        *,
        archive: str | os.PathLike | None = None,
        download: bool | None = None,
    ) -> None:
        if split not in _SPLITS:
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        if archive is not None:
            path = Path(archive)
            checksum = file_checksum(path)
        else:
            path = fetch("hotdog", download=download)
            checksum = REGISTRY["hotdog"].sources[0].checksum
        folder = _split_root(_extracted(path, checksum), split, path)
        self.split, self.transform, self.target_transform = split, transform, target_transform
        self.samples: list[tuple[Path, int]] = [
            (p, label)
            for label, name in enumerate(HOTDOG_CLASSES)
            for p in sorted((folder / name).iterdir())
            if p.suffix.lower() in _SUFFIXES
        ]
        self.targets: list[int] = [label for _, label in self.samples]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        path, target = self.samples[index]
        with Image.open(path) as im:
            img: Any = im.convert("RGB")
        if self.transform is not None:
            img = self.transform(img)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return img, target

    def __repr__(self) -> str:
        return f"Hotdog(split={self.split!r}, n={len(self)})"
