"""Test-time augmentation: average the model's class probabilities over several views of each image.

AlexNet evaluated ten 224x224 patches of each 256x256 test image (the four corners and the
centre, and their horizontal flips) and averaged the softmax outputs. For 32x32 CIFAR
images, where the model expects the full size, the views are the image and its flip
(``mode="flip"``), or ten 32x32 crops of the image padded by 4 pixels (``mode="ten_crop"``),
the test-time counterpart of ``RandomCrop(32, padding=4)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.transforms.v2 import functional as TF

__all__ = ["MODES", "ten_crop", "tta_views", "predict_tta"]

MODES = ("none", "flip", "ten_crop")


def _check_image(img: Tensor, name: str = "img") -> None:
    if not isinstance(img, Tensor) or img.ndim not in (3, 4):
        got = f"shape {tuple(img.shape)}" if isinstance(img, Tensor) else type(img).__name__
        raise ValueError(f"{name} must be Tensor[C, H, W] or Tensor[B, C, H, W], got {got}")


def ten_crop(img: Tensor, size: int) -> Tensor:
    """The ten AlexNet crops: four corners and the centre, then the same of the flipped image.

    Order (that of ``torchvision.transforms.v2.functional.ten_crop``): top-left, top-right,
    bottom-left, bottom-right, centre of ``img``, then the same five of ``img.flip(-1)``
    (so view 5 is the mirror image of view 1, view 6 of view 0, view 9 of view 4).

    Args:
        img (Tensor[C, H, W] or Tensor[B, C, H, W]): any dtype, ``H, W >= size``.
        size: side of the square crops.

    Returns:
        Tensor[10, C, size, size], or Tensor[B, 10, C, size, size] for a batch.

    Reference: Krizhevsky et al., ImageNet Classification with Deep Convolutional Neural
    Networks, NeurIPS 2012.
    """
    _check_image(img)
    H, W = img.shape[-2:]
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= min(H, W):
        raise ValueError(f"size must be an int in [1, {min(H, W)}] for a {H}x{W} image, got {size!r}")
    return torch.stack(TF.ten_crop(img, [size, size]), dim=-4)


def tta_views(x: Tensor, mode: str = "flip", *, crop_size: int | None = None, padding: int = 4) -> Tensor:
    """The test-time views of a batch, stacked view-first.

    Args:
        x (Tensor[B, C, H, W]): images, as the model takes them (normalised).
        mode: ``"none"`` (1 view), ``"flip"`` (x and its horizontal flip, after a centre
            crop to ``crop_size`` if given) or ``"ten_crop"`` (:func:`ten_crop` of size
            ``crop_size``; if None, of the image zero-padded by ``padding``, cropped back to H x W).
        crop_size: side of the square views.
        padding: for ``"ten_crop"`` without ``crop_size``: zeros added on each side (the mean
            colour for normalised inputs).

    Returns:
        Tensor[V, B, C, S, S] with V = 1, 2 or 10.
    """
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; choose one of {MODES}")
    if not isinstance(x, Tensor) or x.ndim != 4:
        got = f"shape {tuple(x.shape)}" if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"x must be a batch Tensor[B, C, H, W], got {got}")
    if mode == "ten_crop":
        if crop_size is None:
            if padding < 0:
                raise ValueError(f"padding must be >= 0, got {padding}")
            H, W = x.shape[-2:]
            if H != W:
                raise ValueError(f"ten_crop without crop_size needs square images, got {H}x{W}")
            x, crop_size = F.pad(x, (padding,) * 4), H
        return ten_crop(x, crop_size).transpose(0, 1)  # [10, B, C, S, S]
    if crop_size is not None:
        x = ten_crop(x, crop_size)[:, 4]  # the centre crop, [B, C, S, S]
    views = [x] if mode == "none" else [x, x.flip(-1)]
    return torch.stack(views)  # [V, B, C, S, S]


@torch.no_grad()
def predict_tta(
    model: nn.Module, x: Tensor, *, mode: str = "flip", crop_size: int | None = None, padding: int = 4
) -> Tensor:
    """Class probabilities averaged over the test-time views of each image (:func:`tta_views`).

    All ``V * B`` views go through the model in one batch, in eval mode (the model's mode
    is restored afterwards), without gradients.

    Args:
        model: maps Tensor[N, C, S, S] to logits Tensor[N, K].
        x (Tensor[B, C, H, W]): images, on the model's device.
        mode, crop_size, padding: as in :func:`tta_views`.

    Returns:
        Tensor[B, K] (float32): the mean of ``softmax(logits)`` over the views; rows sum to 1.
    """
    views = tta_views(x, mode, crop_size=crop_size, padding=padding)  # [V, B, C, S, S]
    V, B = views.shape[:2]
    was_training = model.training
    model.eval()
    try:
        logits = model(views.flatten(0, 1))  # [V * B, K]
    finally:
        model.train(was_training)
    probs = logits.float().softmax(dim=-1)
    return probs.view(V, B, -1).mean(dim=0)  # [B, K]
