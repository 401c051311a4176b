"""Layer 4, metrics: classification accuracy, detection precision/recall/AP/mAP, and the
COCO reference (pycocotools) they are checked against; image statistics of stylised images."""

from __future__ import annotations

from .classification import num_correct, paired_difference, verdict
from .coco import COCO_STATS, coco_evaluator, coco_map, to_coco
from .detection import (
    AP_METHODS,
    AREA_RANGES,
    COCO_IOU_THRESHOLDS,
    DetectionResult,
    average_precision,
    check_detection_inputs,
    evaluate_detections,
    precision_recall,
)
from .generative import (
    ModeCoverage,
    feature_frechet_distance,
    feature_statistics,
    frechet_distance,
    mode_coverage,
    precision_recall_knn,
    sqrtm_psd,
)
from .image_stats import colour_distance, colour_histogram, edge_distance, orientation_energy
from .sequence import char_error_rate, edit_distance, perplexity, string_accuracy
from .simulate import simulate_detections

__all__ = [
    "num_correct", "paired_difference", "verdict",
    "AP_METHODS", "AREA_RANGES", "COCO_IOU_THRESHOLDS", "precision_recall", "average_precision", "DetectionResult",
    "check_detection_inputs", "evaluate_detections",
    "to_coco", "coco_evaluator", "coco_map", "COCO_STATS",
    "simulate_detections",
    "perplexity", "edit_distance", "char_error_rate", "string_accuracy",
    "ModeCoverage", "mode_coverage", "sqrtm_psd", "feature_statistics", "frechet_distance", "feature_frechet_distance",
    "precision_recall_knn",
    "orientation_energy", "colour_histogram", "edge_distance", "colour_distance",
]
