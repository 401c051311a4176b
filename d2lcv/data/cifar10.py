"""CIFAR-10 as a ``torch.utils.data.Dataset``, from the official python tarball or the
offline mirror's JPEG zip, converted once to a uint8 ``.npz`` cache.

Reference: Krizhevsky, Learning Multiple Layers of Features from Tiny Images, 2009.
"""

from __future__ import annotations

import codecs
import io
import os
import pickle
import re
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset, Subset

from .archive import ArchiveError
from .cache import cache_dir, file_checksum, parse_checksum
from .registry import REGISTRY, fetch
from .subsets import balanced_indices, class_indices

__all__ = [
    "CIFAR10", "CIFAR10_CLASSES", "read_cifar10_archive", "balanced_indices", "cifar_subset"]

CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)
_SPLITS = ("train", "test")
_PY_BATCHES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}
_JPEG_MEMBER = re.compile(r"(?:^|/)(train|test)/([a-z]+)/[^/]+\.(?:jpe?g|png)$", re.IGNORECASE)

Arrays = dict[str, tuple[np.ndarray, np.ndarray]]


class _BatchUnpickler(pickle.Unpickler):
    """Unpickles CIFAR batches (dicts of lists, bytes and numpy arrays) and nothing else."""

    def find_class(self, module: str, name: str) -> Any:
        if module in ("numpy.core.multiarray", "numpy._core.multiarray") and name == "_reconstruct":
            return np.ndarray.__reduce__(np.empty(0))[0]  # numpy's _reconstruct, any numpy version
        if module == "numpy" and name in ("ndarray", "dtype"):
            return getattr(np, name)
        if (module, name) == ("_codecs", "encode"):  # bytes pickled by Python 3 at protocol 2
            return codecs.encode
        raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name} from a CIFAR batch")


def _from_python_tarball(path: Path) -> Arrays:
    out: Arrays = {}
    with tarfile.open(path, "r:*") as tf:
        members = {Path(m.name).name: m for m in tf.getmembers() if m.isfile()}
        for split, names in _PY_BATCHES.items():
            xs, ys = [], []
            for name in names:
                if name not in members:
                    raise ArchiveError(f"{path}: no member named {name} (is it cifar-10-python.tar.gz?)")
                batch = _BatchUnpickler(tf.extractfile(members[name]), encoding="latin1").load()
                xs.append(np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
                ys.append(np.asarray(batch["labels"], dtype=np.int64))
            out[split] = (np.concatenate(xs).transpose(0, 2, 3, 1).copy(), np.concatenate(ys))
        if "batches.meta" in members:
            meta = _BatchUnpickler(tf.extractfile(members["batches.meta"]), encoding="latin1").load()
            if tuple(meta["label_names"]) != CIFAR10_CLASSES:
                raise ArchiveError(f"{path}: class names {meta['label_names']} are not CIFAR-10's")
    return out


def _from_image_zip(path: Path) -> Arrays:
    index = {c: i for i, c in enumerate(CIFAR10_CLASSES)}
    found: dict[str, list[tuple[str, int]]] = {s: [] for s in _SPLITS}
    with zipfile.ZipFile(path) as zf:
        for name in zf.namelist():
            m = _JPEG_MEMBER.search(name)
            if m is None:
                continue
            split, cls = m.group(1).lower(), m.group(2).lower()
            if cls not in index:
                raise ArchiveError(f"{path}: member {name!r} has unknown class {cls!r}")
            found[split].append((name, index[cls]))
        out: Arrays = {}
        for split, items in found.items():
            items.sort()  # by member path: deterministic order, classes in alphabetical = official order
            x = np.empty((len(items), 32, 32, 3), dtype=np.uint8)
            for k, (name, _) in enumerate(items):
                with Image.open(io.BytesIO(zf.read(name))) as im:
                    if im.size != (32, 32):
                        raise ArchiveError(f"{path}: {name} is {im.size[0]}x{im.size[1]}, not 32x32")
                    x[k] = np.asarray(im.convert("RGB"))
            out[split] = (x, np.array([y for _, y in items], dtype=np.int64))
    if not len(out["train"][0]) or not len(out["test"][0]):
        raise ArchiveError(f"{path}: no <train|test>/<class>/*.jpg members found")
    return out


def read_cifar10_archive(path: str | os.PathLike) -> Arrays:
    """Decode a CIFAR-10 archive into arrays (slow for the full set: decodes everything).

    Args:
        path: the official ``cifar-10-python.tar.gz`` (pickled batches), or a zip of images
            laid out as ``.../{train,test}/<class>/<name>.jpg`` (the mirror's packaging);
            zip members are read in sorted path order.

    Returns:
        ``{"train": (x, y), "test": (x, y)}`` with x uint8 [N, 32, 32, 3] (HWC, RGB) and
        y int64 [N] indexing :data:`CIFAR10_CLASSES`.
    """
    path = Path(path)
    if zipfile.is_zipfile(path):
        return _from_image_zip(path)
    if tarfile.is_tarfile(path):
        return _from_python_tarball(path)
    raise ArchiveError(f"{path} is neither the CIFAR-10 python tarball nor a zip of images")


def _npz_path(key: str, split: str) -> Path:
    return cache_dir() / "cifar10" / f"cifar10-{key}-{split}.npz"


def _source_key(filename: str, checksum: str) -> str:
    kind = "python" if filename.endswith((".tar.gz", ".tgz", ".tar")) else "images"
    return f"{kind}-{parse_checksum(checksum)[1][:10]}"


def _convert(archive: Path, key: str) -> None:
    arrays = read_cifar10_archive(archive)
    for split, (x, y) in arrays.items():
        dest = _npz_path(key, split)
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, data=x, targets=y)
            os.chmod(tmp, 0o644)  # mkstemp makes it 0600
            os.replace(tmp, dest)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)


