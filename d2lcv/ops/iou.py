"""IoU and its variants (GIoU, DIoU, CIoU), and the IoU losses.

The pairwise functions return an ``[N, M]`` matrix for ``N`` and ``M`` boxes and equal
``torchvision.ops`` on valid boxes; where torchvision divides 0 by 0 (two zero-area boxes)
they return a defined value instead of NaN (IoU 0), and CIoU's aspect term is defined for
zero-area boxes too (values and gradients; 0 when a box is a point). The losses take two
``[N, 4]`` sets of boxes, matched row by row, and equal ``torchvision.ops.*_box_iou_loss``.
All of them are scale-free: boxes whose areas would overflow the dtype (float32 coordinates
beyond about 1e18) are first divided by a power of two, exactly.

References: Rezatofighi et al., Generalized Intersection over Union, CVPR 2019 (GIoU);
Zheng et al., Distance-IoU Loss, AAAI 2020 (DIoU, CIoU).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from d2lcv.ops.boxes import check_box_shape, check_boxes, float_boxes

__all__ = [
    "safe_div",
    "box_inter_union",
    "box_iou",
    "generalized_box_iou",
    "distance_box_iou",
    "complete_box_iou",
    "iou_loss",
    "giou_loss",
    "diou_loss",
    "ciou_loss",
]

def safe_div(num: Tensor, den: Tensor) -> Tensor:
    """``num / den``, and 0 where ``den`` is 0 (e.g. the IoU of two zero-area boxes)."""
    return torch.where(den > 0, num / torch.where(den > 0, den, torch.ones_like(den)), torch.zeros_like(num))


def box_inter_union(b1: Tensor, b2: Tensor) -> tuple[Tensor, Tensor]:
    """Intersection and union areas of xyxy boxes that broadcast against each other
    (``[N, 1, 4]`` and ``[1, M, 4]`` for all pairs, or two ``[N, 4]`` for matched rows)."""
    # contiguous columns: faster broadcasting
    x1, y1, x2, y2 = (c.contiguous() for c in b1.unbind(-1))
    X1, Y1, X2, Y2 = (c.contiguous() for c in b2.unbind(-1))
    w = (torch.min(x2, X2) - torch.max(x1, X1)).clamp_(min=0)
    h = (torch.min(y2, Y2) - torch.max(y1, Y1)).clamp_(min=0)
    inter = w.mul_(h)
    # areas before broadcasting
    union = ((x2 - x1) * (y2 - y1) + (X2 - X1) * (Y2 - Y1)) - inter
    return inter, union


def _overlap_terms(b1: Tensor, b2: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Intersection, union, enclosing-box width and height, squared centre distance
    (``b1``, ``b2`` broadcast as in :func:`box_inter_union`)."""
    inter, union = box_inter_union(b1, b2)
    x1, y1, x2, y2 = b1.unbind(-1)
    X1, Y1, X2, Y2 = b2.unbind(-1)
    w_c = (torch.max(x2, X2) - torch.min(x1, X1)).clamp_(min=0)
    h_c = (torch.max(y2, Y2) - torch.min(y1, Y1)).clamp_(min=0)
    centre_dist2 = (((x1 + x2) - (X1 + X2)) / 2) ** 2 + (((y1 + y2) - (Y1 + Y2)) / 2) ** 2
    return inter, union, w_c, h_c, centre_dist2


def _aspect_term(b1: Tensor, b2: Tensor) -> Tensor:
    """CIoU's aspect-ratio consistency ``v = 4/pi^2 (atan(w2/h2) - atan(w1/h1))^2``, the angles
    as ``atan2(w, h)``: pi/2 for a zero-height box (torchvision's value) with a finite gradient
    (``atan(w / 0)`` has none). A point box has no aspect ratio: v is 0 for its pairs."""
    w1, h1 = b1[..., 2] - b1[..., 0], b1[..., 3] - b1[..., 1]
    w2, h2 = b2[..., 2] - b2[..., 0], b2[..., 3] - b2[..., 1]
    point1, point2 = (w1 == 0) & (h1 == 0), (w2 == 0) & (h2 == 0)
    angle1 = torch.atan2(torch.where(point1, 1.0, w1), torch.where(point1, 1.0, h1))  # no 0/0 in the gradient
    angle2 = torch.atan2(torch.where(point2, 1.0, w2), torch.where(point2, 1.0, h2))
    return torch.where(point1 | point2, 0.0, (4 / math.pi**2) * (angle2 - angle1).pow(2))


