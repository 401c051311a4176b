"""Plotting helpers: image grids, boxes, training curves.

Every helper draws on an ``ax`` it is given (or makes its own figure) and returns the
axes; nothing here changes matplotlib's global settings. :func:`use_svg_display` is the
one exception, and only when a notebook calls it: it sets the notebook's figure format.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from PIL import Image
from torch import Tensor

__all__ = ["use_svg_display", "show_images", "draw_boxes", "plot_history", "compare_histories", "LivePlot"]


def _shell() -> Any:
    """The running Jupyter kernel's shell, or None (plain Python, terminal IPython)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    shell = get_ipython()
    return shell if getattr(shell, "kernel", None) is not None else None


def use_svg_display(fmt: str = "svg") -> None:
    """Show the notebook's figures as SVG (sharp at any zoom); ``fmt="retina"`` for 2x PNG.

    Does nothing outside a Jupyter kernel.
    """
    if fmt not in ("svg", "retina", "png"):
        raise ValueError(f"fmt must be 'svg', 'retina' or 'png', got {fmt!r}")
    if _shell() is None:
        return
    from matplotlib_inline.backend_inline import set_matplotlib_formats

    set_matplotlib_formats(fmt)


# --- images -------------------------------------------------------------------------


def _to_numpy_image(img: Tensor | np.ndarray | Image.Image) -> np.ndarray:
    """An image as a numpy array [H, W] or [H, W, C] that ``imshow`` accepts.

    Tensors are [C, H, W] or [H, W] (float in [0, 1], or uint8); numpy arrays are
    [H, W, C] or [H, W]; PIL images are converted as they are.
    """
    if isinstance(img, Image.Image):
        return np.asarray(img)
    if isinstance(img, Tensor):
        img = img.detach().cpu()
        if img.ndim == 3:
            img = img.permute(1, 2, 0)  # [C, H, W] -> [H, W, C]
        img = img.numpy()
    if not isinstance(img, np.ndarray):
        raise TypeError(f"images must be tensors, numpy arrays or PIL images, got {type(img).__name__}")
    if img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]  # [H, W, 1] -> [H, W]
    if img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[-1] not in (3, 4)):
        raise ValueError(f"an image must be [H, W] or [H, W, 3|4] (tensors: [C, H, W]), got shape {img.shape}")
    if img.dtype != np.uint8:
        img = np.clip(img.astype(np.float32), 0.0, 1.0)
    return img


def show_images(
    imgs: Sequence[Tensor | np.ndarray | Image.Image] | Tensor,
    nrows: int,
    ncols: int,
    titles: Sequence[str] | None = None,
    scale: float = 1.5,
) -> np.ndarray:
    """Show images in a grid without axis ticks.

    Args:
        imgs: up to ``nrows * ncols`` images: tensors [C, H, W] or [H, W] (float in
            [0, 1] or uint8; a batch [N, C, H, W] works too), numpy [H, W, C] or [H, W],
            or PIL images. One-channel images are shown in grey.
        titles: one per image.
        scale: inches per subplot.

    Returns:
        np.ndarray[nrows * ncols] of Axes.
    """
    if len(imgs) > nrows * ncols:
        raise ValueError(f"{len(imgs)} images do not fit in a {nrows}x{ncols} grid")
    if titles is not None and len(titles) != len(imgs):
        raise ValueError(f"got {len(titles)} titles for {len(imgs)} images")
    _, axes = plt.subplots(nrows, ncols, figsize=(ncols * scale, nrows * scale), squeeze=False)
    axes = axes.flatten()
    for i, ax in enumerate(axes):
        ax.axis("off")
        if i < len(imgs):
            img = _to_numpy_image(imgs[i])
            ax.imshow(img, cmap="gray" if img.ndim == 2 else None)
            if titles is not None:
                ax.set_title(titles[i])
    return axes


# --- boxes --------------------------------------------------------------------------


