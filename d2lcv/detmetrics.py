"""Detection metrics: precision, recall, average precision (VOC and COCO), mAP.

Detections are ranked by score; each one is a true positive (TP) if it matches a
ground-truth box of its class, not matched before, with IoU >= a threshold, else a false
positive (FP). Running down the ranking gives recall (TP / ground-truth boxes) and precision
(TP / detections so far): the precision-recall (PR) curve. Average precision (AP) summarises
the curve; mAP averages AP over classes (and, for COCO's mAP@[.5:.95], over ten IoU
thresholds 0.5, 0.55, ..., 0.95).

:func:`evaluate_detections` equals pycocotools' ``COCOeval`` (``iouType="bbox"``, all areas,
``maxDets=100``): the same matching rules and the same 101-point AP, vectorised over images,
classes and IoU thresholds (the one Python loop runs over the rank of a detection within its
image and class, at most ``max_dets`` steps).

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

from d2lcv.boxes import box_convert, check_boxes

__all__ = [
    "AP_METHODS",
    "COCO_IOU_THRESHOLDS",
    "precision_recall",
    "average_precision",
    "DetectionResult",
    "evaluate_detections",
    "to_coco",
    "simulate_detections",
]

AP_METHODS = ("voc11", "voc_all", "coco101", "uninterpolated")
# exactly COCOeval's thresholds (np.linspace gives 0.6000000000000001, not 0.6)
COCO_IOU_THRESHOLDS = tuple(np.linspace(0.5, 0.95, 10).tolist())


def precision_recall(tp: Tensor, num_gt: int) -> tuple[Tensor, Tensor]:
    """Recall and precision after each detection of a ranking.

    Args:
        tp (Tensor[..., D]): bool, True where the detection at that rank is a true positive,
            detections sorted by decreasing score.
        num_gt: ground-truth boxes of the class (> 0).

    Returns:
        ``(recall, precision)``: float64 Tensor[..., D] each.
    """
    if num_gt <= 0:
        raise ValueError(f"num_gt must be positive (recall is undefined without ground truth), got {num_gt}")
    tps = tp.to(torch.float64).cumsum(-1)
    fps = (~tp.bool()).to(torch.float64).cumsum(-1)
    return tps / num_gt, tps / (tps + fps + np.spacing(1))  # COCOeval's eps


def average_precision(recall: Tensor, precision: Tensor, method: str = "coco101") -> float:
    """The area under a precision-recall curve, the way a benchmark defines it.

    * ``"uninterpolated"``: ``sum_i (r_i - r_{i-1}) p_i``: precision at each true positive,
      summed over the ground truth (no interpolation);
    * ``"voc_all"`` (VOC 2010 on): the same sum with the *interpolated* precision
      ``p_interp(r) = max_{r' >= r} p(r')``, the area under the curve's upper envelope;
    * ``"voc11"`` (VOC 2007): mean of ``p_interp`` at recall 0, 0.1, ..., 1;
    * ``"coco101"`` (COCO): mean of ``p_interp`` at recall 0, 0.01, ..., 1 (the first rank
      whose recall reaches each level), 0 beyond the largest recall.

    Args:
        recall (Tensor[D]): non-decreasing, from :func:`precision_recall`.
        precision (Tensor[D]): same length.
        method: one of :data:`AP_METHODS`.

    Returns:
        AP in [0, 1] (0 for an empty ranking).
    """
    if method not in AP_METHODS:
        raise ValueError(f"method must be one of {AP_METHODS}, got {method!r}")
    recall, precision = torch.as_tensor(recall, dtype=torch.float64), torch.as_tensor(precision, dtype=torch.float64)
    if recall.ndim != 1 or recall.shape != precision.shape:
        raise ValueError(f"recall and precision must be 1-d of one length, got {tuple(recall.shape)} and {tuple(precision.shape)}")
    if len(recall) == 0:
        return 0.0
    envelope = precision.flip(0).cummax(0).values.flip(0)  # p_interp at each rank
    if method in ("uninterpolated", "voc_all"):
        p = precision if method == "uninterpolated" else envelope
        steps = torch.diff(recall, prepend=recall.new_zeros(1))
        return float((steps * p).sum())
    levels = torch.linspace(0, 1, 11 if method == "voc11" else 101, dtype=torch.float64)
    if method == "coco101":
        levels = torch.from_numpy(np.linspace(0.0, 1.0, 101))  # COCOeval's recThrs
    idx = torch.searchsorted(recall, levels, side="left")  # first rank with recall >= level
    sampled = torch.where(idx < len(recall), envelope[idx.clamp(max=len(recall) - 1)], 0.0)
    return float(sampled.mean())


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

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)


def _check_inputs(detections: Sequence[dict], ground_truths: Sequence[dict], num_classes: int) -> None:
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
            if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
                raise ValueError(f"{name}[{i}] has labels outside 0..{num_classes - 1}: {labels.unique().tolist()}")
        if d["scores"].shape != d["labels"].shape:
            raise ValueError(f"detections[{i}]: scores {tuple(d['scores'].shape)} and labels {tuple(d['labels'].shape)} differ")
        if bool(torch.as_tensor(d["scores"]).isnan().any()):
            raise ValueError(f"detections[{i}] has NaN scores: a NaN cannot be ranked")


def _flatten(items: Sequence[dict], with_scores: bool) -> dict[str, Tensor]:
    """Concatenate per-image dicts; boxes as COCO's float64 xywh, and each item's image index."""
    boxes = [box_convert(torch.as_tensor(x["boxes"]).float().reshape(-1, 4), "xyxy", "xywh") for x in items]
    out = {
        "boxes": torch.cat(boxes).double() if boxes else torch.zeros(0, 4, dtype=torch.float64),
        "labels": torch.cat([torch.as_tensor(x["labels"]).long().reshape(-1) for x in items]) if items else torch.zeros(0, dtype=torch.long),
        "image": torch.cat([torch.full((len(x["labels"]),), i, dtype=torch.long) for i, x in enumerate(items)]) if items else torch.zeros(0, dtype=torch.long),
    }
    if with_scores:
        out["scores"] = torch.cat([torch.as_tensor(x["scores"]).float().reshape(-1) for x in items]).double() if items else torch.zeros(0, dtype=torch.float64)
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


def _match(det: dict[str, Tensor], gt: dict[str, Tensor], keys_d: Tensor, keys_g: Tensor, thresholds: Tensor) -> Tensor:
    """COCOeval's greedy matching, for every (image, class) group and threshold at once.

    ``keys_d``/``keys_g``: group id (image * C + class) of each detection / ground-truth box,
    detections ordered by group then rank. Returns tp Tensor[T, D] bool.
    """
    T, D = len(thresholds), len(keys_d)
    tp = torch.zeros(T, D, dtype=torch.bool)
    groups, g_inv = torch.unique(keys_g, return_inverse=True)  # groups that have ground truth
    if D == 0 or len(groups) == 0:
        return tp
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
    iou = _coco_iou(dt, gtb)  # [S, R, M]
    free = g_valid[None].expand(T, S, M).clone()  # [T, S, M] ground truth not matched yet
    thr = thresholds.clamp(max=1 - 1e-10)[:, None, None]  # COCOeval: min(t, 1 - 1e-10)
    det_at = torch.full((S, R), -1, dtype=torch.long)
    det_at[d_grp, d_rank] = d_idx
    for r in range(R):  # one step per rank: all groups and thresholds at once
        x = iou[None, :, r, :].expand(T, S, M)
        cand = free & (x >= thr)
        # best free ground truth; COCOeval keeps the LAST of equal IoUs, hence the flip
        best = M - 1 - torch.where(cand, x, -1.0).flip(-1).argmax(-1)  # [T, S]
        hit = cand.any(-1) & (det_at[:, r] >= 0)[None]  # [T, S]
        free[hit.nonzero(as_tuple=True) + (best[hit],)] = False
        t_idx, s_idx = hit.nonzero(as_tuple=True)
        tp[t_idx, det_at[s_idx, r]] = True
    return tp


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
    over all images.

    Args:
        detections: one dict per image: ``boxes`` Tensor[K, 4] xyxy pixels, ``scores``
            Tensor[K], ``labels`` Tensor[K] int64 in 0..num_classes-1.
        ground_truths: one dict per image: ``boxes`` Tensor[G, 4] xyxy, ``labels`` Tensor[G].
        num_classes: C.
        iou_thresholds: default COCO's 0.5:0.05:0.95.
        max_dets: detections per image and class that count (COCO: 100).
        method: AP definition, one of :data:`AP_METHODS` (COCOeval: ``"coco101"``).

    Returns:
        :class:`DetectionResult`. With the defaults, ``map``, ``map_50``, ``map_75`` and ``ap``
        equal COCOeval's (``stats[0]``, ``stats[1]``, ``stats[2]``, per-class precision means).
    """
    _check_inputs(detections, ground_truths, num_classes)
    if method not in AP_METHODS:
        raise ValueError(f"method must be one of {AP_METHODS}, got {method!r}")
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
    tp = _match(det, gt, keys_d, gt["image"] * C + gt["labels"], thresholds)  # [T, D]

    # one ranking per class over all images: by class, decreasing score, then image and rank
    order = torch.argsort(-det["scores"], stable=True)
    order = order[torch.argsort(det["labels"][order], stable=True)]
    labels, scores, tp = det["labels"][order], det["scores"][order], tp[:, order]
    num_gt = torch.bincount(gt["labels"], minlength=C)
    bounds = torch.searchsorted(labels, torch.arange(C + 1)).tolist()
    ap = torch.full((C, T), float("nan"), dtype=torch.float64)
    recalls, precisions, class_scores = [], [], []
    for c in range(C):  # classes, not images or boxes
        lo, hi = bounds[c], bounds[c + 1]
        class_scores.append(scores[lo:hi])
        if num_gt[c] == 0:
            recalls.append(torch.zeros(T, hi - lo, dtype=torch.float64))
            precisions.append(torch.zeros(T, hi - lo, dtype=torch.float64))
            continue
        rec, prec = precision_recall(tp[:, lo:hi], int(num_gt[c]))  # [T, D_c]
        recalls.append(rec)
        precisions.append(prec)
        ap[c] = torch.tensor([average_precision(rec[t], prec[t], method) for t in range(T)], dtype=torch.float64)
    valid = num_gt > 0

    def mean_at(value: float) -> float:
        t = (thresholds - value).abs().argmin()
        return float(ap[valid, t].mean()) if bool(valid.any()) and abs(float(thresholds[t]) - value) < 1e-9 else float("nan")

    return DetectionResult(
        iou_thresholds=thresholds, ap=ap,
        map=float(ap[valid].mean()) if bool(valid.any()) else float("nan"),
        map_50=mean_at(0.5), map_75=mean_at(0.75), num_gt=num_gt,
        recall=recalls, precision=precisions, scores=class_scores,
    )


