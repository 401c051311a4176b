"""Classification losses."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["soft_target_cross_entropy"]


def soft_target_cross_entropy(logits: Tensor, targets: Tensor) -> Tensor:
    """Cross-entropy with class-index or soft targets, averaged over the batch.

    ``mean_i( -sum_k targets[i, k] * log_softmax(logits)[i, k] )``; equals
    ``F.cross_entropy(logits, targets)`` for both kinds of target.

    Args:
        logits (Tensor[B, K]): unnormalised scores.
        targets (Tensor[B] int64 or Tensor[B, K] float): class indices or soft labels
            (rows usually summing to 1).

    Returns:
        Tensor[] (float): the mean loss.
    """
    if not isinstance(logits, Tensor) or logits.ndim != 2:
        got = (
            f"shape {tuple(logits.shape)}"
            if isinstance(logits, Tensor)
            else type(logits).__name__
        )
        raise ValueError(f"logits must be Tensor[B, K], got {got}")
    if targets.ndim == 1:
        if targets.dtype != torch.int64 or targets.shape[0] != logits.shape[0]:
            raise ValueError(
                f"class-index targets must be int64 [{logits.shape[0]}], got "
                f"{targets.dtype} {tuple(targets.shape)}"
            )
        return F.cross_entropy(logits, targets)
    if targets.shape != logits.shape or not targets.is_floating_point():
        raise ValueError(
            "soft targets must be float with the shape of logits "
            f"{tuple(logits.shape)}, "
            f"got {targets.dtype} {tuple(targets.shape)}"
        )
    return -(targets * F.log_softmax(logits, dim=1)).sum(dim=1).mean()
