"""COCO json and pycocotools: the reference that :mod:`d2lcv.metrics.detection` is checked
against (tests, benchmarks and chapters all call :func:`coco_map`)."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from typing import Any

import torch

from d2lcv.metrics.detection import check_detection_inputs
from d2lcv.ops.boxes import box_convert

__all__ = ["to_coco", "coco_evaluator", "coco_map", "COCO_STATS"]

COCO_STATS = (
    "map", "map_50", "map_75", "map_small", "map_medium", "map_large",
    "ar_1", "ar_10", "ar_100", "ar_small", "ar_medium", "ar_large",
)
"""The names of the 12 numbers of ``COCOeval.stats``, in order."""


def _working(x: torch.Tensor) -> torch.Tensor:
    """float64 stays float64, any other dtype becomes float32 (as in evaluate_detections)."""
    return x if x.dtype == torch.float64 else x.float()


def to_coco(detections: Sequence[dict], ground_truths: Sequence[dict], num_classes: int) -> tuple[dict, list[dict]]:
    """The same data as COCO json structures, for pycocotools.

    Image i gets id i + 1, class c category id c + 1; boxes become xywh, areas w * h.
    Float64 boxes and scores are converted in float64, other dtypes in float32 (as
    :func:`~d2lcv.metrics.detection.evaluate_detections` does).

    Returns:
        ``(gt_json, det_json)``: a dataset dict for ``COCO()`` (set ``coco.dataset = gt_json;
        coco.createIndex()``) and a result list for ``coco.loadRes``.
    """
    check_detection_inputs(detections, ground_truths, num_classes)
    gt_json: dict = {
        "images": [{"id": i + 1} for i in range(len(ground_truths))],
        "categories": [{"id": c + 1, "name": str(c)} for c in range(num_classes)],
        "annotations": [],
    }
    det_json: list[dict] = []
    for i, (d, g) in enumerate(zip(detections, ground_truths)):
        for box, label in zip(box_convert(_working(g["boxes"]), "xyxy", "xywh").tolist(), g["labels"].tolist()):
            gt_json["annotations"].append({
                "id": len(gt_json["annotations"]) + 1, "image_id": i + 1, "category_id": int(label) + 1,
                "bbox": box, "area": box[2] * box[3], "iscrowd": 0,
            })
        xywh = box_convert(_working(d["boxes"]), "xyxy", "xywh").tolist()
        for box, score, label in zip(xywh, _working(d["scores"]).tolist(), d["labels"].tolist()):
            det_json.append({"image_id": i + 1, "category_id": int(label) + 1, "bbox": box, "score": score})
    return gt_json, det_json


def coco_evaluator(detections: Sequence[dict], ground_truths: Sequence[dict], num_classes: int) -> Any:
    """pycocotools' ``COCOeval`` (``iouType="bbox"``) run on the same data, quietly:
    evaluated, accumulated and summarised (``.stats``, ``.eval["precision"]``, ...).

    Args: as :func:`~d2lcv.metrics.detection.evaluate_detections`.

    Raises:
        ImportError: pycocotools is not installed (``pip install pycocotools``).
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gt_json, det_json = to_coco(detections, ground_truths, num_classes)
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints as it goes
        coco = COCO()
        coco.dataset = gt_json
        coco.createIndex()
        evaluator = COCOeval(coco, coco.loadRes(det_json), "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator


def coco_map(detections: Sequence[dict], ground_truths: Sequence[dict], num_classes: int) -> dict[str, float]:
    """The 12 summary numbers of :func:`coco_evaluator`, by name (:data:`COCO_STATS`):
    ``map`` is mAP@[.5:.95], ``map_50`` mAP@0.5, ...; -1 where pycocotools has nothing to average."""
    evaluator = coco_evaluator(detections, ground_truths, num_classes)
    return {name: float(v) for name, v in zip(COCO_STATS, evaluator.stats)}
