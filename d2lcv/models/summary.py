"""Count a network layer by layer: output shape, parameters and multiply-adds (MACs),
computed from the formulas, not measured.

For a convolution with C_in input and C_out output channels, a k_h x k_w kernel, ``groups``
groups and an H_out x W_out output, each output value costs (C_in / groups) k_h k_w
multiply-adds, so the layer costs ``C_out H_out W_out (C_in / groups) k_h k_w`` per image
and has ``C_out (C_in / groups) k_h k_w (+ C_out biases)`` parameters. A linear layer
costs ``in x out`` per example. Other layers (BN, ReLU, pooling) are counted as zero
MACs, as ``torch.utils.flop_counter.FlopCounterMode`` does (it reports 2 FLOPs per MAC).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

__all__ = ["LayerCount", "layer_macs", "count_layers", "count_macs", "format_count", "counts_table"]


class LayerCount(NamedTuple):
    """One leaf module's call: its name, type, output shape, parameters and MACs."""

    name: str
    kind: str
    shape: tuple[int, ...]
    params: int
    macs: int


def layer_macs(module: nn.Module, out: Tensor) -> int:
    """Multiply-adds of one call of a leaf ``module`` that produced ``out`` (bias adds
    not counted): conv ``out.numel() * C_in / groups * k_h * k_w``, linear
    ``out.numel() * in``."""
    if isinstance(module, nn.Conv2d):
        k_h, k_w = module.kernel_size
        return out.numel() * module.in_channels // module.groups * k_h * k_w
    if isinstance(module, nn.Linear):
        return out.numel() * module.in_features
    return 0


@torch.no_grad()
def count_layers(model: nn.Module, x: Tensor) -> list[LayerCount]:
    """Run ``model(x)`` (in eval mode, restored after) and count every leaf module's call.

    Args:
        model: any network; its leaf modules (those without children) are counted.
        x (Tensor[B, ...]): an input; MACs are for the whole batch (use B = 1 for per-image).

    Returns:
        One :class:`LayerCount` per call, in the order of the forward pass; a module called
        twice appears twice, its parameters counted the first time only.
    """
    rows: list[LayerCount] = []
    seen: set[int] = set()

    def hook(module: nn.Module, args: tuple, out: Tensor) -> None:
        params = 0 if id(module) in seen else sum(p.numel() for p in module.parameters(recurse=False))
        seen.add(id(module))
        shape = tuple(out.shape) if isinstance(out, Tensor) else ()
        rows.append(LayerCount(names[module], type(module).__name__, shape, params, layer_macs(module, out)))

    names = {m: n for n, m in model.named_modules()}
    handles = [m.register_forward_hook(hook) for m in model.modules() if not list(m.children())]
    was_training = model.training
    try:
        model.eval()
        model(x)
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return rows


def count_macs(model: nn.Module, x: Tensor) -> int:
    """Total multiply-adds of ``model(x)`` (see :func:`count_layers`)."""
    return sum(r.macs for r in count_layers(model, x))


def format_count(n: float) -> str:
    """``34944 -> '34.9K'``, ``105415200 -> '105.4M'``, ``1.2e9 -> '1.2G'``; below 1000 as is."""
    for unit, size in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.1f}{unit}"
    return f"{n:g}"


def counts_table(rows: list[LayerCount], *, skip_zero: bool = True) -> str:
    """A text table of :func:`count_layers` rows (layers without parameters or MACs are
    skipped unless ``skip_zero=False``) with a total line."""
    lines = [f"{'layer':<24}{'type':<12}{'output':>20}{'params':>10}{'MACs':>10}"]
    for r in rows:
        if skip_zero and not (r.params or r.macs):
            continue
        shape = "x".join(map(str, r.shape[1:]))
        lines.append(f"{r.name:<24}{r.kind:<12}{shape:>20}{format_count(r.params):>10}{format_count(r.macs):>10}")
    total_p, total_m = sum(r.params for r in rows), sum(r.macs for r in rows)
    lines.append(f"{'total':<56}{format_count(total_p):>10}{format_count(total_m):>10}")
    return "\n".join(lines)
