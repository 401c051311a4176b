"""Detection models: :mod:`~d2lcv.models.detection.ssd` and :mod:`~d2lcv.models.detection.yolo` (the R-CNN family next)."""

from __future__ import annotations

from .ssd import SSD, detect, predict, ssd_targets
from .yolo import TinyYOLOv3, YOLOv1, conv_bn, yolo_detect, yolo_predict

__all__ = ["SSD", "ssd_targets", "predict", "detect", "YOLOv1", "TinyYOLOv3", "conv_bn", "yolo_predict",
           "yolo_detect"]
