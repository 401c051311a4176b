"""Boxes on images, coloured by class."""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.patches import Rectangle
from torch import Tensor

__all__ = ["PALETTE", "class_color", "draw_boxes"]


PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94",
    "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5",
)
"""The class colours (matplotlib's tab20 order: the ten strong colours first)."""


def class_color(name: str, classes: Sequence[str] | None = None) -> str:
    """The colour of a class: ``PALETTE[classes.index(name)]`` when the dataset's class list
    is given (distinct colours for up to 20 classes), else a colour fixed by the name
    itself (a checksum of it), so the same class is drawn alike in every figure."""
    if classes is not None and name in classes:
        return PALETTE[list(classes).index(name) % len(PALETTE)]
    return PALETTE[zlib.crc32(name.encode()) % len(PALETTE)]


def draw_boxes(
    ax: Axes,
    boxes: Tensor | np.ndarray | Sequence[Sequence[float]],
    labels: Sequence[str] | None = None,
    colors: str | Sequence[Any] | None = None,
    scores: Tensor | Sequence[float] | None = None,
    *,
    classes: Sequence[str] | None = None,
    linewidth: float = 2.0,
) -> Axes:
    """Draw boxes (and their labels and scores) on an axes that shows an image.

    Args:
        ax: the axes, e.g. from ``ax.imshow(img)``.
        boxes (Tensor[N, 4]): xyxy in pixels: ``x1 <= x2``, ``y1 <= y2``.
        labels: N strings, written at each box's top-left corner.
        colors: one color for all boxes, or N colors. Default: by class, the same in every
            panel and figure (:func:`class_color`); without labels, matplotlib's cycle.
        scores (Tensor[N]): appended to the labels as ``"cat 0.91"``.
        classes: all class names of the dataset, so that each class gets its own colour
            (:func:`class_color`); without it, colours come from the label text.

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
    if colors is None and labels is not None:
        colors = [class_color(str(label), classes) for label in labels]
    elif colors is None or isinstance(colors, str):
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
