"""SVHN, the Street View House Numbers (Netzer et al., 2011), cropped-digit format: 32 x 32
colour images of single digits cut from Google Street View photos, from its official URLs
with the published MD5 checksums (as torchvision lists them). Needs SciPy to read the
MATLAB files; it is not in the offline mirror, so offline readers use the generated
street numbers of :mod:`d2lcv.data.house_numbers` instead."""

from __future__ import annotations

import os

import numpy as np
import torch
from torch import Tensor

from .registry import DatasetInfo, Resource, fetch

__all__ = ["SVHN_SPLITS", "svhn_info", "read_svhn_mat", "svhn"]

_URL = "http://ufldl.stanford.edu/housenumbers/"
_MD5 = {  # as published with torchvision.datasets.SVHN
    "train": "e26dedcc434d2e4c54c9b2d4a06d8373",
    "test": "eb5a983be6a315427106f1b164d9cef3",
    "extra": "a93ce644f1a588dc4d68dda5feec44a7",
}
SVHN_SPLITS = tuple(_MD5)


def svhn_info(split: str) -> DatasetInfo:
    """The registry entry of one SVHN split (``"train"``, ``"test"`` or ``"extra"``)."""
    if split not in _MD5:
        raise ValueError(f"split must be one of {SVHN_SPLITS}, got {split!r}")
    md5 = _MD5[split]
    return DatasetInfo(
        name=f"svhn/{split}_32x32.mat",
        description=f"SVHN cropped digits, {split} split (32x32 RGB, MATLAB file)",
        licence="non-commercial use only (see the homepage)",
        citation=("Netzer, Y., Wang, T., Coates, A., Bissacco, A., Wu, B., Ng, A. Y. Reading Digits in Natural "
                  "Images with Unsupervised Feature Learning. NIPS Workshop on Deep Learning, 2011"),
        homepage=_URL,
        sources=(Resource(f"{split}_32x32.mat", f"{_URL}{split}_32x32.mat", f"md5:{md5}"),),
    )


def read_svhn_mat(path: str | os.PathLike) -> tuple[Tensor, Tensor]:
    """Read an SVHN ``*_32x32.mat`` file.

    Returns:
        ``(images uint8 Tensor[N, 3, 32, 32], labels int64 Tensor[N])``; the file's label 10
        (its code for the digit 0) becomes 0.
    """
    try:
        from scipy.io import loadmat
    except ImportError as err:
        raise ImportError("reading SVHN needs SciPy: pip install scipy") from err
    mat = loadmat(os.fspath(path))
    if "X" not in mat or "y" not in mat:
        raise ValueError(f"{path} is not an SVHN file: it has no 'X' and 'y' arrays (got {sorted(mat)})")
    images = np.ascontiguousarray(np.transpose(mat["X"], (3, 2, 0, 1)))  # [32, 32, 3, N] -> [N, 3, 32, 32]
    labels = mat["y"].astype(np.int64).reshape(-1) % 10
    return torch.from_numpy(images), torch.from_numpy(labels)


def svhn(split: str = "train", *, download: bool | None = None) -> tuple[Tensor, Tensor]:
    """An SVHN split, downloaded on first use (and checked against its MD5).

    Returns:
        ``(images uint8 Tensor[N, 3, 32, 32], labels int64 Tensor[N])``, digits 0..9.
    """
    return read_svhn_mat(fetch(svhn_info(split), download=download))