def draw_boxes(
    ax: Axes,
    boxes: Tensor | np.ndarray | Sequence[Sequence[float]],
    labels: Sequence[str] | None = None,
    colors: str | Sequence[Any] | None = None,
    scores: Tensor | Sequence[float] | None = None,
    *,
    linewidth: float = 2.0,
) -> Axes:
    """Draw boxes (and their labels and scores) on an axes that shows an image.

    Args:
        ax: the axes, e.g. from ``ax.imshow(img)``.
        boxes (Tensor[N, 4]): xyxy in pixels: ``x1 <= x2``, ``y1 <= y2``.
        labels: N strings, written at each box's top-left corner.
        colors: one color for all boxes, or N colors; default: matplotlib's cycle.
        scores (Tensor[N]): appended to the labels as ``"cat 0.91"``.

    Returns:
        ``ax``, with N ``Rectangle`` patches added.
    """
    boxes = torch.as_tensor(boxes, dtype=torch.float32).detach().cpu()
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"boxes must have shape [N, 4] (xyxy pixels), got shape {tuple(boxes.shape)}")
    N = len(boxes)
    for name, values in (("labels", labels), ("scores", scores)):
        if values is not None and len(values) != N:
            raise ValueError(f"got {len(values)} {name} for {N} boxes")
    if colors is None or isinstance(colors, str):
        cycle = [colors] if colors else plt.rcParams["axes.prop_cycle"].by_key()["color"]
        colors = [cycle[i % len(cycle)] for i in range(N)]
    elif len(colors) != N:
        raise ValueError(f"got {len(colors)} colors for {N} boxes")
    for i, (x1, y1, x2, y2) in enumerate(boxes.tolist()):
        ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor=colors[i], linewidth=linewidth))
        text = _caption(labels, scores, i)
        if text:
            ax.text(x1, y1, text, va="bottom", ha="left", fontsize=8, color="white",
                    bbox=dict(facecolor=colors[i], edgecolor="none", pad=1))
    return ax


def _caption(labels: Sequence[str] | None, scores: Any, i: int) -> str:
    """``"label score"`` for box ``i``, with whichever parts are given."""
    parts = [] if labels is None else [str(labels[i])]
    if scores is not None:
        parts.append(f"{float(scores[i]):.2f}")
    return " ".join(parts)


# --- training curves ----------------------------------------------------------------


def plot_history(
    history: Any,
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
        ax.set_ylabel(metric)
        ax.grid(True, alpha=0.3)
        if ax.lines:
            ax.legend()
    return axes


def compare_histories(histories: Mapping[str, Any], axes: Sequence[Axes] | None = None) -> np.ndarray:
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
    axes[0].grid(True, alpha=0.3)
    axes[0].legend(fontsize=8)
    train = np.array([histories[n]["train_acc"][-1] for n in names])
    test = np.array([histories[n]["val_acc"][-1] for n in names])
    pos = np.arange(len(names))
    axes[1].bar(pos - 0.2, train, width=0.4, label="train", color="0.7")
    axes[1].bar(pos + 0.2, test, width=0.4, label="test", color=colors)
    for p, tr, te in zip(pos, train, test):
        axes[1].annotate(f"gap\n{tr - te:+.2f}", (p, max(tr, te) + 0.02), ha="center", fontsize=8)
    axes[1].set_xticks(pos, names, fontsize=8)
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

    def render(self, history: Any) -> bytes:
        """Redraw the curves of ``history``; returns the figure as PNG bytes."""
        for ax in self.axes:
            ax.clear()
        plot_history(history, self.axes, self.metrics)
        self.figure.tight_layout()
        buf = io.BytesIO()
        self.figure.savefig(buf, format="png", dpi=100)
        return buf.getvalue()

    def update(self, history: Any) -> None:
        """Redraw, and replace the figure shown in the notebook."""
        if _shell() is None:
            return
        from IPython.display import Image as DisplayImage
        from IPython.display import display

        image = DisplayImage(data=self.render(history), format="png")
        if self.handle is None:
            self.handle = display(image, display_id=True)
        else:
            self.handle.update(image)
