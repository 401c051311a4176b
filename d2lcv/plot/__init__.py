"""Layer 3, plotting: image grids, boxes coloured by class, training curves.

Every helper draws on an ``ax`` it is given (or makes its own figure) and returns the
axes; nothing here changes matplotlib's global settings. :func:`use_svg_display` is the
one exception, and only when a notebook calls it: it sets the notebook's figure format.
"""

from __future__ import annotations

from .boxes import PALETTE, class_color, draw_boxes
from .display import jupyter_shell, use_svg_display
from .history import HistoryLike, LivePlot, compare_histories, plot_history
from .images import show_images, to_numpy_image

__all__ = [
    "use_svg_display", "jupyter_shell", "show_images", "to_numpy_image", "PALETTE", "class_color", "draw_boxes",
    "HistoryLike", "plot_history", "compare_histories", "LivePlot",
]
