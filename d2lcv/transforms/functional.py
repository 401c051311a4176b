"""Functional image conversions."""

from __future__ import annotations

import torch
from PIL import Image
from torch import Tensor
from torchvision.transforms import v2

__all__ = ["image_tensor"]


def image_tensor(img: Image.Image | Tensor, size: int | tuple[int, int]) -> Tensor:
    """A photo as a float image in [0, 1], resized.

    Args:
        img: a PIL image or a uint8/float tensor [3, H, W].
        size: ``(H, W)`` exactly, or an int: the shorter side, the longer one scaled with it
            and rounded to a multiple of 4 (so :class:`d2lcv.models.style.TransformNet` can take it).

    Returns:
        Tensor[3, H, W] (float32) in [0, 1].
    """
    x = v2.functional.to_dtype(v2.functional.to_image(img), torch.float32, scale=True)
    if isinstance(size, int):
        if size < 4:
            raise ValueError(f"size must be at least 4, got {size}")
        H, W = x.shape[-2:]
        long = max(4, round(max(H, W) * size / min(H, W) / 4) * 4)
        size = (size, long) if H <= W else (long, size)
    return v2.functional.resize(x, list(size), antialias=True).clamp(0, 1)
