"""Pluggable training steps: how one batch becomes a loss, metrics and optimizer steps.

:func:`~d2lcv.engine.fit` owns the loop (epochs, modes, metrics over processes, schedules,
checkpoints, callbacks); a :class:`Step` owns what differs between tasks. It turns a batch
into a :class:`StepOutput`: per-batch *sums* of its metrics and the number ``n`` they are
over, so that the loop can add them up over batches and processes and report
``sum / n`` per epoch as ``train_<name>`` and ``val_<name>``.

Steps here: :class:`SupervisedStep` (classification, the default) and :class:`LossStep`
(any ``fn(model, batch) -> (loss, metrics)``, e.g. detection with dict targets); in
sibling modules :class:`~d2lcv.engine.pixels.ClosureStep` (L-BFGS, pixel optimisation),
:class:`~d2lcv.engine.gan.GANStep` and :class:`~d2lcv.engine.sequence.TBPTTStep`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from d2lcv.metrics.classification import num_correct

from .context import Context

__all__ = ["StepOutput", "Step", "SupervisedStep", "LossStep", "weighted_sums", "batch_size"]

LossFn = Callable[[Tensor, Tensor], Tensor]
Metric = Callable[[Tensor, Tensor], Tensor]


class StepOutput(NamedTuple):
    """What a step returns for one batch.

    Attributes:
        loss (Tensor[] or None): the loss that was (or would be) minimised, with its graph.
        sums: ``{name: sum over the batch}`` of each reported metric, Python numbers or
            0-d tensors (tensors are added up as tensors, in their dtype, so a step can
            keep its numbers on the device without a sync per batch).
        n: the number of examples (tokens, steps, ...) the sums are over.
    """

    loss: Tensor | None
    sums: dict[str, Any]
    n: int


class Step:
    """The base step: subclasses define :meth:`loss`; :meth:`update` and :meth:`evaluate`
    have defaults built on it.

    Hooks the loop calls:

    * :meth:`reset` at the start of every pass (training epoch, evaluation),
    * :meth:`update` for each training batch, :meth:`evaluate` for each validation batch
      (the model is in eval mode and gradients are off),
    * :meth:`finalize` on the epoch's means (to add derived metrics such as perplexity).
    """

    def reset(self, ctx: Context) -> None:
        """Called at the start of every training epoch and evaluation pass."""

    def loss(self, model: nn.Module, batch: Any, ctx: Context) -> StepOutput:
        """The batch's loss and metric sums (the batch is as the loader yields it)."""
        raise NotImplementedError(f"{type(self).__name__} must define loss() or update()")

    def update(self, model: nn.Module, batch: Any, ctx: Context) -> StepOutput:
        """One training step: :meth:`loss` under ``ctx.autocast()``, then ``ctx.optimize``."""
        with ctx.autocast():
            out = self.loss(model, batch, ctx)
        ctx.optimize(out.loss)
        return out

    def evaluate(self, model: nn.Module, batch: Any, ctx: Context) -> StepOutput:
        """One validation batch: :meth:`loss` under ``ctx.autocast()`` without gradients."""
        with torch.no_grad(), ctx.autocast():
            return self.loss(model, batch, ctx)

    def finalize(self, means: dict[str, float]) -> dict[str, float]:
        """The epoch's reported metrics from the means ``sum / n`` (default: as they are)."""
        return means


def batch_size(batch: Any) -> int:
    """The length of the first tensor in ``batch`` (a tensor, or nested tuples/lists/dicts)."""
    if isinstance(batch, Tensor):
        return len(batch)
    items = batch.values() if isinstance(batch, Mapping) else batch if isinstance(batch, (tuple, list)) else ()
    for item in items:
        try:
            return batch_size(item)
        except ValueError:
            continue
    raise ValueError(f"cannot tell the batch size of a {type(batch).__name__}: it holds no tensor; pass size=")


def weighted_sums(values: Mapping[str, Any], n: int) -> dict[str, Any]:
    """``{name: value * n}`` for per-batch means: tensors detached (and kept as tensors),
    Python numbers as floats."""
    return {k: v.detach() * n if isinstance(v, Tensor) else float(v) * n for k, v in values.items()}


