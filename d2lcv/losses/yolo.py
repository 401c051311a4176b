"""YOLO's losses: v1's sum of squared errors, and a v3-style loss (logistic objectness
and classes, GIoU for the boxes).

Both are sums over the batch divided by the number of images, and return
``(loss, {"box": ..., "obj": ..., "noobj": ..., "cls": ...})`` (v3: no ``noobj`` part):
the parts are scalars (with their graphs) that add up to ``loss``.

References: Redmon et al., You Only Look Once, CVPR 2016; Redmon and Farhadi, YOLOv3: An
Incremental Improvement, arXiv 2018; Rezatofighi et al., Generalized Intersection over
Union, CVPR 2019.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from d2lcv.ops.iou import box_inter_union, giou_loss, safe_div
from d2lcv.ops.yolo import yolo_v1_boxes
from d2lcv.ops.yolo_anchors import YoloTargets, yolo_decode

__all__ = ["yolo_v1_loss", "yolo_v3_loss"]


def _check_v1(pred: Tensor, target: Tensor, num_boxes: int) -> None:
    if not isinstance(pred, Tensor) or not isinstance(target, Tensor) or pred.ndim != 4:
        raise ValueError(
            "pred must be Tensor[N, S, S, B * 5 + C] and target Tensor[N, S, S, 5 + C]"
        )
    C = target.shape[-1] - 5
    if (
        target.shape[:3] != pred.shape[:3]
        or pred.shape[-1] != 5 * num_boxes + C
        or C < 1
    ):
        raise ValueError(
            f"pred {tuple(pred.shape)} and target {tuple(target.shape)} do not fit "
            f"[N, S, S, B * 5 + C] and [N, S, S, 5 + C] with B = {num_boxes}"
        )


def _matched_iou(b1: Tensor, b2: Tensor) -> Tensor:
    """IoU of matched (broadcast) xyxy boxes; 0 where both have zero area."""
    inter, union = box_inter_union(b1, b2)
    return safe_div(inter, union)


def yolo_v1_loss(
    pred: Tensor,
    target: Tensor,
    num_boxes: int = 2,
    lambda_coord: float = 5.0,
    lambda_noobj: float = 0.5,
) -> tuple[Tensor, dict[str, Tensor]]:
    """YOLO v1's sum-squared loss.

    In a cell with an object, the *responsible* predictor is the one of the B whose box
    has the highest IoU with the object's (ties: the first). It is pulled to the box (x,
    y and sqrt w, sqrt h, weighted by ``lambda_coord``) and its confidence to that IoU;
    every other predictor's confidence is pulled to 0 (weighted by ``lambda_noobj``);
    the cell's class probabilities are pulled to the one-hot class. Divided by the
    number of images N.

    Args:
        pred (Tensor[N, S, S, B * 5 + C]): activated predictions
            (:mod:`d2lcv.ops.yolo`).
        target (Tensor[N, S, S, 5 + C]): from :func:`~d2lcv.ops.yolo_v1_targets`.

    Returns:
        ``(loss, {"box", "obj", "noobj", "cls"})``: scalars, ``loss`` their sum.
    """
    _check_v1(pred, target, num_boxes)
    N, S = pred.shape[:2]
    boxes = pred[..., : 5 * num_boxes].reshape(N, S, S, num_boxes, 5)
    goal = torch.cat((target[..., :2], target[..., 2:4].sqrt()), dim=-1)[..., None, :]
    iou = _matched_iou(yolo_v1_boxes(boxes[..., :4]), yolo_v1_boxes(goal)).detach()
    has_obj = target[..., 4] > 0  # [N, S, S]
    resp = F.one_hot(iou.argmax(dim=-1), num_boxes).bool() & has_obj[..., None]
    box = lambda_coord * ((boxes[..., :4] - goal) ** 2).sum(dim=-1)[resp].sum()
    obj = ((boxes[..., 4] - iou) ** 2)[resp].sum()
    noobj = lambda_noobj * (boxes[..., 4] ** 2)[~resp].sum()
    cls = (
        ((pred[..., 5 * num_boxes :] - target[..., 5:]) ** 2).sum(dim=-1)[has_obj].sum()
    )
    parts = {"box": box / N, "obj": obj / N, "noobj": noobj / N, "cls": cls / N}
    return sum(parts.values()), parts  # type: ignore[return-value]


def _check_v3(pred: Tensor, priors: Tensor, targets: YoloTargets) -> None:
    if not isinstance(pred, Tensor) or pred.ndim != 3 or pred.shape[-1] < 6:
        got = tuple(pred.shape) if isinstance(pred, Tensor) else type(pred).__name__
        raise ValueError(f"pred must be Tensor[B, P, 5 + C] with C >= 1, got {got}")
    if priors.shape != (pred.shape[1], 5) or targets.labels.shape != pred.shape[:2]:
        raise ValueError(
            f"pred {tuple(pred.shape)}, priors {tuple(priors.shape)} and "
            f"target labels {tuple(targets.labels.shape)} must be "
            "[B, P, 5 + C], [P, 5], [B, P]"
        )


def _ignored(boxes: Tensor, targets: YoloTargets, ignore_iou: float) -> Tensor:
    """Tensor[B, P] bool: predicted boxes that overlap some ground truth by >
    ignore_iou."""
    iou = _matched_iou(
        boxes[:, :, None], targets.gt_boxes[:, None].to(boxes)
    )  # [B, P, G]
    iou = iou.masked_fill(~targets.gt_valid[:, None], 0.0)
    if iou.shape[2] == 0:  # no ground truth in the batch
        return torch.zeros(boxes.shape[:2], dtype=torch.bool, device=boxes.device)
    return iou.amax(dim=2) > ignore_iou


def yolo_v3_loss(
    pred: Tensor,
    priors: Tensor,
    targets: YoloTargets,
    *,
    ignore_iou: float = 0.5,
    box_weight: float = 1.0,
    obj_weight: float = 1.0,
    cls_weight: float = 1.0,
    label_smoothing: float = 0.0,
) -> tuple[Tensor, dict[str, Tensor]]:
    """A YOLO v3-style loss: logistic objectness and classes, GIoU for the boxes.

    Objectness: binary cross-entropy, target 1 on the priors that hold an object
    (:func:`~d2lcv.ops.yolo_v3_targets`) and 0 elsewhere, except that a prior whose
    predicted box already overlaps some object by more than ``ignore_iou`` is not pushed
    to 0 (v3's ignore rule). Classes: independent binary cross-entropies on the
    positives, with ``label_smoothing = eps`` targets ``1 - eps`` for the object's class
    and ``eps / (C - 1)`` for the others (Zhang et al., 2019).
    Boxes: GIoU loss (:func:`~d2lcv.ops.giou_loss`) of the decoded box on the positives
    (v3 itself used squared errors on t; GIoU needs no size weighting). Each a sum,
    divided by B; with ``targets.weights`` (mixup), every positive's three terms are
    multiplied by its object's weight.

    Args:
        pred (Tensor[B, P, 5 + C]): raw outputs; priors (Tensor[P, 5]):
            :func:`~d2lcv.ops.yolo_priors`.
        targets: :class:`~d2lcv.ops.YoloTargets`.

    Returns:
        ``(loss, {"box", "obj", "cls"})``: weighted scalars, ``loss`` their sum.
    """
    _check_v3(pred, priors, targets)
    B, C = len(pred), pred.shape[-1] - 5
    pos = targets.labels >= 0  # [B, P]
    boxes = yolo_decode(pred[..., :4], priors)  # [B, P, 4]
    counted = pos | ~_ignored(boxes.detach(), targets, ignore_iou)
    obj = F.binary_cross_entropy_with_logits(
        pred[..., 4], pos.to(pred.dtype), reduction="none"
    )
    onehot = F.one_hot(targets.labels[pos], C).to(pred.dtype)
    eps = label_smoothing
    onehot = onehot * (1 - eps) + (1 - onehot) * eps / max(C - 1, 1)
    cls = F.binary_cross_entropy_with_logits(pred[pos][:, 5:], onehot, reduction="none")
    box = giou_loss(boxes[pos], targets.boxes[pos].to(boxes))
    if targets.weights is not None:  # each object's weight (mixup's shares)
        w = targets.weights.to(pred.dtype)
        obj = torch.where(pos, obj * w, obj)
        cls, box = cls * w[pos][:, None], box * w[pos]
    parts = {
        "box": box_weight * box.sum() / B,
        "obj": obj_weight * obj[counted].sum() / B,
        "cls": cls_weight * cls.sum() / B,
    }
    return sum(parts.values()), parts  # type: ignore[return-value]
