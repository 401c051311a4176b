"""Detection models: :mod:`~d2lcv.models.detection.ssd` (YOLO and the R-CNN family next)."""

from __future__ import annotations

from .ssd import SSD, detect, predict, ssd_targets

__all__ = ["SSD", "ssd_targets", "predict", "detect"]