def to_coco(detections: Sequence[dict], ground_truths: Sequence[dict], num_classes: int) -> tuple[dict, list[dict]]:
    """The same data as COCO json structures, for pycocotools.

    Image i gets id i + 1, class c category id c + 1; boxes become xywh, areas w * h.

    Returns:
        ``(gt_json, det_json)``: a dataset dict for ``COCO()`` (set ``coco.dataset = gt_json;
        coco.createIndex()``) and a result list for ``coco.loadRes``.
    """
    _check_inputs(detections, ground_truths, num_classes)
    gt_json: dict = {
        "images": [{"id": i + 1} for i in range(len(ground_truths))],
        "categories": [{"id": c + 1, "name": str(c)} for c in range(num_classes)],
        "annotations": [],
    }
    det_json: list[dict] = []
    for i, (d, g) in enumerate(zip(detections, ground_truths)):
        for box, label in zip(box_convert(g["boxes"].float(), "xyxy", "xywh").tolist(), g["labels"].tolist()):
            gt_json["annotations"].append({
                "id": len(gt_json["annotations"]) + 1, "image_id": i + 1, "category_id": int(label) + 1,
                "bbox": box, "area": box[2] * box[3], "iscrowd": 0,
            })
        xywh = box_convert(d["boxes"].float(), "xyxy", "xywh").tolist()
        for box, score, label in zip(xywh, d["scores"].float().tolist(), d["labels"].tolist()):
            det_json.append({"image_id": i + 1, "category_id": int(label) + 1, "bbox": box, "score": score})
    return gt_json, det_json


