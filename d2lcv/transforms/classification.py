"""Image augmentation for CIFAR-sized images: Cutout, and named ``torchvision.transforms.v2`` pipelines.

:func:`cutout` is the one operation the chapter writes by hand (torchvision's
``RandomErasing`` draws a rectangle of random size and aspect ratio *inside* the image;
Cutout's square has a fixed size and may hang over the border). :func:`cifar_pipeline`
builds the per-image training pipelines the chapter compares::

    train_set = CIFAR10("train", transform=cifar_pipeline("flip_crop"))

Every pipeline accepts a uint8 image Tensor[3, 32, 32] or a PIL image (the augmentations
run on whichever it gets) and returns a normalised float32 Tensor[3, 32, 32].
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torchvision.transforms import v2

from d2lcv.transforms.stats import CIFAR10_MEAN, CIFAR10_STD

__all__ = ["PIPELINES", "cutout", "Cutout", "cifar_pipeline"]

PIPELINES = ("none", "flip_crop", "flip_crop_color", "flip_crop_erase")


def cutout(
    img: Tensor,
    size: int,
    *,
    generator: torch.Generator | None = None,
    fill: float = 0.0,
) -> Tensor:
    """Cutout: fill one ``size x size`` square, centred anywhere in the image, with ``fill``.

    The centre ``(cy, cx)`` is uniform over the pixels; the square covers rows
    ``[cy - size // 2, cy - size // 2 + size)`` and the same columns, clipped at the
    borders, so near an edge less than ``size**2`` pixels are filled. A batch gets one
    independent square per image.

    Args:
        img (Tensor[C, H, W] or Tensor[B, C, H, W]): uint8 or floating point image(s).
        size: side of the square in pixels, >= 0 (0 leaves the image as it is). DeVries &
            Taylor use 16 on CIFAR-10 and 8 on CIFAR-100.
        generator: source of randomness (torch's global RNG if None).
        fill: the value written; for uint8 images an integer in [0, 255]. Applied after
            ``Normalize``, 0 is the dataset mean colour (as in the paper).

    Returns:
        Tensor of the shape and dtype of ``img``: a new tensor, the input is not modified.

    Reference: DeVries & Taylor, Improved Regularization of Convolutional Neural Networks
    with Cutout, arXiv:1708.04552, 2017.
    """
    if not isinstance(img, Tensor) or img.ndim not in (3, 4):
        got = (
            f"shape {tuple(img.shape)}"
            if isinstance(img, Tensor)
            else type(img).__name__
        )
        raise ValueError(
            f"img must be Tensor[C, H, W] or Tensor[B, C, H, W], got {got}"
        )
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise ValueError(f"size must be a non-negative int, got {size!r}")
    if img.dtype == torch.uint8 and not (float(fill).is_integer() and 0 <= fill <= 255):
        raise ValueError(
            f"fill for a uint8 image must be an integer in [0, 255], got {fill!r}"
        )
    if not (img.dtype == torch.uint8 or img.is_floating_point()):
        raise TypeError(f"img must be uint8 or floating point, got {img.dtype}")
    batch = img if img.ndim == 4 else img.unsqueeze(0)  # [B, C, H, W]
    B, _, H, W = batch.shape
    cy = torch.randint(0, H, (B, 1), generator=generator)  # [B, 1]
    cx = torch.randint(0, W, (B, 1), generator=generator)
    rows = torch.arange(H) - (cy - size // 2)  # [B, H], position inside the square
    cols = torch.arange(W) - (cx - size // 2)  # [B, W]
    in_rows, in_cols = (rows >= 0) & (rows < size), (cols >= 0) & (cols < size)
    mask = (in_rows[:, :, None] & in_cols[:, None, :]).unsqueeze(1)  # [B, 1, H, W]
    out = batch.masked_fill(mask.to(batch.device), fill)
    return out if img.ndim == 4 else out.squeeze(0)


class Cutout(nn.Module):
    """:func:`cutout` as a transform, for ``v2.Compose`` (one square per image, or per
    image of a batch). Uses ``generator``, or torch's global RNG like the v2 transforms."""

    def __init__(self, size: int, fill: float = 0.0, *, generator: torch.Generator | None = None) -> None:
        super().__init__()
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ValueError(f"size must be a non-negative int, got {size!r}")
        self.size, self.fill, self.generator = size, fill, generator

    def forward(self, img: Tensor) -> Tensor:
        return cutout(img, self.size, generator=self.generator, fill=self.fill)

    def extra_repr(self) -> str:
        return f"size={self.size}, fill={self.fill}"


def cifar_pipeline(name: str, *, cutout_size: int = 16) -> v2.Compose:
    """A named per-image CIFAR-10 training pipeline of ``torchvision.transforms.v2``.

    ==================  =====================================================================
    ``"none"``          convert and normalise only (also the test-time pipeline)
    ``"flip_crop"``     ``RandomCrop(32, padding=4)`` (zero padding) + ``RandomHorizontalFlip()``
    ``"flip_crop_color"`` ... + ``ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4)``
                        (no hue shift: on the CPU it costs more than the rest of the
                        pipeline together, about 0.9 ms per 32x32 image)
    ``"flip_crop_erase"`` ``"flip_crop"`` + :class:`Cutout` ``(cutout_size)`` after normalising,
                        so the square is filled with the mean colour (DeVries & Taylor)
    ==================  =====================================================================

    Each ends with ``ToImage``, ``ToDtype(torch.float32, scale=True)`` and ``Normalize``
    with :data:`CIFAR10_MEAN` and :data:`CIFAR10_STD` (and ``ToPureTensor``, so the result is
    a plain tensor); the augmentations come first, so
    they run on a PIL image or a uint8 tensor, whichever the pipeline receives.

    Args:
        name: one of :data:`PIPELINES`.
        cutout_size: side of the Cutout square for ``"flip_crop_erase"``.

    Returns:
        ``v2.Compose`` mapping a uint8 Tensor[3, 32, 32] or PIL image to float32 Tensor[3, 32, 32].
    """
    if name not in PIPELINES:
        raise ValueError(f"unknown pipeline {name!r}; choose one of {PIPELINES}")
    augment: list[nn.Module] = []
    if name != "none":
        augment += [v2.RandomCrop(32, padding=4), v2.RandomHorizontalFlip()]
    if name == "flip_crop_color":
        augment.append(v2.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4))
    to_tensor = [
        v2.ToImage(),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(CIFAR10_MEAN, CIFAR10_STD),
    ]
    after = [Cutout(cutout_size)] if name == "flip_crop_erase" else []
    return v2.Compose([*augment, *to_tensor, *after, v2.ToPureTensor()])
