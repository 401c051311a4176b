"""Callbacks: code that :func:`~d2lcv.engine.fit` runs at fixed points of the loop.

The hooks, in the order they fire::

    on_fit_start(ctx)
    for each epoch:
        on_epoch_start(ctx)
        for each training batch: on_step_end(ctx, metrics)   # metrics: the batch's means
        on_epoch_end(ctx, history)                          # after validation, history updated
    on_fit_end(ctx, history)

A callback may set ``ctx.stop = True`` to end the run after the current epoch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .context import Context
from .distributed import is_main_process
from .history import History

__all__ = ["Callback", "LivePlot", "StepLog", "Snapshots"]


class Callback:
    """Base class: every hook does nothing; override the ones you need."""

    def on_fit_start(self, ctx: Context) -> None:
        """Before the first epoch (also when there is none to run)."""

    def on_epoch_start(self, ctx: Context) -> None:
        """Before the epoch's training pass; ``ctx.epoch`` is its 0-based index."""

    def on_step_end(self, ctx: Context, metrics: dict[str, float]) -> None:
        """After each training batch; ``metrics`` are its ``{name: sum / n}`` (floats) and
        ``ctx.iteration`` counts the batches done, this one included."""

    def on_epoch_end(self, ctx: Context, history: History) -> None:
        """After the epoch's record was added to ``history`` (and the checkpoint saved)."""

    def on_fit_end(self, ctx: Context, history: History) -> None:
        """After the last epoch."""


class LivePlot(Callback):
    """Training curves redrawn in the notebook after each epoch (:class:`d2lcv.plot.LivePlot`,
    imported when first drawn, so matplotlib loads only when asked for). Draws on rank 0
    only, and nothing outside a Jupyter kernel.

    Args:
        metrics: the metrics to plot, one axes each (``train_<m>`` and ``val_<m>``);
            default: every ``train_<m>`` of the history, e.g. ``("loss", "acc")``.
    """

    def __init__(self, metrics: tuple[str, ...] | None = None) -> None:
        self.metrics = metrics
        self.plot: Any = None

    def on_epoch_end(self, ctx: Context, history: History) -> None:
        if not is_main_process():
            return
        if self.plot is None:
            from d2lcv.plot import LivePlot as Figure  # matplotlib only when asked for

            metrics = self.metrics or tuple(k[len("train_"):] for k in history.keys() if k.startswith("train_"))
            self.plot = Figure(metrics or ("loss",))
        self.plot.update(history)


class StepLog(Callback):
    """One record per training batch (per optimizer step for one-optimizer steps): the
    batch's metrics, e.g. the per-step losses of a style-transfer optimisation.

    Attributes:
        records: ``[{name: float}, ...]`` in order; ``log["total"]`` is one metric's list,
            :meth:`as_dict` all of them.
    """

    def __init__(self) -> None:
        self.records: list[dict[str, float]] = []

    def on_step_end(self, ctx: Context, metrics: dict[str, float]) -> None:
        self.records.append(dict(metrics))

    def __len__(self) -> int:
        return len(self.records)

    def keys(self) -> list[str]:
        """The metric names, in first-seen order."""
        return list(dict.fromkeys(k for r in self.records for k in r))

    def __getitem__(self, key: str) -> list[float]:
        if key not in self.keys():
            raise KeyError(f"the step log has no {key!r}; it has {self.keys()}")
        return [r[key] for r in self.records if key in r]

    def as_dict(self) -> dict[str, list[float]]:
        """``{name: [value per step]}``."""
        return {k: self[k] for k in self.keys()}


class Snapshots(Callback):
    """Copies of something during training, e.g. of the image being optimised.

    ``fn(ctx)`` is recorded, as ``(iteration, value)``, at the start (iteration 0), after
    every ``every``-th training batch, and after the last one (``every=0``: only the first
    and the last).

    Args:
        every: the interval in training batches (``ctx.iteration``), >= 0.
        fn: ``fn(ctx) -> value``; it should return a copy (e.g. ``t.detach().clone()``).

    Attributes:
        snapshots: ``[(iteration, value), ...]``.
    """

    def __init__(self, every: int, fn: Callable[[Context], Any]) -> None:
        if isinstance(every, bool) or not isinstance(every, int) or every < 0:
            raise ValueError(f"every must be a non-negative int, got {every!r}")
        if not callable(fn):
            raise ValueError(f"fn must be callable, got {type(fn).__name__}")
        self.every, self.fn = every, fn
        self.snapshots: list[tuple[int, Any]] = []

    def _take(self, ctx: Context) -> None:
        self.snapshots.append((ctx.iteration, self.fn(ctx)))

    def on_fit_start(self, ctx: Context) -> None:
        self._take(ctx)

    def on_step_end(self, ctx: Context, metrics: dict[str, float]) -> None:
        if self.every and ctx.iteration % self.every == 0:
            self._take(ctx)

    def on_fit_end(self, ctx: Context, history: History) -> None:
        if not self.snapshots or self.snapshots[-1][0] != ctx.iteration:
            self._take(ctx)
