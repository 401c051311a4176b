"""Detection metrics: mAP over classes, IoU thresholds and object sizes, as COCO defines it
(precision, recall and AP of one ranking are :mod:`d2lcv.metrics.ap`'s, re-exported here).

Detections are ranked by score; each one is a true positive (TP) if it matches a
ground-truth box of its class, not matched before, with IoU >= a threshold, else a false
positive (FP). Running down the ranking gives recall (TP / ground-truth boxes) and precision
(TP / detections so far): the precision-recall (PR) curve. Average precision (AP) summarises
the curve; mAP averages AP over classes (and, for COCO's mAP@[.5:.95], over ten IoU
thresholds 0.5, 0.55, ..., 0.95).

:func:`evaluate_detections` equals pycocotools' ``COCOeval`` (``iouType="bbox"``,
``maxDets=100``): the same matching rules and the same 101-point AP, for all objects and for
small, medium and large ones (:data:`AREA_RANGES`), vectorised over images, classes, sizes and
IoU thresholds (the one Python loop runs over the rank of a detection within its image and
class, at most ``max_dets`` steps). Boxes and scores are compared in their own dtype (float64
stays float64, other dtypes become float32), as pycocotools compares what it was given.

References: Everingham et al., The PASCAL Visual Object Classes (VOC) Challenge, IJCV 2010;
Lin et al., Microsoft COCO: Common Objects in Context, ECCV 2014.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from d2lcv.ops.boxes import box_convert, check_boxes

from .ap import AP_METHODS, average_precision, average_precisions, precision_recall

__all__ = ["AP_METHODS", "AREA_RANGES", "COCO_IOU_THRESHOLDS", "precision_recall", "average_precision",
           "DetectionResult", "check_detection_inputs", "evaluate_detections"]

# exactly COCOeval's thresholds (np.linspace gives 0.6000000000000001, not 0.6)
COCO_IOU_THRESHOLDS = tuple(np.linspace(0.5, 0.95, 10).tolist())
# COCOeval's areaRng, in pixels^2 of the ground-truth box (bounds inclusive; the "all" range,
# [0, 1e10] in COCOeval, has no upper bound here)
AREA_RANGES = {"small": (0.0, 32.0**2), "medium": (32.0**2, 96.0**2), "large": (96.0**2, 1e10)}


@dataclass
class DetectionResult:
    """What :func:`evaluate_detections` measured. Also readable like a dict: ``result["map"]``.

    Attributes:
        iou_thresholds (Tensor[T]): the IoU thresholds.
        ap (Tensor[C, T]): AP of each class at each threshold; NaN for a class without
            ground-truth boxes (left out of the means, as COCOeval does).
        map (float): mean of ``ap`` over classes and thresholds (COCO mAP@[.5:.95]).
        map_50, map_75 (float): mean over classes at IoU 0.5 and 0.75 (NaN if not evaluated).
        num_gt (Tensor[C]): ground-truth boxes per class.
        recall, precision, scores: per class, Tensor[T, D_c] float64 PR curves and the
            Tensor[D_c] scores of the class's ranked detections.
        map_small, map_medium, map_large (float): ``map`` for objects of each size of
            :data:`AREA_RANGES` (COCOeval's ``stats[3:6]``); NaN where no ground-truth box
            has that size (COCOeval reports -1).
        ap_by_size (Tensor[3, C, T]): AP per size (small, medium, large), class and
            threshold; NaN for a class without ground truth of that size.
        num_gt_by_size (Tensor[3, C]): ground-truth boxes per size and class.
    """

    iou_thresholds: Tensor
    ap: Tensor
    map: float
    map_50: float
    map_75: float
    num_gt: Tensor
    recall: list[Tensor] = field(repr=False)
    precision: list[Tensor] = field(repr=False)
    scores: list[Tensor] = field(repr=False)
    map_small: float = float("nan")
    map_medium: float = float("nan")
    map_large: float = float("nan")
    ap_by_size: Tensor | None = field(default=None, repr=False)
    num_gt_by_size: Tensor | None = field(default=None, repr=False)

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)


def check_detection_inputs(detections: Sequence[dict], ground_truths: Sequence[dict], num_classes: int) -> None:
    """Raise ``ValueError`` unless there is one detections dict (boxes, scores, labels) and
    one ground-truth dict (boxes, labels) per image, with labels in ``0..num_classes-1``;
    ``TypeError`` for labels of a non-integer dtype or scores that are not a Tensor."""
    if len(detections) != len(ground_truths):
        raise ValueError(f"need one detections dict per image: got {len(detections)} for {len(ground_truths)} images")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
    for i, (d, g) in enumerate(zip(detections, ground_truths)):
        for name, item, keys in (("detections", d, ("boxes", "scores", "labels")), ("ground_truths", g, ("boxes", "labels"))):
            missing = [k for k in keys if k not in item]
            if missing:
                raise ValueError(f"{name}[{i}] lacks {missing}: expected keys {keys}")
            check_boxes(item["boxes"], item["labels"])
            labels = item["labels"]
            if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
                raise TypeError(f"{name}[{i}]['labels'] must be an integer tensor (class indices), got {labels.dtype}")
            if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
                raise ValueError(f"{name}[{i}] has labels outside 0..{num_classes - 1}: {labels.unique().tolist()}")
        if not isinstance(d["scores"], Tensor):
            raise TypeError(f"detections[{i}]['scores'] must be a Tensor[{len(d['labels'])}], got {type(d['scores']).__name__}")
        if d["scores"].shape != d["labels"].shape:
            raise ValueError(f"detections[{i}]: scores {tuple(d['scores'].shape)} and labels {tuple(d['labels'].shape)} differ")
        if bool(torch.as_tensor(d["scores"]).isnan().any()):
            raise ValueError(f"detections[{i}] has NaN scores: a NaN cannot be ranked")


def _working(x: Tensor) -> Tensor:  # float64 stays float64 (as in pycocotools), any other dtype -> float32
    return x.double() if torch.as_tensor(x).dtype == torch.float64 else torch.as_tensor(x).float()


def _flatten(items: Sequence[dict], with_scores: bool) -> dict[str, Tensor]:
    """Concatenate per-image dicts; boxes as COCO's float64 xywh (converted in the input's
    dtype, as :func:`~d2lcv.metrics.coco.to_coco` does), their areas, each item's image index."""
    boxes = [box_convert(_working(x["boxes"]).reshape(-1, 4), "xyxy", "xywh").double() for x in items]
    out = {
        "boxes": torch.cat(boxes) if boxes else torch.zeros(0, 4, dtype=torch.float64),
        "labels": torch.cat([torch.as_tensor(x["labels"]).long().reshape(-1) for x in items]) if items else torch.zeros(0, dtype=torch.long),
        "image": torch.cat([torch.full((len(x["labels"]),), i, dtype=torch.long) for i, x in enumerate(items)]) if items else torch.zeros(0, dtype=torch.long),
    }
    if with_scores:
        out["scores"] = torch.cat([_working(x["scores"]).reshape(-1).double() for x in items]) if items else torch.zeros(0, dtype=torch.float64)
    out["area"] = out["boxes"][:, 2] * out["boxes"][:, 3]  # COCO's w * h
    return out


