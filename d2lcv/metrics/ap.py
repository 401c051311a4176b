"""Precision, recall and average precision (VOC's and COCO's) of one ranking of detections.

Detections ranked by score are each a true or a false positive; running down the ranking
gives recall (TP / ground-truth boxes) and precision (TP / detections so far): the
precision-recall curve, which average precision (AP) summarises.

References: Everingham et al., The PASCAL Visual Object Classes (VOC) Challenge, IJCV 2010;
Lin et al., Microsoft COCO: Common Objects in Context, ECCV 2014.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

__all__ = ["AP_METHODS", "average_precision", "average_precisions", "precision_recall"]

AP_METHODS = ("voc11", "voc_all", "coco101", "uninterpolated")


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
        raise ValueError(
            "num_gt must be positive (recall is undefined without ground truth), got "
            f"{num_gt}"
        )
    tps = tp.to(torch.float64).cumsum(-1)
    fps = (~tp.bool()).to(torch.float64).cumsum(-1)
    return tps / num_gt, tps / (tps + fps + np.spacing(1))  # COCOeval's eps


def average_precision(
    recall: Tensor, precision: Tensor, method: str = "coco101"
) -> float:
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
    recall, precision = (
        torch.as_tensor(recall, dtype=torch.float64),
        torch.as_tensor(precision, dtype=torch.float64),
    )
    if recall.ndim != 1 or recall.shape != precision.shape:
        raise ValueError(
            "recall and precision must be 1-d of one length, got "
            f"{tuple(recall.shape)} and {tuple(precision.shape)}"
        )
    return float(average_precisions(recall[None], precision[None], method)[0])


def average_precisions(recall: Tensor, precision: Tensor, method: str) -> Tensor:
    """:func:`average_precision` of each row of curves, at once.

    Args:
        recall, precision (Tensor[P, D]): float64, one curve per row.
        method: one of :data:`AP_METHODS` (not checked here).

    Returns:
        Tensor[P] (float64).
    """
    P, D = recall.shape
    if D == 0:
        return recall.new_zeros(P)
    envelope = precision.flip(-1).cummax(-1).values.flip(-1)  # p_interp at each rank
    if method in ("uninterpolated", "voc_all"):
        p = precision if method == "uninterpolated" else envelope
        steps = torch.diff(recall, dim=-1, prepend=recall.new_zeros(P, 1))
        return (steps * p).sum(-1)
    levels = torch.linspace(0, 1, 11 if method == "voc11" else 101, dtype=torch.float64)
    if method == "coco101":
        levels = torch.from_numpy(np.linspace(0.0, 1.0, 101))  # COCOeval's recThrs
    idx = torch.searchsorted(recall.contiguous(), levels.expand(P, -1).contiguous(), side="left")  # first rank >= level
    sampled = torch.where(idx < D, envelope.gather(-1, idx.clamp(max=D - 1)), 0.0)
    return sampled.mean(-1)