def simulate_detections(
    num_images: int,
    num_classes: int,
    generator: torch.Generator,
    *,
    image_size: float = 300.0,
    max_objects: int = 6,
    jitter: float = 0.1,
    miss_rate: float = 0.2,
    duplicate_rate: float = 0.3,
    confusion_rate: float = 0.1,
    false_positives: float = 2.0,
) -> tuple[list[dict], list[dict]]:
    """Ground truth and the detections of an imaginary detector, to study the metrics.

    Each image gets 0..``max_objects`` boxes of random classes. The "detector" finds each box
    with probability ``1 - miss_rate`` (localisation noise: corners moved by ``jitter`` times
    the box size, Gaussian), sometimes twice (``duplicate_rate``), sometimes with a wrong
    class (``confusion_rate``), and adds Poisson(``false_positives``) boxes at random places.
    Scores are higher for better-placed detections, with noise, as a trained detector's are.

    Returns:
        ``(detections, ground_truths)`` in the format :func:`evaluate_detections` takes.
    """
    g = generator
    dets, gts = [], []
    for _ in range(num_images):  # data generation, not the evaluation: a loop is fine here
        G = int(torch.randint(0, max_objects + 1, (1,), generator=g))
        xy = torch.rand(G, 2, generator=g) * image_size * 0.75
        wh = (torch.rand(G, 2, generator=g) * 0.3 + 0.05) * image_size
        boxes = torch.cat([xy, xy + wh], 1)
        labels = torch.randint(0, num_classes, (G,), generator=g)
        found = torch.rand(G, generator=g) >= miss_rate
        copies = found.long() + (found & (torch.rand(G, generator=g) < duplicate_rate)).long()
        src = torch.repeat_interleave(torch.arange(G), copies)
        noise = torch.randn(len(src), 4, generator=g) * jitter
        det = boxes[src] + noise * wh[src].repeat(1, 2)
        det = torch.cat([det[:, :2].minimum(det[:, 2:]), det[:, :2].maximum(det[:, 2:])], 1)
        det_labels = labels[src].clone()
        wrong = torch.rand(len(src), generator=g) < confusion_rate
        det_labels[wrong] = torch.randint(0, num_classes, (int(wrong.sum()),), generator=g)
        quality = -noise.abs().mean(1) / max(jitter, 1e-6)  # ~ -0.8 on average, higher = better placed
        F = int(torch.poisson(torch.tensor([float(false_positives)]), generator=g))
        fxy = torch.rand(F, 2, generator=g) * image_size * 0.8
        fwh = (torch.rand(F, 2, generator=g) * 0.25 + 0.03) * image_size
        det = torch.cat([det, torch.cat([fxy, fxy + fwh], 1)]).clamp(0, image_size)
        det_labels = torch.cat([det_labels, torch.randint(0, num_classes, (F,), generator=g)])
        logits = torch.cat([1.0 + quality, torch.full((F,), -1.5)]) + torch.randn(len(det), generator=g)
        dets.append(dict(boxes=det, scores=torch.sigmoid(logits), labels=det_labels))
        gts.append(dict(boxes=boxes, labels=labels))
    return dets, gts
