"""Statistics of a detection dataset: objects per image, box sizes, class counts,
overlaps.

The dataset pages describe both emoji detection sets with them::

    stats = detection_statistics(train_set.targets, image_size=192, num_classes=20)
    stats.per_image.float().mean(), stats.box_side.min(), stats.class_counts
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import Tensor

from d2lcv.ops.boxes import check_boxes
from d2lcv.ops.iou import box_inter_union

__all__ = ["DetectionStatistics", "detection_statistics"]


class DetectionStatistics(NamedTuple):
    """What :func:`detection_statistics` counts.

    Attributes:
        per_image (Tensor[N] int64): objects in each image.
        box_side (Tensor[M] float32): ``sqrt(w h) / image side`` of every box, image by
            image.
        class_counts (Tensor[C] int64): boxes of each class.
        overlapping (Tensor[M] bool): the boxes that overlap another box of their image
            (an upper bound on the occluded objects: boxes can overlap where pixels do
            not).
    """

    per_image: Tensor
    box_side: Tensor
    class_counts: Tensor
    overlapping: Tensor


def _check(
    targets: Sequence[dict[str, Tensor]], image_size: float, num_classes: int
) -> None:
    if not image_size > 0 or num_classes < 1:
        raise ValueError(
            f"image_size and num_classes must be positive, got {image_size} and {num_classes}"
        )
    for i, t in enumerate(targets):
        if not isinstance(t, dict) or "boxes" not in t or "labels" not in t:
            raise ValueError(
                f"targets must be dicts with 'boxes' and 'labels', got {type(t).__name__} at {i}"
            )
        check_boxes(t["boxes"], t["labels"])
        if (
            len(t["labels"])
            and not 0 <= int(t["labels"].min()) <= int(t["labels"].max()) < num_classes
        ):
            raise ValueError(
                f"labels must be in 0..{num_classes - 1}, got {t['labels'].tolist()} at {i}"
            )


def _overlapping(boxes: Tensor) -> Tensor:
    """Tensor[G] bool: the boxes whose intersection with another box is positive."""
    inter, _ = box_inter_union(boxes[:, None], boxes[None])
    return ((inter > 0).sum(dim=1) - (inter.diagonal() > 0).long()) > 0


def detection_statistics(
    targets: Sequence[dict[str, Tensor]], image_size: float, num_classes: int
) -> DetectionStatistics:
    """Count objects per image, box sizes, classes and overlaps of a detection dataset.

    Args:
        targets: N dicts with ``boxes`` Tensor[G_i, 4] (xyxy pixels) and ``labels``
            Tensor[G_i] (int64 in ``0..num_classes-1``), e.g. ``dataset.targets``.
        image_size: the side of the (square) images, pixels.
        num_classes: C.

    Returns:
        a :class:`DetectionStatistics`; with no targets (or no boxes) its tensors are
        empty (``class_counts``: C zeros).
    """
    _check(targets, image_size, num_classes)
    boxes = torch.cat([t["boxes"].float() for t in targets] or [torch.zeros(0, 4)])
    labels = torch.cat(
        [t["labels"].long() for t in targets] or [torch.zeros(0, dtype=torch.long)]
    )
    wh = boxes[:, 2:] - boxes[:, :2]
    return DetectionStatistics(
        per_image=torch.tensor([len(t["labels"]) for t in targets], dtype=torch.long),
        box_side=(wh[:, 0] * wh[:, 1]).sqrt() / image_size,
        class_counts=torch.bincount(labels, minlength=num_classes),
        overlapping=torch.cat(
            [_overlapping(t["boxes"].float()) for t in targets]
            or [torch.zeros(0, dtype=torch.bool)]
        ),
    )
