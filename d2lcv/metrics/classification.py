"""Classification metrics."""

from __future__ import annotations

from torch import Tensor

__all__ = ["num_correct", "paired_difference", "verdict"]


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


def paired_difference(correct_a: Tensor, correct_b: Tensor) -> tuple[float, float]:
    """Mean difference in accuracy (a - b) on the same images, and its standard error.

    Args:
        correct_a, correct_b (Tensor[S, N] bool or Tensor[N]): whether each of N images was
            classified correctly, by S seeds' networks (averaged over the seeds first).

    Returns:
        ``(difference, standard error)``: the mean over images of the per-image difference,
        and that difference's standard deviation over images / sqrt(N).
    """
    if correct_a.shape != correct_b.shape or correct_a.ndim not in (1, 2) or correct_a.shape[-1] < 2:
        raise ValueError(f"need two [S, N] or [N] results on the same N >= 2 images, got shapes "
                         f"{tuple(correct_a.shape)} and {tuple(correct_b.shape)}")
    a = correct_a.float().reshape(-1, correct_a.shape[-1]).mean(0)
    b = correct_b.float().reshape(-1, correct_b.shape[-1]).mean(0)
    d = a - b  # per image, averaged over the seeds
    return d.mean().item(), d.std().item() / len(d) ** 0.5


def verdict(diff: float, se: float, *, k: float = 3.0) -> str:
    """``"a clear gain"`` or ``"a clear loss"`` when ``|diff|`` exceeds ``k`` standard errors,
    else ``"within noise"``."""
    return "within noise" if abs(diff) <= k * se else "a clear gain" if diff > 0 else "a clear loss"
