"""Batch augmentations for detection that move the boxes with the pixels: mixup of two
images with both images' boxes (weighted), and random-size (multi-scale) batches.

A detection batch is ``(images Tensor[B, 3, H, W] float, targets)``, ``targets`` B dicts
with ``boxes`` (Tensor[G_i, 4], xyxy pixels), ``labels`` (Tensor[G_i]) and optionally
``weights`` (Tensor[G_i] float, each object's weight in the loss; 1 when absent).
Both functions return a new batch of the same form and leave their inputs unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["detection_mixup", "random_resize", "DetectionMixUp", "RandomResize"]

Targets = list[dict[str, Tensor]]


def _check_batch(images: Tensor, targets: Sequence[dict[str, Tensor]]) -> None:
    if not isinstance(images, Tensor) or images.ndim != 4 or not images.is_floating_point():
        got = f"{images.dtype} {tuple(images.shape)}" if isinstance(images, Tensor) else type(images).__name__
        raise ValueError(f"images must be a float Tensor[B, 3, H, W], got {got}")
    if len(targets) != len(images):
        raise ValueError(f"need one target dict per image, got {len(targets)} for {len(images)} images")
    for t in targets:
        if "boxes" not in t or "labels" not in t:
            raise ValueError(f"each target needs 'boxes' and 'labels', got keys {sorted(t)}")


def _check_sizes(sizes: Sequence[int]) -> None:
    if not sizes or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in sizes):
        raise ValueError(f"sizes must be positive ints, got {list(sizes)}")


def _weights(target: dict[str, Tensor]) -> Tensor:
    return target.get("weights", torch.ones(len(target["labels"])))


def detection_mixup(
    images: Tensor,
    targets: Sequence[dict[str, Tensor]],
    *,
    alpha: float = 1.5,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Targets]:
    """Visually coherent mixup for detection (Zhang et al., 2019): each image is blended
    with a random partner of the batch, ``lam * a + (1 - lam) * b`` with
    ``lam ~ Beta(alpha, alpha)`` drawn per image, and keeps the boxes of both; each box's
    ``weight`` is multiplied by its image's share (``lam`` or ``1 - lam``), for a loss
    that weights every object by it. Images of one size only (no resizing needed).

    Args:
        images (Tensor[B, 3, H, W]): float; targets: as in the module docstring.
        alpha: Beta's parameter (> 0); Zhang et al. use 1.5.
        generator: the randomness (partners and ``lam``); torch's global RNG if None.

    Returns:
        ``(images, targets)``: Tensor[B, 3, H, W] and B dicts with ``boxes``, ``labels``
        and ``weights``. A batch of one image comes back unchanged (with weights).
    """
    _check_batch(images, targets)
    if not alpha > 0:
        raise ValueError(f"alpha must be > 0, got {alpha!r}")
    B = len(images)
    partner = torch.randperm(B, generator=generator)
    seed = int(torch.randint(0, 2**63 - 1, (), generator=generator))
    lam = np.random.default_rng(seed).beta(alpha, alpha, size=B)
    lam = torch.from_numpy(lam).float().where(partner != torch.arange(B), 1.0)
    w = lam.view(B, 1, 1, 1)  # no partner (itself): lam = 1
    mixed = w * images + (1 - w) * images[partner]
    out = []
    for i, j in enumerate(partner.tolist()):
        shares = [(targets[i], lam[i])] + ([(targets[j], 1 - lam[i])] if j != i else [])
        out.append({
            "boxes": torch.cat([t["boxes"].float() for t, _ in shares]),
            "labels": torch.cat([t["labels"] for t, _ in shares]),
            "weights": torch.cat([share * _weights(t) for t, share in shares]),
        })
    return mixed, out


def random_resize(
    images: Tensor,
    targets: Sequence[dict[str, Tensor]],
    sizes: Sequence[int],
    *,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Targets]:
    """Multi-scale training (YOLO v2): the whole batch resized to a side drawn from
    ``sizes`` (bilinear, antialiased), the boxes scaled with it.

    Args:
        images (Tensor[B, 3, H, W]): float; targets: as in the module docstring.
        sizes: the square sides to choose from (e.g. multiples of the network's stride).
        generator: the randomness; torch's global RNG if None.

    Returns:
        ``(images Tensor[B, 3, s, s], targets)`` with boxes in the new pixels.
    """
    _check_batch(images, targets)
    _check_sizes(sizes)
    s = int(sizes[int(torch.randint(len(sizes), (), generator=generator))])
    H, W = images.shape[-2:]
    if (H, W) == (s, s):
        return images, [dict(t) for t in targets]
    resized = F.interpolate(
        images, size=(s, s), mode="bilinear", antialias=True, align_corners=False
    )
    scale = torch.tensor([s / W, s / H, s / W, s / H])
    return resized, [dict(t, boxes=t["boxes"].float() * scale) for t in targets]


class DetectionMixUp:
    """:func:`detection_mixup` as a batch transform ``(images, targets) -> (images,
    targets)``, for :func:`~d2lcv.recipes.train_yolo`'s ``batch_transform``."""

    def __init__(self, alpha: float = 1.5, *, generator: torch.Generator | None = None) -> None:
        if not alpha > 0:
            raise ValueError(f"alpha must be > 0, got {alpha!r}")
        self.alpha, self.generator = alpha, generator

    def __call__(self, images: Tensor, targets: Sequence[dict[str, Tensor]]) -> tuple[Tensor, Targets]:
        return detection_mixup(images, targets, alpha=self.alpha, generator=self.generator)

    def __repr__(self) -> str:
        return f"DetectionMixUp(alpha={self.alpha})"


class RandomResize:
    """:func:`random_resize` as a batch transform ``(images, targets) -> (images,
    targets)``: a new side from ``sizes`` for every batch."""

    def __init__(self, sizes: Sequence[int], *, generator: torch.Generator | None = None) -> None:
        _check_sizes(sizes)
        self.sizes, self.generator = tuple(sizes), generator

    def __call__(self, images: Tensor, targets: Sequence[dict[str, Tensor]]) -> tuple[Tensor, Targets]:
        return random_resize(images, targets, self.sizes, generator=self.generator)

    def __repr__(self) -> str:
        return f"RandomResize(sizes={self.sizes})"