class SupervisedStep(Step):
    """Classification (or any ``model(x) -> logits`` with ``loss_fn(logits, y)``).

    Batches are ``(x, y)``; targets ``y`` are class indices (int64 ``[B]``) or soft labels
    (float ``[B, C]``, from mixup or CutMix), given to ``loss_fn`` as they are. Reports
    ``loss`` (the mean over examples of the per-batch mean loss) and ``acc`` (``metric``'s
    sum over examples / n; NaN with ``metric=None``).

    The order of operations is that of the classic loop, so numbers are bit-identical to
    it: forward under autocast, ``zero_grad``, backward, clip, step, scheduler, then
    ``loss.item() * len(y)`` and ``metric(logits, y).item()`` added up as Python floats.

    Args:
        loss_fn: ``loss_fn(logits, targets)``, a mean over the batch.
        metric: ``metric(logits, targets)`` -> the batch's *sum* of a per-example score
            (default :func:`~d2lcv.metrics.classification.num_correct`), or ``None``.
    """

    def __init__(self, loss_fn: LossFn = F.cross_entropy, metric: Metric | None = num_correct) -> None:
        if not callable(loss_fn):
            raise ValueError(f"loss_fn must be callable, got {type(loss_fn).__name__}")
        if metric is not None and not callable(metric):
            raise ValueError(f"metric must be callable or None, got {type(metric).__name__}")
        self.loss_fn, self.metric = loss_fn, metric

    def _forward(
        self, model: nn.Module, batch: Any, ctx: Context
    ) -> tuple[Tensor, Tensor, Tensor]:
        x, y = batch
        x, y = x.to(ctx.device, non_blocking=True), y.to(ctx.device, non_blocking=True)
        with ctx.autocast():
            logits = model(x)  # [B, C]
            loss = self.loss_fn(logits, y)  # mean over the batch
        return loss, logits, y

    def _output(self, loss: Tensor, logits: Tensor, y: Tensor) -> StepOutput:
        score = self.metric(logits, y).item() if self.metric is not None else math.nan
        return StepOutput(loss, {"loss": loss.item() * len(y), "acc": score}, len(y))

    def loss(self, model: nn.Module, batch: Any, ctx: Context) -> StepOutput:
        return self._output(*self._forward(model, batch, ctx))

    def update(self, model: nn.Module, batch: Any, ctx: Context) -> StepOutput:
        loss, logits, y = self._forward(model, batch, ctx)
        ctx.optimize(loss)
        return self._output(loss, logits, y)

    def evaluate(self, model: nn.Module, batch: Any, ctx: Context) -> StepOutput:
        with torch.no_grad():
            return self.loss(model, batch, ctx)

    def __repr__(self) -> str:
        name = getattr(self.metric, "__name__", repr(self.metric))
        return f"SupervisedStep(loss_fn={getattr(self.loss_fn, '__name__', self.loss_fn)}, metric={name})"


class LossStep(Step):
    """A step from a function ``fn(model, batch) -> (loss, {name: batch mean})``.

    For tasks whose batches are not ``(x, int targets)``, e.g. detection, where a batch
    is ``(images Tensor[B, 3, H, W], targets list of B dicts with boxes Tensor[G_i, 4] and
    labels Tensor[G_i])`` and the function returns ``(loss, {"cls_loss": ..., "box_loss": ...})``.
    Reports the loss (as ``loss_name``) and every entry of the dict, each weighted by the
    batch size, so the epoch's numbers are means over examples.

    Args:
        fn: ``fn(model, batch) -> (loss Tensor[], metrics)``; metric values are 0-d tensors
            (detached here) or numbers, means over the batch.
        move: ``move(batch, device) -> batch`` (default: every tensor to the device, see
            :meth:`Context.to_device`); e.g. move only the images when the loss wants the
            targets on the CPU.
        size: ``size(batch) -> int``, the examples in a batch (default :func:`batch_size`:
            the length of the first tensor); return 1 to report per-step values.
        loss_name: the name the loss is reported under; ``None`` when ``fn``'s metrics
            already hold it.
    """

    def __init__(
        self,
        fn: Callable[[nn.Module, Any], tuple[Tensor, Mapping[str, Any]]],
        *,
        move: Callable[[Any, torch.device], Any] | None = None,
        size: Callable[[Any], int] = batch_size,
        loss_name: str | None = "loss",
    ) -> None:
        for arg, value in (("fn", fn), ("size", size)):
            if not callable(value):
                raise ValueError(f"{arg} must be callable, got {type(value).__name__}")
        if move is not None and not callable(move):
            raise ValueError(f"move must be callable or None, got {type(move).__name__}")
        self.fn, self.move, self.size, self.loss_name = fn, move, size, loss_name

    def loss(self, model: nn.Module, batch: Any, ctx: Context) -> StepOutput:
        batch = ctx.to_device(batch) if self.move is None else self.move(batch, ctx.device)
        loss, metrics = self.fn(model, batch)
        n = self.size(batch)
        values = {self.loss_name: loss, **metrics} if self.loss_name is not None else dict(metrics)
        return StepOutput(loss, weighted_sums(values, n), n)
