"""Choosing which anchors train the classifier: hard negative mining (SSD).

Reference: Liu et al., SSD: Single Shot MultiBox Detector, ECCV 2016.
"""

from __future__ import annotations

import math

from torch import Tensor

__all__ = ["hard_negative_mining"]


def hard_negative_mining(
    loss: Tensor, labels: Tensor, neg_pos_ratio: int = 3
) -> Tensor:
    """Which anchors enter the classification loss: all positives and the hardest negatives.

    Most anchors are background; SSD keeps, per image, only the ``neg_pos_ratio`` times as
    many negatives as positives, those with the highest loss. An image without positives
    contributes no negatives.

    Args:
        loss (Tensor[B, A]): the per-anchor classification loss.
        labels (Tensor[B, A]): 0 = background, > 0 = positive.
        neg_pos_ratio: negatives per positive (SSD: 3).

    Returns:
        Tensor[B, A] (bool): the anchors to keep.
    """
    if loss.shape != labels.shape or loss.ndim != 2:
        raise ValueError(
            f"loss and labels must both be [B, A], got {tuple(loss.shape)} and "
            f"{tuple(labels.shape)}"
        )
    if neg_pos_ratio < 0:
        raise ValueError(f"neg_pos_ratio must be >= 0, got {neg_pos_ratio}")
    positive = labels > 0
    num_neg = positive.sum(dim=1, keepdim=True) * neg_pos_ratio  # [B, 1]
    neg_loss = loss.detach().masked_fill(positive, -math.inf)
    # [B, A] 0 = hardest
    rank = neg_loss.argsort(dim=1, descending=True, stable=True).argsort(dim=1)
    return positive | ((rank < num_neg) & ~positive)
