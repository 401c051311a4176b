"""Two-dimensional toy distributions for generative models: mixtures of Gaussians on a ring
or a grid (the mode-collapse benchmarks of Metz et al., 2017) and a noisy circle.

Every sampler takes ``n`` and an optional CPU ``torch.Generator`` and returns Tensor[n, 2]
(float32); the same generator state gives the same points.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["ring_centers", "grid_centers", "gaussian_mixture", "ring_of_gaussians", "grid_of_gaussians", "circle"]


def _check_n(n: int) -> None:
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be a non-negative int, got {n!r}")


def ring_centers(modes: int = 8, radius: float = 2.0) -> Tensor:
    """Tensor[modes, 2]: ``modes`` points evenly spaced on a circle, the first at angle 0."""
    if modes < 1 or not radius > 0:
        raise ValueError(f"need modes >= 1 and radius > 0, got modes={modes}, radius={radius}")
    angle = torch.arange(modes, dtype=torch.float64) * (2 * math.pi / modes)
    return (radius * torch.stack([angle.cos(), angle.sin()], 1)).float()


def grid_centers(side: int = 5, spacing: float = 2.0) -> Tensor:
    """Tensor[side**2, 2]: a ``side x side`` grid centred on the origin, row by row."""
    if side < 1 or not spacing > 0:
        raise ValueError(f"need side >= 1 and spacing > 0, got side={side}, spacing={spacing}")
    ticks = (torch.arange(side, dtype=torch.float32) - (side - 1) / 2) * spacing
    ys, xs = torch.meshgrid(ticks, ticks, indexing="ij")
    return torch.stack([xs.flatten(), ys.flatten()], 1)


def gaussian_mixture(n: int, centers: Tensor, std: float, *, generator: torch.Generator | None = None) -> Tensor:
    """``n`` points from an equal-weight mixture of isotropic Gaussians.

    Args:
        centers (Tensor[K, D]): the means; std: each component's standard deviation (>= 0).
        generator: the CPU generator to draw from; ``None``: torch's global one.

    Returns:
        Tensor[n, D]: the points (components drawn uniformly at random).
    """
    _check_n(n)
    if centers.dim() != 2 or len(centers) == 0:
        raise ValueError(f"centers must be a non-empty Tensor[K, D], got {tuple(centers.shape)}")
    if not std >= 0:
        raise ValueError(f"std must be >= 0, got {std}")
    which = torch.randint(len(centers), (n,), generator=generator)
    return centers[which] + std * torch.randn(n, centers.shape[1], generator=generator)


def ring_of_gaussians(
    n: int, modes: int = 8, radius: float = 2.0, std: float = 0.02, *, generator: torch.Generator | None = None
) -> Tensor:
    """``n`` points from ``modes`` Gaussians (std ``std``) on a circle of radius ``radius``."""
    return gaussian_mixture(n, ring_centers(modes, radius), std, generator=generator)


def grid_of_gaussians(
    n: int, side: int = 5, spacing: float = 2.0, std: float = 0.05, *, generator: torch.Generator | None = None
) -> Tensor:
    """``n`` points from ``side**2`` Gaussians on a grid (see :func:`grid_centers`)."""
    return gaussian_mixture(n, grid_centers(side, spacing), std, generator=generator)


def circle(n: int, radius: float = 1.0, noise: float = 0.05, *, generator: torch.Generator | None = None) -> Tensor:
    """``n`` points at uniform angles on a circle, pushed off it radially by N(0, noise^2)."""
    _check_n(n)
    if not radius > 0 or not noise >= 0:
        raise ValueError(f"need radius > 0 and noise >= 0, got radius={radius}, noise={noise}")
    angle = torch.rand(n, generator=generator) * (2 * math.pi)
    r = radius + noise * torch.randn(n, generator=generator)
    return torch.stack([r * angle.cos(), r * angle.sin()], 1)
