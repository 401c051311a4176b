"""Bounding boxes: formats, areas, IoU and its variants (GIoU, DIoU, CIoU) and their losses.

A box is four numbers in one of three formats:

* ``"xyxy"``: corners ``(x1, y1, x2, y2)``, top-left then bottom-right (the default here);
* ``"cxcywh"``: centre and size ``(cx, cy, w, h)``;
* ``"xywh"``: top-left corner and size ``(x, y, w, h)`` (COCO's json format).

The pairwise functions return an ``[N, M]`` matrix for ``N`` and ``M`` boxes and equal
``torchvision.ops`` on valid boxes; where torchvision divides 0 by 0 (two zero-area boxes)
they return a defined value instead of NaN (IoU 0). The losses take two ``[N, 4]`` sets of
boxes, matched row by row, and equal ``torchvision.ops.*_box_iou_loss``.

References: Rezatofighi et al., Generalized Intersection over Union, CVPR 2019 (GIoU);
Zheng et al., Distance-IoU Loss, AAAI 2020 (DIoU, CIoU).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = [
    "FORMATS",
    "check_boxes",
    "box_convert",
    "box_area",
    "box_iou",
    "generalized_box_iou",
    "distance_box_iou",
    "complete_box_iou",
    "giou_loss",
    "diou_loss",
    "ciou_loss",
]

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


def _check_shape(boxes: Tensor, name: str) -> None:
    if not isinstance(boxes, Tensor) or boxes.ndim < 1 or boxes.shape[-1] != 4:
        got = f"shape {tuple(boxes.shape)}" if isinstance(boxes, Tensor) else type(boxes).__name__
        raise ValueError(f"{name} must be a Tensor[..., 4], got {got}")


def _float(boxes: Tensor) -> Tensor:
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
    _check_shape(boxes, "boxes")
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
    _check_shape(boxes, "boxes")
    boxes = _float(boxes)
    return (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])


def _safe_div(num: Tensor, den: Tensor) -> Tensor:
    """``num / den``, and 0 where ``den`` is 0 (e.g. the IoU of two zero-area boxes)."""
    return torch.where(den > 0, num / torch.where(den > 0, den, torch.ones_like(den)), torch.zeros_like(num))


def _inter_union(b1: Tensor, b2: Tensor) -> tuple[Tensor, Tensor]:
    """Intersection and union areas of xyxy boxes that broadcast against each other
    (``[N, 1, 4]`` and ``[1, M, 4]`` for all pairs, or two ``[N, 4]`` for matched rows)."""
    x1, y1, x2, y2 = (c.contiguous() for c in b1.unbind(-1))  # contiguous columns: faster broadcasting
    X1, Y1, X2, Y2 = (c.contiguous() for c in b2.unbind(-1))
    w = (torch.min(x2, X2) - torch.max(x1, X1)).clamp_(min=0)
    h = (torch.min(y2, Y2) - torch.max(y1, Y1)).clamp_(min=0)
    inter = w.mul_(h)
    union = ((x2 - x1) * (y2 - y1) + (X2 - X1) * (Y2 - Y1)) - inter  # areas before broadcasting
    return inter, union


def _overlap_terms(b1: Tensor, b2: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Intersection, union, enclosing-box width and height, squared centre distance
    (``b1``, ``b2`` broadcast as in :func:`_inter_union`)."""
    inter, union = _inter_union(b1, b2)
    x1, y1, x2, y2 = b1.unbind(-1)
    X1, Y1, X2, Y2 = b2.unbind(-1)
    w_c = (torch.max(x2, X2) - torch.min(x1, X1)).clamp_(min=0)
    h_c = (torch.max(y2, Y2) - torch.min(y1, Y1)).clamp_(min=0)
    centre_dist2 = (((x1 + x2) - (X1 + X2)) / 2) ** 2 + (((y1 + y2) - (Y1 + Y2)) / 2) ** 2
    return inter, union, w_c, h_c, centre_dist2


def _aspect_term(b1: Tensor, b2: Tensor) -> Tensor:
    """CIoU's aspect-ratio consistency ``v = 4/pi^2 (atan(w2/h2) - atan(w1/h1))^2``."""
    w1, h1 = b1[..., 2] - b1[..., 0], b1[..., 3] - b1[..., 1]
    w2, h2 = b2[..., 2] - b2[..., 0], b2[..., 3] - b2[..., 1]
    return (4 / math.pi**2) * (torch.atan(w2 / h2) - torch.atan(w1 / h1)).pow(2)


def _pairs(boxes1: Tensor, boxes2: Tensor) -> tuple[Tensor, Tensor]:
    """Validate two box sets and shape them ``[N, 1, 4]`` and ``[1, M, 4]`` for all pairs."""
    check_boxes(boxes1)
    check_boxes(boxes2)
    return _float(boxes1)[:, None, :], _float(boxes2)[None, :, :]


def box_iou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """Intersection over union (Jaccard index) of every pair of boxes.

    Args:
        boxes1 (Tensor[N, 4]): xyxy, x1 <= x2, y1 <= y2.
        boxes2 (Tensor[M, 4]): xyxy.

    Returns:
        Tensor[N, M]: ``|A & B| / |A | B|``; 0 where both boxes have zero area.
    """
    b1, b2 = _pairs(boxes1, boxes2)
    inter, union = _inter_union(b1, b2)
    return _safe_div(inter, union)


