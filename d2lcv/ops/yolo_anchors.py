"""YOLO v2/v3 with anchors: priors on several grids, the best-anchor assignment, and the
direct location encoding ``cx = (sigmoid(tx) + j) / S``, ``w = pw exp(tw)``.

A model with L scales (grids of ``S_l x S_l`` cells) and A anchors per scale predicts,
for every prior (scale, cell, anchor), ``(tx, ty, tw, th, objectness logit, C class
logits)``; all scales flattened give ``[B, P, 5 + C]``, P = ``sum_l S_l^2 A``, ordered
by scale, row, column, anchor. A prior is the row ``(j, i, S, pw, ph)`` of
:func:`yolo_priors`::

    priors = yolo_priors([24, 12, 6], anchors)            # anchors [L, A, 2] normalised
    targets = yolo_v3_targets(gt_boxes, gt_labels, anchors, [24, 12, 6], num_classes=20)
    boxes, scores = yolo_v3_decode(pred, priors)           # [B, P, 4], [B, P, C]

Boxes are xyxy, normalised, as in :mod:`d2lcv.ops.yolo`.

References: Redmon and Farhadi, YOLO9000: Better, Faster, Stronger, CVPR 2017;
Redmon and Farhadi, YOLOv3: An Incremental Improvement, arXiv 2018.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import Tensor

from d2lcv.ops.boxes import box_convert
from d2lcv.ops.kmeans_anchors import check_wh, shape_iou
from d2lcv.ops.yolo import cell_of, check_yolo_targets, first_per_slot

__all__ = [
    "YoloTargets",
    "check_anchors",
    "yolo_priors",
    "yolo_encode",
    "yolo_decode",
    "yolo_v3_targets",
    "yolo_v3_decode",
]


def check_anchors(anchors: Tensor, grid_sizes: Sequence[int]) -> None:
    """Raise ``ValueError`` unless ``anchors`` is Tensor[L, A, 2] of positive sizes and
    ``grid_sizes`` has L positive ints (one grid per scale)."""
    if not isinstance(anchors, Tensor) or anchors.ndim != 3 or anchors.shape[-1] != 2:
        got = (
            tuple(anchors.shape)
            if isinstance(anchors, Tensor)
            else type(anchors).__name__
        )
        raise ValueError(
            f"anchors must be Tensor[L, A, 2] (scales, anchors, w h), got {got}"
        )
    check_wh(anchors.reshape(-1, 2), "anchors")
    if len(grid_sizes) != len(anchors) or not all(
        isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in grid_sizes
    ):
        raise ValueError(
            f"grid_sizes must be {len(anchors)} positive ints (one per scale), "
            f"got {list(grid_sizes)}"
        )


def yolo_priors(grid_sizes: Sequence[int], anchors: Tensor) -> Tensor:
    """One row ``(j, i, S, pw, ph)`` per prediction: cell column and row, grid size,
    anchor.

    Args:
        grid_sizes: ``S_l`` for each of the L scales (square grids).
        anchors (Tensor[L, A, 2]): the anchors' widths and heights of each scale,
            normalised.

    Returns:
        Tensor[P, 5], P = ``sum_l S_l^2 A``: by scale, row i, column j, anchor.
    """
    check_anchors(anchors, grid_sizes)
    rows = []
    for S, wh in zip(grid_sizes, anchors):
        ranges = (torch.arange(n, device=anchors.device) for n in (S, S, len(wh)))
        i, j, a = (x.reshape(-1) for x in torch.meshgrid(*ranges, indexing="ij"))
        cells = torch.stack((j, i, torch.full_like(i, S)), dim=1).to(anchors.dtype)
        rows.append(torch.cat((cells, wh[a]), dim=1))
    return torch.cat(rows)


def yolo_encode(boxes: Tensor, priors: Tensor) -> Tensor:
    """What a prior should predict for a box: ``(sigmoid(tx), sigmoid(ty), tw, th)``.

    ``sigmoid(tx) = cx S - j`` (the centre's offset in the cell), ``tw = log(w / pw)``;
    the first two are targets of the *sigmoid* of the raw outputs (a centre on a cell's
    edge, offset 0, has no finite ``tx``): ``yolo_decode(cat(logit(e[..., :2]), e[...,
    2:]))`` gives back the boxes.

    Args:
        boxes (Tensor[..., 4]): xyxy, normalised, positive sizes.
        priors (Tensor[..., 5]): their priors' rows (:func:`yolo_priors`).

    Returns:
        Tensor[..., 4].
    """
    b = box_convert(boxes, "xyxy", "cxcywh")
    xy = b[..., :2] * priors[..., 2:3] - priors[..., :2]
    return torch.cat((xy, torch.log(b[..., 2:] / priors[..., 3:5])), dim=-1)


def yolo_decode(t: Tensor, priors: Tensor) -> Tensor:
    """Boxes from raw outputs: ``cx = (sigmoid(tx) + j) / S``, ``w = pw exp(tw)``.

    Args:
        t (Tensor[..., P, 4]): raw ``(tx, ty, tw, th)``; priors (Tensor[P, 5]).

    Returns:
        Tensor[..., P, 4]: xyxy, normalised (x1 <= x2, y1 <= y2). ``tw, th`` are clamped
        at 8 (e^8, about 3000 anchor sizes), so a wild early prediction cannot overflow.
    """
    if t.shape[-1] != 4 or t.shape[-2] != priors.shape[0] or priors.shape[-1] != 5:
        raise ValueError(
            f"t must be [..., P, 4] for priors [P, 5], got {tuple(t.shape)} "
            f"and {tuple(priors.shape)}"
        )
    xy = (t[..., :2].sigmoid() + priors[:, :2]) / priors[:, 2:3]
    wh = priors[:, 3:5] * t[..., 2:].clamp(max=8.0).exp()
    return box_convert(torch.cat((xy, wh), dim=-1), "cxcywh", "xyxy")


class YoloTargets(NamedTuple):
    """What :func:`yolo_v3_targets` assigns.

    Attributes:
        labels (Tensor[B, P] int64): the class of the object each prior predicts; -1:
            none.
        boxes (Tensor[B, P, 4]): that object's box, xyxy normalised (0 where none).
        assigned (Tensor[B, G] bool): the ground-truth boxes that got a prior.
        gt_boxes (Tensor[B, G, 4]), gt_valid (Tensor[B, G] bool): all ground truth (for
            the loss's ignore rule).
        weights (Tensor[B, P] float or None): the loss weight of each prior's object
            (0 where none), from ``gt_weights`` (e.g. mixup's shares); None: all 1.
    """

    labels: Tensor
    boxes: Tensor
    assigned: Tensor
    gt_boxes: Tensor
    gt_valid: Tensor
    weights: Tensor | None = None


def yolo_v3_targets(
    gt_boxes: Tensor,
    gt_labels: Tensor,
    anchors: Tensor,
    grid_sizes: Sequence[int],
    num_classes: int,
    gt_weights: Tensor | None = None,
) -> YoloTargets:
    """YOLO v3's assignment: each box goes to ONE prior, that of its best anchor.

    The best anchor has the highest :func:`~d2lcv.ops.shape_iou` with the box among all
    ``L x A`` anchors; the box goes to that anchor in the cell of its centre
    (:func:`~d2lcv.ops.cell_of`) on that anchor's grid. Two boxes on one prior: the
    larger keeps it (ties: the first), the other is lost.

    Args:
        gt_boxes (Tensor[B, G, 4]): xyxy normalised, positive sizes.
        gt_labels (Tensor[B, G]): ``0..C-1``, -1 for padding.
        anchors (Tensor[L, A, 2]): normalised widths and heights per scale.
        grid_sizes: ``S_l`` per scale; num_classes: C.
        gt_weights (Tensor[B, G] float, optional): each box's weight in the loss.

    Returns:
        :class:`YoloTargets`.
    """
    valid = check_yolo_targets(gt_boxes, gt_labels, num_classes)
    if gt_weights is not None and gt_weights.shape != gt_labels.shape:
        raise ValueError(
            f"gt_weights must be Tensor{list(gt_labels.shape)} like gt_labels, "
            f"got {list(gt_weights.shape)}"
        )
    check_anchors(anchors, grid_sizes)
    A = anchors.shape[1]
    b, g = valid.nonzero(as_tuple=True)
    box = gt_boxes[b, g].float()
    wh = box[:, 2:] - box[:, :2]
    best = shape_iou(wh, anchors.reshape(-1, 2).float()).argmax(dim=1)  # of all L * A
    scale, a = best // A, best % A
    priors_per_scale = torch.tensor([S * S * A for S in grid_sizes], device=box.device)
    first_prior = priors_per_scale.cumsum(0) - priors_per_scale  # of each scale
    S = torch.tensor(list(grid_sizes), device=box.device)[scale]
    i, j = cell_of(box, S)
    p = first_prior[scale] + (i * S + j) * A + a  # the prior of each box
    P = int(priors_per_scale.sum())
    keep = first_per_slot(b * P + p, wh.prod(dim=1))
    out = _targets(gt_boxes, gt_labels, valid, b[keep], g[keep], p[keep], P)
    if gt_weights is None:
        return out
    weights = gt_boxes.new_zeros(out.labels.shape, dtype=torch.float32)
    weights[b[keep], p[keep]] = gt_weights[b[keep], g[keep]].float()
    return out._replace(weights=weights)


def _targets(
    gt_boxes: Tensor,
    gt_labels: Tensor,
    valid: Tensor,
    b: Tensor,
    g: Tensor,
    p: Tensor,
    P: int,
) -> YoloTargets:
    B = len(gt_boxes)
    labels = torch.full((B, P), -1, dtype=torch.long, device=gt_boxes.device)
    labels[b, p] = gt_labels[b, g].long()
    boxes = gt_boxes.new_zeros(B, P, 4, dtype=torch.float32)
    boxes[b, p] = gt_boxes[b, g].float()
    assigned = torch.zeros_like(valid)
    assigned[b, g] = True
    return YoloTargets(labels, boxes, assigned, gt_boxes.float(), valid)


def yolo_v3_decode(pred: Tensor, priors: Tensor) -> tuple[Tensor, Tensor]:
    """Every prior's box and class scores ``sigmoid(objectness) * sigmoid(class logit)``
    (independent logistic classes, not a softmax: classes need not exclude each other).

    Args:
        pred (Tensor[B, P, 5 + C]): raw outputs; priors (Tensor[P, 5]).

    Returns:
        ``(boxes Tensor[B, P, 4] xyxy normalised, scores Tensor[B, P, C])``.
    """
    if pred.ndim != 3 or pred.shape[-1] < 6:
        raise ValueError(
            f"pred must be [B, P, 5 + C] with C >= 1, got {tuple(pred.shape)}"
        )
    boxes = yolo_decode(pred[..., :4], priors)
    return boxes, pred[..., 4:5].sigmoid() * pred[..., 5:].sigmoid()
