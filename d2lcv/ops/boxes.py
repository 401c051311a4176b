"""Bounding boxes: the three formats, conversions, areas and input checks.

A box is four numbers in one of three formats:

* ``"xyxy"``: corners ``(x1, y1, x2, y2)``, top-left then bottom-right (the default here);
* ``"cxcywh"``: centre and size ``(cx, cy, w, h)``;
* ``"xywh"``: top-left corner and size ``(x, y, w, h)`` (COCO's json format).

IoU and its variants are in :mod:`d2lcv.ops.iou`.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["FORMATS", "check_boxes", "check_box_shape", "float_boxes", "box_convert", "box_area"]

FORMATS = ("xyxy", "cxcywh", "xywh")


def check_boxes(boxes: Tensor, labels: Tensor | None = None) -> None:
    """Raise ``ValueError`` unless ``boxes`` is Tensor[N, 4] xyxy with x1 <= x2, y1 <= y2
    (and ``labels``, if given, is Tensor[N]). NaN coordinates are rejected too."""
    if not isinstance(boxes, Tensor) or boxes.ndim != 2 or boxes.shape[1] != 4:
        got = f"shape {tuple(boxes.shape)}" if isinstance(boxes, Tensor) else type(boxes).__name__
        raise ValueError(f"boxes must be Tensor[N, 4] (x1, y1, x2, y2), got {got}")
    bad = ~((boxes[:, 2] >= boxes[:, 0]) & (boxes[:, 3] >= boxes[:, 1]))  # NaN compares False
    if bool(bad.any()):
        i = int(bad.nonzero()[0])
        raise ValueError(f"boxes must be xyxy with x1 <= x2 and y1 <= y2, got box {i}: {boxes[i].tolist()}")
    if labels is not None and (not isinstance(labels, Tensor) or labels.shape != (boxes.shape[0],)):
        got = f"shape {tuple(labels.shape)}" if isinstance(labels, Tensor) else type(labels).__name__
        raise ValueError(f"labels must be Tensor[{boxes.shape[0]}], one per box, got {got}")


def check_box_shape(boxes: Tensor, name: str) -> None:
    """Raise ``ValueError`` unless ``boxes`` is a Tensor[..., 4] (``name`` goes in the message)."""
    if not isinstance(boxes, Tensor) or boxes.ndim < 1 or boxes.shape[-1] != 4:
        got = f"shape {tuple(boxes.shape)}" if isinstance(boxes, Tensor) else type(boxes).__name__
        raise ValueError(f"{name} must be a Tensor[..., 4], got {got}")


def float_boxes(boxes: Tensor) -> Tensor:
    """Integer boxes as float32 (areas of int boxes would overflow or truncate)."""
    return boxes if boxes.is_floating_point() else boxes.float()


def box_convert(boxes: Tensor, in_fmt: str, out_fmt: str) -> Tensor:
    """Convert boxes between ``"xyxy"``, ``"cxcywh"`` and ``"xywh"``.

    Args:
        boxes (Tensor[..., 4]): boxes in ``in_fmt``.
        in_fmt, out_fmt: one of :data:`FORMATS`.

    Returns:
        Tensor[..., 4]: the same boxes in ``out_fmt`` (a new tensor).
    """
    check_box_shape(boxes, "boxes")
    for name, fmt in (("in_fmt", in_fmt), ("out_fmt", out_fmt)):
        if fmt not in FORMATS:
            raise ValueError(f"{name} must be one of {FORMATS}, got {fmt!r}")
    if in_fmt == out_fmt:
        return boxes.clone()
    a, b, c, d = boxes.unbind(-1)
    if in_fmt == "cxcywh":  # -> xyxy
        a, b, c, d = a - c / 2, b - d / 2, a + c / 2, b + d / 2
    elif in_fmt == "xywh":
        a, b, c, d = a, b, a + c, b + d
    if out_fmt == "cxcywh":  # xyxy ->
        a, b, c, d = (a + c) / 2, (b + d) / 2, c - a, d - b
    elif out_fmt == "xywh":
        a, b, c, d = a, b, c - a, d - b
    return torch.stack((a, b, c, d), dim=-1)


def box_area(boxes: Tensor) -> Tensor:
    """Areas of xyxy boxes.

    Args:
        boxes (Tensor[..., 4]): xyxy, x1 <= x2, y1 <= y2.

    Returns:
        Tensor[...]: ``(x2 - x1) * (y2 - y1)``.
    """
    check_box_shape(boxes, "boxes")
    boxes = float_boxes(boxes)
    return (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])