def generalized_box_iou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """Generalized IoU of every pair: ``IoU - |C \\ (A | B)| / |C|``, C the smallest enclosing box.

    In [-1, 1]; unlike IoU it still tells how far apart two disjoint boxes are.

    Args:
        boxes1 (Tensor[N, 4]), boxes2 (Tensor[M, 4]): xyxy.

    Returns:
        Tensor[N, M].

    Reference: Rezatofighi et al., Generalized Intersection over Union, CVPR 2019.
    """
    b1, b2 = _pairs(boxes1, boxes2)
    inter, union, w_c, h_c, _ = _overlap_terms(b1, b2)
    area_c = w_c * h_c
    return _safe_div(inter, union) - _safe_div(area_c - union, area_c)


def distance_box_iou(boxes1: Tensor, boxes2: Tensor, eps: float = 1e-7) -> Tensor:
    """Distance IoU of every pair: ``IoU - d^2 / c^2``, d the distance between the centres,
    c the diagonal of the smallest enclosing box. In [-1, 1].

    Args:
        boxes1 (Tensor[N, 4]), boxes2 (Tensor[M, 4]): xyxy.
        eps: added to ``c^2``, as torchvision does.

    Returns:
        Tensor[N, M].

    Reference: Zheng et al., Distance-IoU Loss, AAAI 2020.
    """
    b1, b2 = _pairs(boxes1, boxes2)
    inter, union, w_c, h_c, d2 = _overlap_terms(b1, b2)
    return _safe_div(inter, union) - d2 / (w_c**2 + h_c**2 + eps)


def complete_box_iou(boxes1: Tensor, boxes2: Tensor, eps: float = 1e-7) -> Tensor:
    """Complete IoU of every pair: ``DIoU - alpha * v``, v the aspect-ratio term,
    ``alpha = v / (1 - IoU + v)`` (treated as a constant for gradients).

    Args:
        boxes1 (Tensor[N, 4]), boxes2 (Tensor[M, 4]): xyxy with positive heights.
        eps: as in torchvision.

    Returns:
        Tensor[N, M].

    Reference: Zheng et al., Distance-IoU Loss, AAAI 2020.
    """
    b1, b2 = _pairs(boxes1, boxes2)
    inter, union, w_c, h_c, d2 = _overlap_terms(b1, b2)
    iou = _safe_div(inter, union)
    v = _aspect_term(b1, b2)
    with torch.no_grad():
        alpha = v / (1 - iou + v + eps)
    return iou - d2 / (w_c**2 + h_c**2 + eps) - alpha * v


def _matched(boxes1: Tensor, boxes2: Tensor) -> tuple[Tensor, Tensor]:
    _check_shape(boxes1, "boxes1")
    _check_shape(boxes2, "boxes2")
    check_boxes(boxes1.reshape(-1, 4))
    check_boxes(boxes2.reshape(-1, 4))
    if boxes1.shape != boxes2.shape:
        raise ValueError(f"the losses compare boxes row by row: got shapes {tuple(boxes1.shape)} and {tuple(boxes2.shape)}")
    return _float(boxes1), _float(boxes2)


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "none":
        return loss
    if reduction == "mean":
        return loss.mean() if loss.numel() > 0 else 0.0 * loss.sum()
    if reduction == "sum":
        return loss.sum()
    raise ValueError(f"reduction must be 'none', 'mean' or 'sum', got {reduction!r}")


def giou_loss(boxes1: Tensor, boxes2: Tensor, reduction: str = "none", eps: float = 1e-7) -> Tensor:
    """``1 - GIoU`` of matched boxes, in [0, 2]; it has a gradient even when the boxes do not overlap.

    Args:
        boxes1 (Tensor[N, 4]): predicted boxes, xyxy.
        boxes2 (Tensor[N, 4]): target boxes, xyxy, row i matched with row i of ``boxes1``.
        reduction: ``"none"`` (Tensor[N]), ``"mean"`` or ``"sum"``.
        eps: keeps the divisions finite, as in torchvision.
    """
    b1, b2 = _matched(boxes1, boxes2)
    inter, union, w_c, h_c, _ = _overlap_terms(b1, b2)
    area_c = w_c * h_c
    giou = inter / (union + eps) - (area_c - union) / (area_c + eps)
    return _reduce(1 - giou, reduction)


def diou_loss(boxes1: Tensor, boxes2: Tensor, reduction: str = "none", eps: float = 1e-7) -> Tensor:
    """``1 - DIoU`` of matched boxes, in [0, 2]: pulls the centres together directly.

    Args as :func:`giou_loss`.
    """
    b1, b2 = _matched(boxes1, boxes2)
    inter, union, w_c, h_c, d2 = _overlap_terms(b1, b2)
    diou = inter / (union + eps) - d2 / (w_c**2 + h_c**2 + eps)
    return _reduce(1 - diou, reduction)


def ciou_loss(boxes1: Tensor, boxes2: Tensor, reduction: str = "none", eps: float = 1e-7) -> Tensor:
    """``1 - CIoU`` of matched boxes: DIoU's loss plus ``alpha * v`` for the aspect ratio.

    Args as :func:`giou_loss`; boxes need positive heights.
    """
    b1, b2 = _matched(boxes1, boxes2)
    inter, union, w_c, h_c, d2 = _overlap_terms(b1, b2)
    iou = inter / (union + eps)
    v = _aspect_term(b1, b2)
    with torch.no_grad():
        alpha = v / (1 - iou + v + eps)
    return _reduce(1 - iou + d2 / (w_c**2 + h_c**2 + eps) + alpha * v, reduction)