def _group_ranks(group: Tensor) -> Tensor:
    """Position of each element within its run of equal ``group`` values (``group`` sorted)."""
    n = len(group)
    start = torch.ones(n, dtype=torch.bool)
    start[1:] = group[1:] != group[:-1]
    first = torch.cummax(torch.where(start, torch.arange(n), 0), dim=0).values
    return torch.arange(n) - first


def _coco_iou(dt: Tensor, gt: Tensor) -> Tensor:
    """COCO's bbox IoU (maskUtils.iou, float64, xywh): [..., D, 4] x [..., G, 4] -> [..., D, G]."""
    d, g = dt[..., :, None, :], gt[..., None, :, :]
    w = (torch.min(d[..., 0] + d[..., 2], g[..., 0] + g[..., 2]) - torch.max(d[..., 0], g[..., 0])).clamp(min=0)
    h = (torch.min(d[..., 1] + d[..., 3], g[..., 1] + g[..., 3]) - torch.max(d[..., 1], g[..., 1])).clamp(min=0)
    inter = w * h
    union = d[..., 2] * d[..., 3] + g[..., 2] * g[..., 3] - inter
    return torch.where(inter > 0, inter / torch.where(union > 0, union, 1.0), 0.0)


def _match(det: dict[str, Tensor], gt: dict[str, Tensor], keys_d: Tensor, keys_g: Tensor, thresholds: Tensor,
           gt_ignore: Tensor) -> tuple[Tensor, Tensor]:
    """COCOeval's greedy matching, for every (image, class) group and row at once.

    ``keys_d``/``keys_g``: group id (image * C + class) of each detection / ground-truth box,
    detections ordered by group then rank. Row p has the IoU threshold ``thresholds[p]`` and
    ignores the ground truth where ``gt_ignore[p]`` ([P, G]: outside its size range): a
    detection takes the best free regular box, and an ignored one only when no regular box
    qualifies. Returns ``(matched, on_ignored)``, Tensor[P, D] bool each.
    """
    P, D = len(thresholds), len(keys_d)
    matched, on_ignored = torch.zeros(P, D, dtype=torch.bool), torch.zeros(P, D, dtype=torch.bool)
    groups, g_inv = torch.unique(keys_g, return_inverse=True)  # groups that have ground truth
    if D == 0 or len(groups) == 0:
        return matched, on_ignored
    pos = torch.searchsorted(groups, keys_d).clamp(max=len(groups) - 1)
    has_gt = groups[pos] == keys_d  # detections whose group has ground truth
    d_idx = has_gt.nonzero()[:, 0]
    d_grp = pos[d_idx]
    d_rank = _group_ranks(d_grp)  # rank within the group (detections are already in order)
    g_order = torch.argsort(g_inv, stable=True)
    g_grp = g_inv[g_order]
    g_rank = _group_ranks(g_grp)
    S, R, M = len(groups), int(d_rank.max()) + 1, int(g_rank.max()) + 1
    dt = torch.zeros(S, R, 4, dtype=torch.float64)
    dt[d_grp, d_rank] = det["boxes"][d_idx]
    gtb = torch.zeros(S, M, 4, dtype=torch.float64)
    gtb[g_grp, g_rank] = gt["boxes"][g_order]
    g_valid = torch.zeros(S, M, dtype=torch.bool)
    g_valid[g_grp, g_rank] = True
    ignored = torch.zeros(P, S, M, dtype=torch.bool)
    ignored[:, g_grp, g_rank] = gt_ignore[:, g_order]
    iou = _coco_iou(dt, gtb)  # [S, R, M]
    free = g_valid[None].expand(P, S, M).clone()  # [P, S, M] ground truth not matched yet
    thr = thresholds.clamp(max=1 - 1e-10)[:, None, None]  # COCOeval: min(t, 1 - 1e-10)
    det_at = torch.full((S, R), -1, dtype=torch.long)
    det_at[d_grp, d_rank] = d_idx
    for r in range(R):  # one step per rank: all groups and rows at once
        x = iou[None, :, r, :].expand(P, S, M)
        cand = free & (x >= thr)
        regular = cand & ~ignored
        cand = torch.where(regular.any(-1, keepdim=True), regular, cand)  # regular boxes first
        # best free ground truth; COCOeval keeps the LAST of equal IoUs, hence the flip
        best = M - 1 - torch.where(cand, x, -1.0).flip(-1).argmax(-1)  # [P, S]
        hit = cand.any(-1) & (det_at[:, r] >= 0)[None]  # [P, S]
        p_idx, s_idx = hit.nonzero(as_tuple=True)
        g_idx = best[p_idx, s_idx]
        free[p_idx, s_idx, g_idx] = False
        matched[p_idx, det_at[s_idx, r]] = True
        on_ignored[p_idx, det_at[s_idx, r]] = ignored[p_idx, s_idx, g_idx]
    return matched, on_ignored


