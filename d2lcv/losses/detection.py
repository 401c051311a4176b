"""Detection losses."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from d2lcv.ops.sampling import hard_negative_mining

__all__ = ["ssd_loss"]


def ssd_loss(
    cls_logits: Tensor,
    box_offsets: Tensor,
    labels: Tensor,
    offsets: Tensor,
    mask: Tensor,
    neg_pos_ratio: int = 3,
) -> tuple[Tensor, Tensor, Tensor]:
    """SSD's multibox loss.

    Classification: cross-entropy over every positive anchor and the ``neg_pos_ratio``
    hardest negatives per positive of each image (:func:`~d2lcv.ops.hard_negative_mining`).
    Localisation: smooth L1 between predicted and target offsets of the positives. Both are
    summed and divided by the number of positives in the batch.

    Args:
        cls_logits (Tensor[B, A, C + 1]), box_offsets (Tensor[B, A, 4]): the predictions.
        labels (Tensor[B, A]), offsets (Tensor[B, A, 4]), mask (Tensor[B, A, 4]): the targets.

    Returns:
        ``(loss, cls_loss, box_loss)``, scalars, ``loss = cls_loss + box_loss``.
    """
    B, A, K = cls_logits.shape
    if labels.shape != (B, A) or box_offsets.shape != (B, A, 4):
        raise ValueError(
            f"expected labels [{B}, {A}] and box_offsets [{B}, {A}, 4], "
            f"got {tuple(labels.shape)} and {tuple(box_offsets.shape)}"
        )
    ce = F.cross_entropy(
        cls_logits.reshape(-1, K), labels.reshape(-1), reduction="none"
    ).reshape(B, A)
    # [B, A] positives + hardest negatives
    keep = hard_negative_mining(ce, labels, neg_pos_ratio)
    num_pos = (labels > 0).sum().clamp(min=1)
    cls_loss = (ce * keep).sum() / num_pos
    box_loss = (
        F.smooth_l1_loss(box_offsets * mask, offsets * mask, reduction="sum") / num_pos
    )
    return cls_loss + box_loss, cls_loss, box_loss
