"""Image statistics that judge a stylised image without any network: edge energy per
orientation and scale (a crude description of brush strokes), the joint colour
histogram, and the distances between two images' statistics that the style pages report."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["orientation_energy", "colour_histogram", "edge_distance", "colour_distance"]


def orientation_energy(x: Tensor, scales: Sequence[int] = (1, 2, 4), bins: int = 8) -> Tensor:
    """A hand-made texture descriptor, independent of any network: how much luminance
    edge an image has per orientation and scale.

    At each scale ``s`` the luminance is average-pooled by ``s``; every pixel's gradient
    (forward differences) adds its magnitude to the bin of its orientation in [0, π).

    Args:
        x (Tensor[B, 3, H, W]): images in [0, 1], H, W > max(scales).
        scales: pooling factors.
        bins: orientation bins.

    Returns:
        Tensor[B, len(scales) * bins]: edge magnitude per orientation bin, a mean over
        positions, scale by scale.
    """
    if x.ndim != 4 or x.shape[1] != 3 or min(x.shape[-2:]) <= max(scales, default=0):
        raise ValueError(
            f"x must be RGB images [B, 3, H, W] with H, W > max(scales) = "
            f"{max(scales, default=0)}, got shape {tuple(x.shape)}"
        )
    if not scales or min(scales) < 1 or bins < 1:
        raise ValueError(f"need scales >= 1 and bins >= 1, got {list(scales)} and {bins}")
    luma = (x * x.new_tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    out = []
    for s in scales:
        y = F.avg_pool2d(luma, s)[:, 0]  # [B, h, w]
        dx, dy = y[:, :-1, 1:] - y[:, :-1, :-1], y[:, 1:, :-1] - y[:, :-1, :-1]
        angle = torch.atan2(dy, dx) % math.pi  # [B, h-1, w-1], in [0, π)
        b = (angle * bins / math.pi).long().clamp(max=bins - 1)
        magnitude = (dx.pow(2) + dy.pow(2)).sqrt()
        out.append((F.one_hot(b, bins) * magnitude[..., None]).mean(dim=(1, 2)))
    return torch.cat(out, dim=1)


def colour_histogram(x: Tensor, bins: int = 8) -> Tensor:
    """The joint RGB histogram of each image, ``bins`` levels per channel.

    Args:
        x (Tensor[B, 3, H, W]): images in [0, 1].

    Returns:
        Tensor[B, bins ** 3]: fractions of pixels, each row summing to 1.
    """
    if x.ndim != 4 or x.shape[1] != 3 or bins < 1:
        raise ValueError(
            f"x must be RGB images [B, 3, H, W] and bins >= 1, got shape "
            f"{tuple(x.shape)} and bins={bins}"
        )
    q = (x.clamp(0, 1) * bins).long().clamp(max=bins - 1)  # [B, 3, H, W]
    index = (q[:, 0] * bins + q[:, 1]) * bins + q[:, 2]  # [B, H, W]
    hist = F.one_hot(index.flatten(1), bins**3).sum(1)  # [B, bins**3]
    return hist.float() / index[0].numel()


def _check_pair(a: Tensor, b: Tensor) -> None:
    for name, x in (("a", a), ("b", b)):
        if x.ndim != 3 or x.shape[0] != 3:
            raise ValueError(f"{name} must be one RGB image [3, H, W] in [0, 1], got shape {tuple(x.shape)}")


def edge_distance(a: Tensor, b: Tensor, scales: Sequence[int] = (1, 2, 4), bins: int = 8) -> float:
    """How differently two images distribute their edges: the mean absolute difference of
    the logarithms of their :func:`orientation_energy` (0 for equal statistics; 0.69 means
    a factor of 2 per bin on average).

    Args:
        a, b (Tensor[3, H, W]): images in [0, 1], of any sizes (H, W > max(scales)).
    """
    _check_pair(a, b)
    ea = orientation_energy(a[None], scales, bins) + 1e-6
    eb = orientation_energy(b[None], scales, bins) + 1e-6
    return (ea.log() - eb.log()).abs().mean().item()


def colour_distance(a: Tensor, b: Tensor, bins: int = 8) -> float:
    """The total variation distance between two images' :func:`colour_histogram`: half the
    l1 distance, 0 for identical palettes, 1 for disjoint ones.

    Args:
        a, b (Tensor[3, H, W]): images in [0, 1], of any sizes.
    """
    _check_pair(a, b)
    ha, hb = colour_histogram(a[None], bins), colour_histogram(b[None], bins)
    return 0.5 * (ha - hb).abs().sum().item()
