"""Training curves: one run, several runs side by side, and a live plot in a notebook."""

from __future__ import annotations

import io
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .display import jupyter_shell

__all__ = ["HistoryLike", "plot_history", "compare_histories", "LivePlot"]

HistoryLike = Mapping[str, Sequence[float]]
"""What the curves are drawn from: a :class:`d2lcv.engine.History` (``history["val_acc"]`` is
the list of one key over epochs) or a plain dict of lists with the same keys. (The plot
layer sits below the engine, so it names the shape, not the class.)"""


def plot_history(
    history: HistoryLike,
    axes: Axes | Sequence[Axes] | None = None,
    metrics: Sequence[str] = ("loss", "acc"),
) -> np.ndarray:
    """Training and validation curves, one axes per metric, against the epoch.

    Args:
        history: a :class:`d2lcv.engine.History`, or a dict of lists, with keys
            ``epoch`` and ``train_<metric>`` / ``val_<metric>``.
        axes: one axes per metric; default: a new figure.
        metrics: the metrics to plot, e.g. ``("loss", "acc")``.

    Returns:
        np.ndarray[len(metrics)] of Axes.
    """
    if axes is None:
        _, axes = plt.subplots(1, len(metrics), figsize=(4 * len(metrics), 3), squeeze=False)
    axes = np.asarray(axes, dtype=object).flatten()
    if len(axes) != len(metrics):
        raise ValueError(f"got {len(axes)} axes for {len(metrics)} metrics {tuple(metrics)}")
    for ax, metric in zip(axes, metrics):
        for split, style in (("train", "-"), ("val", "--")):
            key = f"{split}_{metric}"
            if key in history:
                values = history[key]
                ax.plot(history["epoch"][: len(values)], values, style, marker=".", label=split)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # no fractional epochs
        ax.set_ylabel(metric)
        ax.grid(True, alpha=0.3)
        if ax.lines:
            ax.legend()
    return axes


def compare_histories(histories: Mapping[str, HistoryLike], axes: Sequence[Axes] | None = None) -> np.ndarray:
    """Several runs side by side: accuracy curves, and final train vs test accuracy with the gap.

    Args:
        histories: run name -> :class:`d2lcv.engine.History` (or dict of lists) with
            ``epoch``, ``train_acc`` and ``val_acc``.
        axes: two axes; default: a new figure.

    Returns:
        np.ndarray[2] of Axes: curves (train dashed, test solid), and bars of the final values.
    """
    if not histories:
        raise ValueError("histories is empty: pass at least one run")
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(12, 3.8), gridspec_kw={"width_ratios": [3, 2]})
    axes = np.asarray(axes, dtype=object).flatten()
    if len(axes) != 2:
        raise ValueError(f"compare_histories needs 2 axes, got {len(axes)}")
    names = list(histories)
    colors = plt.cm.viridis(np.linspace(0, 0.85, len(names)))
    for name, color in zip(names, colors):
        h = histories[name]
        axes[0].plot(h["epoch"], h["train_acc"], "--", color=color)
        axes[0].plot(h["epoch"], h["val_acc"], "-", color=color, label=name)
    axes[0].set(xlabel="epoch", ylabel="accuracy", title="train (dashed) and test (solid)")
    axes[0].xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0].grid(True, alpha=0.3)
    axes[0].legend(fontsize=8)
    train = np.array([histories[n]["train_acc"][-1] for n in names])
    test = np.array([histories[n]["val_acc"][-1] for n in names])
    pos = np.arange(len(names))
    axes[1].bar(pos - 0.2, train, width=0.4, label="train", color="0.7")
    axes[1].bar(pos + 0.2, test, width=0.4, label="test", color=colors)
    for p, tr, te in zip(pos, train, test):
        axes[1].annotate(f"gap\n{tr - te:+.2f}", (p, max(tr, te) + 0.02), ha="center", fontsize=8)
    axes[1].set_xticks(pos, [textwrap.fill(n, 11) for n in names], fontsize=8)  # long names wrap
    axes[1].set(ylim=(0, 1.2), ylabel="final accuracy", title="final accuracy")
    axes[1].legend(loc="upper right", fontsize=8)
    return axes


class LivePlot:
    """Training curves that redraw in place in a notebook, once per :meth:`update`.

    :func:`d2lcv.engine.fit` uses it with ``plot=True``. The figure is a bare
    ``matplotlib.figure.Figure`` (not pyplot's), shown as a PNG through an IPython
    display handle, so it is drawn once per epoch and not again at the end of the cell.
    Outside a Jupyter kernel, :meth:`update` does nothing.
    """

    def __init__(self, metrics: Sequence[str] = ("loss", "acc"), scale: float = 4.0) -> None:
        self.metrics = tuple(metrics)
        self.figure = Figure(figsize=(scale * len(self.metrics), 0.75 * scale))
        self.axes = self.figure.subplots(1, len(self.metrics), squeeze=False).flatten()
        self.handle: Any = None

    def render(self, history: HistoryLike) -> bytes:
        """Redraw the curves of ``history``; returns the figure as PNG bytes."""
        for ax in self.axes:
            ax.clear()
        plot_history(history, self.axes, self.metrics)
        self.figure.tight_layout()
        buf = io.BytesIO()
        self.figure.savefig(buf, format="png", dpi=100)
        return buf.getvalue()

    def update(self, history: HistoryLike) -> None:
        """Redraw, and replace the figure shown in the notebook."""
        if jupyter_shell() is None:
            return
        from IPython.display import Image as DisplayImage
        from IPython.display import display

        image = DisplayImage(data=self.render(history), format="png")
        if self.handle is None:
            self.handle = display(image, display_id=True)
        else:
            self.handle.update(image)