def _rescaled(b1: Tensor, b2: Tensor) -> tuple[Tensor, Tensor]:
    """Both sets divided by one power of two when their areas could overflow the dtype
    (float32: coordinates beyond ~1e18; float16: beyond 64). The division is exact and every
    function here is scale-free, so only overflow changes (to the right answer)."""
    if b1.numel() == 0 or b2.numel() == 0:
        return b1, b2
    limit = math.sqrt(torch.finfo(torch.promote_types(b1.dtype, b2.dtype)).max) / 4
    m = torch.maximum(b1.detach().abs().amax(), b2.detach().abs().amax())
    scale = torch.where(torch.isfinite(m) & (m > limit), torch.exp2(torch.ceil(torch.log2(m))), 1.0)
    return b1 / scale, b2 / scale


def _pairs(boxes1: Tensor, boxes2: Tensor) -> tuple[Tensor, Tensor]:
    """Validate two box sets and shape them ``[N, 1, 4]`` and ``[1, M, 4]`` for all pairs."""
    check_boxes(boxes1)
    check_boxes(boxes2)
    b1, b2 = _rescaled(float_boxes(boxes1), float_boxes(boxes2))
    return b1[:, None, :], b2[None, :, :]


def box_iou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """Intersection over union (Jaccard index) of every pair of boxes.

    Args:
        boxes1 (Tensor[N, 4]): xyxy, x1 <= x2, y1 <= y2.
        boxes2 (Tensor[M, 4]): xyxy.

    Returns:
        Tensor[N, M]: ``|A & B| / |A | B|``; 0 where both boxes have zero area.
    """
    b1, b2 = _pairs(boxes1, boxes2)
    inter, union = box_inter_union(b1, b2)
    return safe_div(inter, union)


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
    return safe_div(inter, union) - safe_div(area_c - union, area_c)


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
    return safe_div(inter, union) - d2 / (w_c**2 + h_c**2 + eps)


def complete_box_iou(boxes1: Tensor, boxes2: Tensor, eps: float = 1e-7) -> Tensor:
    """Complete IoU of every pair: ``DIoU - alpha * v``, v the aspect-ratio term,
    ``alpha = v / (1 - IoU + v)`` (treated as a constant for gradients).

    Args:
        boxes1 (Tensor[N, 4]), boxes2 (Tensor[M, 4]): xyxy (zero widths or heights are fine).
        eps: as in torchvision.

    Returns:
        Tensor[N, M].

    Reference: Zheng et al., Distance-IoU Loss, AAAI 2020.
    """
    b1, b2 = _pairs(boxes1, boxes2)
    inter, union, w_c, h_c, d2 = _overlap_terms(b1, b2)
    iou = safe_div(inter, union)
    v = _aspect_term(b1, b2)
    with torch.no_grad():
        alpha = v / (1 - iou + v + eps)
    return iou - d2 / (w_c**2 + h_c**2 + eps) - alpha * v


def _matched(boxes1: Tensor, boxes2: Tensor) -> tuple[Tensor, Tensor]:
    check_box_shape(boxes1, "boxes1")
    check_box_shape(boxes2, "boxes2")
    check_boxes(boxes1.reshape(-1, 4))
    check_boxes(boxes2.reshape(-1, 4))
    if boxes1.shape != boxes2.shape:
        raise ValueError(f"the losses compare boxes row by row: got shapes {tuple(boxes1.shape)} and {tuple(boxes2.shape)}")
    return _rescaled(float_boxes(boxes1), float_boxes(boxes2))


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "none":
        return loss
    if reduction == "mean":
        return loss.mean() if loss.numel() > 0 else 0.0 * loss.sum()
    if reduction == "sum":
        return loss.sum()
    raise ValueError(f"reduction must be 'none', 'mean' or 'sum', got {reduction!r}")


def iou_loss(boxes1: Tensor, boxes2: Tensor, reduction: str = "none", eps: float = 1e-7) -> Tensor:
    """``1 - IoU`` of matched boxes, in [0, 1]: the plain IoU loss (UnitBox). Its gradient is
    zero when the boxes do not overlap, which GIoU, DIoU and CIoU fix.

    Args as :func:`giou_loss`.

    Reference: Yu et al., UnitBox: An Advanced Object Detection Network, ACM MM 2016.
    """
    b1, b2 = _matched(boxes1, boxes2)
    inter, union = box_inter_union(b1, b2)
    return _reduce(1 - inter / (union + eps), reduction)


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

    Args as :func:`giou_loss` (zero widths or heights are fine).
    """
    b1, b2 = _matched(boxes1, boxes2)
    inter, union, w_c, h_c, d2 = _overlap_terms(b1, b2)
    iou = inter / (union + eps)
    v = _aspect_term(b1, b2)
    with torch.no_grad():
        alpha = v / (1 - iou + v + eps)
    return _reduce(1 - iou + d2 / (w_c**2 + h_c**2 + eps) + alpha * v, reduction)
