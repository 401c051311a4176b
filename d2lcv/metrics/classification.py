"""Classification metrics."""

from __future__ import annotations

from torch import Tensor

__all__ = ["num_correct"]


def num_correct(logits: Tensor, targets: Tensor) -> Tensor:
    """How many predictions ``logits.argmax(1)`` match the targets.

    Args:
        logits (Tensor[B, C]): scores.
        targets (Tensor[B] int64 or Tensor[B, C] float): class indices, or soft labels
            whose argmax is taken as the class.

    Returns:
        Tensor[] (int64): the count (a sum, so that it adds up over batches and processes).
    """
    if targets.ndim == logits.ndim:  # soft labels [B, C]
        targets = targets.argmax(dim=1)
    return (logits.argmax(dim=1) == targets).sum()
