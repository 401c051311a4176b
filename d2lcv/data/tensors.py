"""Datasets over tensors held in memory."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.utils.data import Dataset

__all__ = ["AugmentedImages"]


class AugmentedImages(Dataset):
    """uint8 images with labels, each image passed through a per-image transform when read.

    Args:
        images (Tensor[N, C, H, W], uint8), labels (Tensor[N], int64).
        transform: e.g. :func:`d2lcv.transforms.cifar_pipeline`; it runs in the ``DataLoader`` workers.
    """

    def __init__(self, images: Tensor, labels: Tensor, transform) -> None:
        if images.dim() != 4 or images.dtype != torch.uint8:
            raise ValueError(f"images must be uint8 [N, C, H, W], got {images.dtype} {tuple(images.shape)}")
        if labels.shape != images.shape[:1]:
            raise ValueError(f"labels must have shape [{len(images)}], got {tuple(labels.shape)}")
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        return self.transform(self.images[i]), self.labels[i]