def _load_split(split: str, archive: str | os.PathLike | None, download: bool | None) -> tuple[np.ndarray, np.ndarray]:
    if archive is not None:
        archive = Path(archive)
        keys = [_source_key(archive.name, file_checksum(archive))]
    else:
        info = REGISTRY["cifar10"]
        keys = [_source_key(r.filename, r.checksum) for r in info.sources]
        keys += [_source_key(m.path, m.checksum) for m in info.mirror]
    ready = [k for k in keys if _npz_path(k, split).exists()]
    if not ready:
        if archive is None:
            archive = fetch("cifar10", download=download)
            keys = [_source_key(archive.name, _checksum_of(archive))]
        _convert(Path(archive), keys[0])
        ready = keys[:1]
    with np.load(_npz_path(ready[0], split)) as f:
        return f["data"], f["targets"]


def _checksum_of(found: Path) -> str:
    # the registry checksum of a file that fetch() returned (it is verified already)
    info = REGISTRY["cifar10"]
    table = {r.filename: r.checksum for r in info.sources}
    table.update({Path(m.path).name: m.checksum for m in info.mirror})
    return table[found.name]




class CIFAR10(Dataset):
    """CIFAR-10: 50,000 train / 10,000 test 32x32 RGB images in 10 classes.

    The data come from :func:`~d2lcv.data.fetch` (cache, then ``$D2LCV_MIRROR``, then the
    official tarball) and are decoded once into ``<cache>/cifar10/cifar10-<source>-<split>.npz``;
    later loads read only that file. The mirror's JPEG packaging has slightly different
    pixels from the official (lossless) batches; labels, class order and split sizes agree.

    Args:
        split: ``"train"`` or ``"test"``.
        transform: applied to the PIL image in ``__getitem__`` (e.g. torchvision transforms).
        target_transform: applied to the int label.
        archive: a local archive to read instead (either packaging; not checksum-verified).
        download: allow downloading; None means "unless ``$D2LCV_OFFLINE`` is set".

    Attributes:
        classes: the class names, in the official label order.
        data: uint8 ndarray [N, 32, 32, 3] (HWC, RGB).
        targets: list[int] of length N.
    """

    classes: tuple[str, ...] = CIFAR10_CLASSES

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
        self.split = split
        self.transform = transform
        self.target_transform = target_transform
        self.data, targets = _load_split(split, archive, download)
        self.targets: list[int] = targets.tolist()

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        img: Any = Image.fromarray(self.data[index])
        target: Any = self.targets[index]
        if self.transform is not None:
            img = self.transform(img)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return img, target

    def tensors(
        self, n: int | None = None, *, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The images and labels as tensors, all of them or a class-balanced subset.

        Args:
            n: None for every example (in order), else a :func:`balanced_indices` subset.
            generator: seeds the subset.

        Returns:
            ``(x, y)``: x Tensor[N, 3, 32, 32] (uint8), y Tensor[N] (int64).
        """
        idx = slice(None) if n is None else balanced_indices(self.targets, n, generator=generator).numpy()
        x = torch.from_numpy(np.ascontiguousarray(self.data[idx])).permute(0, 3, 1, 2).contiguous()
        y = torch.as_tensor(np.asarray(self.targets)[idx], dtype=torch.int64)
        return x, y

    def subset(self, n: int, *, generator: torch.Generator | None = None) -> Subset:
        """A class-balanced ``Subset`` of ``n`` examples (see :func:`balanced_indices`)."""
        return Subset(self, balanced_indices(self.targets, n, generator=generator).tolist())

    def __repr__(self) -> str:
        return f"CIFAR10(split={self.split!r}, n={len(self)})"


def cifar_subset(
    split: str,
    classes: Sequence[str],
    n_per_class: int | None = None,
    *,
    seed: int = 0,
    from_end: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Some CIFAR-10 classes as tensors, relabelled ``0 .. len(classes) - 1`` in the order
    given (see :func:`~d2lcv.data.subsets.class_indices`: the same seed gives a source
    task from the start of each class and a target task from its end, disjoint).

    Returns:
        ``(x, y)``: x Tensor[N, 3, 32, 32] (uint8), y Tensor[N] (int64), classes in turn.
    """
    unknown = [c for c in classes if c not in CIFAR10_CLASSES]
    if unknown:
        raise ValueError(f"unknown CIFAR-10 classes {unknown}; choose from {list(CIFAR10_CLASSES)}")
    data = CIFAR10(split)
    idx, y = class_indices(data.targets, [CIFAR10_CLASSES.index(c) for c in classes], n_per_class,
                           generator=torch.Generator().manual_seed(seed), from_end=from_end)
    x = torch.from_numpy(np.ascontiguousarray(data.data[idx])).permute(0, 3, 1, 2).contiguous()
    return x, y
