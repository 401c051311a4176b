"""Batch, layer, instance and group normalisation written as one function: they differ
only in the axes over which the mean and variance are taken."""

from __future__ import annotations

from torch import Tensor, nn

__all__ = ["NORM_KINDS", "normalize", "norm_layer"]

NORM_KINDS = ("batch", "layer", "instance", "group")


def normalize(x: Tensor, kind: str, groups: int = 2, eps: float = 1e-5) -> Tensor:
    """Normalise x [N, C, H, W] to mean 0, variance 1 over the axes of ``kind``:

    * ``"batch"``: per channel, over N, H, W (BatchNorm in training mode);
    * ``"layer"``: per example, over C, H, W;
    * ``"instance"``: per example and channel, over H, W;
    * ``"group"``: per example and group of C / groups channels, over them and H, W.

    No scale and shift (the learned gamma, beta come after). Returns [N, C, H, W].
    """
    if x.ndim != 4:
        raise ValueError(f"x must be [N, C, H, W], got shape {tuple(x.shape)}")
    if kind not in NORM_KINDS:
        raise ValueError(f"kind must be one of {NORM_KINDS}, got {kind!r}")
    n, c, h, w = x.shape
    if kind == "group":
        if c % groups:
            raise ValueError(f"groups={groups} must divide the {c} channels")
        x = x.reshape(n, groups, c // groups * h * w)
    axes = {"batch": (0, 2, 3), "layer": (1, 2, 3), "instance": (2, 3), "group": (2,)}
    dims = axes[kind]
    mean = x.mean(dims, keepdim=True)
    var = x.var(dims, keepdim=True, unbiased=False)
    return ((x - mean) / (var + eps).sqrt()).reshape(n, c, h, w)


def norm_layer(kind: str = "batch", groups: int = 8):
    """A ``channels -> module`` factory for :class:`~d2lcv.models.classic.resnet.ResNet`'s
    ``norm``: ``"batch"`` (BatchNorm2d) or ``"group"`` (GroupNorm with ``groups`` groups, or
    fewer when the channels are fewer)."""
    if kind == "batch":
        return nn.BatchNorm2d
    if kind == "group":
        return lambda c: nn.GroupNorm(min(groups, c), c)
    raise ValueError(f"kind must be 'batch' or 'group', got {kind!r}")
