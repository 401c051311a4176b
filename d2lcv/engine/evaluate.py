"""Evaluation and prediction that leave the model in the mode they found it in."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from d2lcv.metrics.classification import num_correct

from .context import Context
from .distributed import resolve_device, unwrap
from .steps import Step, SupervisedStep
from .totals import Totals

__all__ = ["eval_mode", "evaluate", "evaluate_pass", "predict"]


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """``model`` in eval mode inside the block; afterwards every submodule is back in the
    mode it had (also after an exception, and for models whose parts were in different
    modes, e.g. a frozen stage kept in eval mode)."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, mode in modes:
            m.training = mode


@torch.no_grad()
def evaluate_pass(model: nn.Module, loader: Iterable, step: Step, ctx: Context) -> tuple[dict[str, float], int]:
    """One evaluation pass of ``step`` over ``loader``: ``(means, n)`` over all processes.

    The model is unwrapped (no ``DistributedDataParallel`` forward: evaluation needs no
    gradient sync), put in eval mode for the pass, and restored; ``step.reset`` is called first.
    """
    module = unwrap(model)
    totals = Totals()
    training, ctx.training = ctx.training, False
    try:
        with eval_mode(module):
            step.reset(ctx)
            for batch in loader:
                totals.add(step.evaluate(module, batch, ctx))
    finally:
        ctx.training = training
    return totals.means(ctx.device, step), totals.n


def evaluate(
    model: nn.Module,
    loader: Iterable,
    loss_fn: Callable[[Tensor, Tensor], Tensor] = F.cross_entropy,
    *,
    step: Step | None = None,
    device: torch.device | str | None = None,
    metric: Callable[[Tensor, Tensor], Tensor] | None = num_correct,
    amp_dtype: torch.dtype | None = None,
) -> dict[str, float]:
    """The mean metrics of ``model`` on ``loader``, in eval mode, without gradients.

    Under a process group each process evaluates its share and the sums are all-reduced,
    so every process returns the numbers for the whole dataset. The model's modes are
    restored afterwards.

    Args:
        loss_fn, metric: for the default :class:`~d2lcv.engine.steps.SupervisedStep`.
        step: how a batch is evaluated (``step.evaluate``); then leave ``loss_fn`` and
            ``metric`` at their defaults.
        device: default :func:`d2lcv.config.try_device`.
        amp_dtype: autocast to this dtype (``None``: full precision).

    Returns:
        ``{name: mean, ..., "n": examples}``: for classification ``{"loss", "acc", "n"}``
        (``acc`` is NaN when ``metric`` is None).

    Raises:
        ValueError: an empty loader, or both ``step`` and ``loss_fn``/``metric``.
    """
    if step is None:
        step = SupervisedStep(loss_fn, metric)
    elif loss_fn is not F.cross_entropy or metric is not num_correct:
        raise ValueError(f"pass loss_fn and metric to the step, not to evaluate; got step={step!r} "
                         f"with loss_fn={loss_fn!r}, metric={metric!r}")
    ctx = Context(unwrap(model), resolve_device(device), amp_dtype=amp_dtype)
    means, n = evaluate_pass(model, loader, step, ctx)
    return {**means, "n": n}


@torch.no_grad()
def predict(
    model: nn.Module,
    loader: Iterable,
    *,
    device: torch.device | str | None = None,
    amp_dtype: torch.dtype | None = None,
) -> Tensor:
    """The model's outputs on every batch of ``loader``, concatenated, as float32 on the CPU.

    Batches may be ``(inputs, targets)`` pairs (the targets are ignored) or bare inputs;
    the model is in eval mode meanwhile and its modes are restored afterwards.

    Returns:
        Tensor[N, ...]: e.g. logits Tensor[N, C] for a classifier.

    Raises:
        ValueError: the loader yielded no batches.
    """
    device = resolve_device(device)
    module = unwrap(model)
    outputs: list[Tensor] = []
    with eval_mode(module), torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
        for batch in loader:
            x: Any = batch[0] if isinstance(batch, (tuple, list)) else batch
            outputs.append(module(x.to(device)).float().cpu())
    if not outputs:
        raise ValueError("the loader yielded no batches")
    return torch.cat(outputs)