def evaluate_detections(
    detections: Sequence[dict],
    ground_truths: Sequence[dict],
    num_classes: int,
    iou_thresholds: Sequence[float] | None = None,
    max_dets: int = 100,
    method: str = "coco101",
) -> DetectionResult:
    """AP per class and IoU threshold, mAP@0.5 and COCO mAP@[.5:.95] of a detector on a set of images.

    Matching (COCOeval): per image and class, detections by decreasing score (only the top
    ``max_dets``) each take the free ground-truth box of that class with the highest IoU
    >= the threshold; unmatched detections are false positives. The ranking of a class runs
    over all images. For the AP of one size (:data:`AREA_RANGES`), ground-truth boxes of
    other sizes are ignored: a detection matched to one, or unmatched and itself of another
    size, is neither a true nor a false positive (it takes a box of the size when it can).

    Args:
        detections: one dict per image: ``boxes`` Tensor[K, 4] xyxy pixels, ``scores``
            Tensor[K], ``labels`` Tensor[K] of an integer dtype, in 0..num_classes-1.
        ground_truths: one dict per image: ``boxes`` Tensor[G, 4] xyxy, ``labels`` Tensor[G].
        num_classes: C.
        iou_thresholds: default COCO's 0.5:0.05:0.95.
        max_dets: detections per image and class that count (COCO: 100), a positive int.
        method: AP definition, one of :data:`AP_METHODS` (COCOeval: ``"coco101"``).

    Returns:
        :class:`DetectionResult`. With the defaults, ``map``, ``map_50``, ``map_75``,
        ``map_small``, ``map_medium``, ``map_large`` and ``ap`` equal COCOeval's (``stats[0:6]``,
        per-class precision means), except NaN where COCOeval reports -1 (no ground truth).
        Float64 boxes and scores are compared in float64, other dtypes in float32.
    """
    check_detection_inputs(detections, ground_truths, num_classes)
    if method not in AP_METHODS:
        raise ValueError(f"method must be one of {AP_METHODS}, got {method!r}")
    if isinstance(max_dets, bool) or not isinstance(max_dets, int) or max_dets < 1:
        raise ValueError(f"max_dets must be a positive int, got {max_dets!r}")
    thresholds = torch.tensor(COCO_IOU_THRESHOLDS if iou_thresholds is None else list(iou_thresholds), dtype=torch.float64)
    if thresholds.ndim != 1 or len(thresholds) == 0 or bool(((thresholds < 0) | (thresholds > 1)).any()):
        raise ValueError(f"iou_thresholds must be a non-empty list of values in [0, 1], got {iou_thresholds}")
    C, T = num_classes, len(thresholds)
    det, gt = _flatten(detections, True), _flatten(ground_truths, False)

    # detections by (image, class), then decreasing score (ties: input order), top max_dets
    order = torch.argsort(-det["scores"], stable=True)
    for key in ("labels", "image"):  # stable sorts: the last key sorted is the primary one
        order = order[torch.argsort(det[key][order], stable=True)]
    det = {k: v[order] for k, v in det.items()}
    keys_d = det["image"] * C + det["labels"]
    top = _group_ranks(keys_d) < max_dets
    det = {k: v[top] for k, v in det.items()}
    keys_d = keys_d[top]

    # rows: (size, threshold) for the sizes all, small, medium, large
    lo, hi = torch.tensor([[0.0, float("inf")], *AREA_RANGES.values()], dtype=torch.float64).T  # [4] each
    gt_ignore, det_outside = ((x["area"][None] < lo[:, None]) | (x["area"][None] > hi[:, None]) for x in (gt, det))  # [4, n]
    A = len(lo)
    matched, on_ignored = _match(det, gt, keys_d, gt["image"] * C + gt["labels"], thresholds.repeat(A),
                                 gt_ignore.repeat_interleave(T, 0))  # [A * T, D]
    ignored = on_ignored | (~matched & det_outside.repeat_interleave(T, 0))
    tp, fp = matched & ~ignored, ~matched & ~ignored

    # one ranking per class over all images: by class, decreasing score, then image and rank
    order = torch.argsort(-det["scores"], stable=True)
    order = order[torch.argsort(det["labels"][order], stable=True)]
    labels, scores, tp, fp = det["labels"][order], det["scores"][order], tp[:, order], fp[:, order]
    num_gt = torch.stack([torch.bincount(gt["labels"][~ig], minlength=C) for ig in gt_ignore])  # [A, C]
    bounds = torch.searchsorted(labels, torch.arange(C + 1)).tolist()
    ap = torch.full((A, C, T), float("nan"), dtype=torch.float64)
    recalls, precisions, class_scores = [], [], []
    for c in range(C):  # classes, not images or boxes
        lo_c, hi_c = bounds[c], bounds[c + 1]
        class_scores.append(scores[lo_c:hi_c])
        tps, fps = tp[:, lo_c:hi_c].to(torch.float64).cumsum(-1), fp[:, lo_c:hi_c].to(torch.float64).cumsum(-1)
        n = num_gt[:, c].repeat_interleave(T).clamp(min=1)[:, None]  # [A * T, 1]
        rec, prec = tps / n, tps / (tps + fps + np.spacing(1))  # COCOeval's eps
        has_gt = num_gt[:, c] > 0  # [A]
        ap[:, c] = torch.where(has_gt[:, None], average_precisions(rec, prec, method).reshape(A, T), float("nan"))
        recalls.append(rec[:T] if has_gt[0] else torch.zeros(T, hi_c - lo_c, dtype=torch.float64))
        precisions.append(prec[:T] if has_gt[0] else torch.zeros(T, hi_c - lo_c, dtype=torch.float64))

    def mean(a: int, t: Tensor | slice = slice(None)) -> float:
        valid = num_gt[a] > 0
        return float(ap[a, valid][:, t].mean()) if bool(valid.any()) else float("nan")

    def mean_at(value: float) -> float:
        t = (thresholds - value).abs().argmin()
        return mean(0, t) if abs(float(thresholds[t]) - value) < 1e-9 else float("nan")

    return DetectionResult(
        iou_thresholds=thresholds, ap=ap[0], map=mean(0), map_50=mean_at(0.5), map_75=mean_at(0.75),
        num_gt=num_gt[0], recall=recalls, precision=precisions, scores=class_scores,
        map_small=mean(1), map_medium=mean(2), map_large=mean(3), ap_by_size=ap[1:], num_gt_by_size=num_gt[1:],
    )
