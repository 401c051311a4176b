"""Counting a model's parameters."""

from __future__ import annotations

from torch import nn

__all__ = ["count_params"]


def count_params(model: nn.Module, *, trainable_only: bool = False) -> int:
    """The number of scalar parameters of ``model`` (only those that require a gradient
    with ``trainable_only=True``). Shared parameters are counted once."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
