"""YOLO v1: the S x S grid, its targets, its boxes, its decoder; and the detection
post-processing every YOLO shares (scores -> class-wise NMS).

Boxes are xyxy in NORMALISED image coordinates (as anchors in :mod:`d2lcv.ops.anchors`);
batches of ground truth are padded, ``gt_labels`` -1 for padding (as
:func:`~d2lcv.ops.label_anchors`). A v1 prediction holds, for every cell, ``B`` boxes of
five numbers ``(x, y, sqrt(w), sqrt(h), confidence)`` then ``C`` class probabilities: a
``[N, S, S, B * 5 + C]`` tensor. ``x, y`` are the centre's offset inside the cell
(0..1),
``w, h`` fractions of the image::

    target, assigned = yolo_v1_targets(gt_boxes, gt_labels, S=6, num_classes=20)
    boxes, scores = yolo_v1_decode(pred, num_boxes=2)  # [N, S*S*B, 4], [N, S*S*B, C]
    detections = postprocess_detections(boxes, scores)  # dicts: boxes, scores, labels

Reference: Redmon et al., You Only Look Once: Unified, Real-Time Object Detection, CVPR
2016.
"""

from __future__ import annotations

import torch
from torch import Tensor

from d2lcv.ops.boxes import check_boxes
from d2lcv.ops.nms import batched_nms

__all__ = [
    "check_yolo_targets",
    "cell_of",
    "first_per_slot",
    "yolo_v1_targets",
    "yolo_v1_boxes",
    "yolo_v1_decode",
    "postprocess_detections",
]


def check_yolo_targets(gt_boxes: Tensor, gt_labels: Tensor, num_classes: int) -> Tensor:
    """Raise ``ValueError`` unless ``gt_boxes`` is Tensor[B, G, 4] xyxy normalised with
    positive sizes and ``gt_labels`` Tensor[B, G] integers in ``0..num_classes-1`` or -1
    (padding). Returns ``valid`` Tensor[B, G] bool, the real boxes."""
    if not isinstance(gt_boxes, Tensor) or not isinstance(gt_labels, Tensor):
        raise ValueError(
            f"gt_boxes and gt_labels must be tensors, got {type(gt_boxes).__name__} "
            f"and {type(gt_labels).__name__}"
        )
    if (
        gt_boxes.ndim != 3
        or gt_boxes.shape[-1] != 4
        or gt_labels.shape != gt_boxes.shape[:2]
    ):
        raise ValueError(
            f"gt_boxes must be [B, G, 4] and gt_labels [B, G], got "
            f"{tuple(gt_boxes.shape)} and {tuple(gt_labels.shape)}"
        )
    if gt_labels.is_floating_point() or gt_labels.dtype == torch.bool:
        raise ValueError(
            f"gt_labels must be integers (-1 for padding), got {gt_labels.dtype}"
        )
    valid = gt_labels >= 0
    if bool((gt_labels[valid] >= num_classes).any()) or bool((gt_labels < -1).any()):
        raise ValueError(
            f"gt_labels must be in 0..{num_classes - 1} or -1, got "
            f"{sorted(set(gt_labels.unique().tolist()))}"
        )
    b = gt_boxes[valid]
    check_boxes(b)
    if not bool(((b[:, 2:] > b[:, :2]).all() and (b >= 0).all() and (b <= 1).all())):
        raise ValueError(
            "gt_boxes must be normalised (0..1) with positive width and height "
            "(divide pixels by the image size; drop or pad empty boxes)"
        )
    return valid


def cell_of(boxes: Tensor, S: int | Tensor) -> tuple[Tensor, Tensor]:
    """The grid cell ``(row i, column j)`` holding each box's centre on an ``S x S``
    grid.

    Cells are half-open, ``[j / S, (j + 1) / S)``: a centre exactly on a boundary
    belongs to the cell below / to the right of it (a centre at 1.0, to the last cell).

    Args:
        boxes (Tensor[..., 4]): xyxy, normalised.
        S: the grid size, or Tensor[...] int64, one per box.

    Returns:
        ``(i, j)``: Tensor[...] int64 each.
    """
    last = torch.as_tensor(S, device=boxes.device) - 1
    cx = (boxes[..., 0] + boxes[..., 2]) / 2
    cy = (boxes[..., 1] + boxes[..., 3]) / 2
    j = torch.minimum((cx * S).floor().long().clamp(min=0), last)
    i = torch.minimum((cy * S).floor().long().clamp(min=0), last)
    return i, j


def first_per_slot(slot: Tensor, priority: Tensor) -> Tensor:
    """Tensor[M] bool: for each distinct value of ``slot`` (Tensor[M] int64), True at
    the entry of the highest ``priority`` (ties: the first); used where one cell (or
    anchor) can hold only one of several objects."""
    order = priority.argsort(descending=True, stable=True)
    order = order[slot[order].argsort(stable=True)]  # by slot, then by priority
    s = slot[order]
    first = torch.ones_like(s, dtype=torch.bool)
    first[1:] = s[1:] != s[:-1]
    keep = torch.zeros_like(first)
    keep[order] = first
    return keep


def yolo_v1_targets(
    gt_boxes: Tensor, gt_labels: Tensor, S: int, num_classes: int
) -> tuple[Tensor, Tensor]:
    """YOLO v1's training target: the cell holding a box's centre is responsible for it.

    A cell can hold one object only (one set of class probabilities): when several
    centres fall in one cell, the largest box gets it (ties: the first listed), the
    others are lost.

    Args:
        gt_boxes (Tensor[B, G, 4]): xyxy, normalised, positive sizes (padding rows:
            anything).
        gt_labels (Tensor[B, G]): classes ``0..C-1``, -1 for padding.
        S: grid cells per side; num_classes: C.

    Returns:
        ``(target, assigned)``: target Tensor[B, S, S, 5 + C] with ``(x, y, w, h, 1,
        one-hot class)`` in object cells and zeros elsewhere (x, y: the centre's offset
        in the cell; w, h: fractions of the image); assigned Tensor[B, G] bool, the
        boxes given a cell.
    """
    valid = check_yolo_targets(gt_boxes, gt_labels, num_classes)
    b, g = valid.nonzero(as_tuple=True)
    box = gt_boxes[b, g].float()
    i, j = cell_of(box, S)
    wh = box[:, 2:] - box[:, :2]
    keep = first_per_slot((b * S + i) * S + j, wh.prod(dim=1))
    b, g, box, i, j, wh = b[keep], g[keep], box[keep], i[keep], j[keep], wh[keep]
    centre = (box[:, :2] + box[:, 2:]) / 2 * S - torch.stack((j, i), dim=1)
    target = gt_boxes.new_zeros(
        len(gt_boxes), S, S, 5 + num_classes, dtype=torch.float32
    )
    target[b, i, j, :4] = torch.cat((centre, wh), dim=1)
    target[b, i, j, 4] = 1.0
    target[b, i, j, 5 + gt_labels[b, g]] = 1.0
    assigned = torch.zeros_like(valid)
    assigned[b, g] = True
    return target, assigned


def yolo_v1_boxes(xy_sqrt_wh: Tensor) -> Tensor:
    """Boxes from v1's per-cell numbers.

    Args:
        xy_sqrt_wh (Tensor[N, S, S, K, 4]): ``(x, y, sqrt(w), sqrt(h))`` of K boxes per
            cell.

    Returns:
        Tensor[N, S, S, K, 4]: xyxy, normalised: centre ``((j + x) / S, (i + y) / S)``.
    """
    S = xy_sqrt_wh.shape[1]
    r = torch.arange(S, dtype=xy_sqrt_wh.dtype, device=xy_sqrt_wh.device)
    cell = torch.stack(torch.meshgrid(r, r, indexing="xy"), dim=-1)  # [S, S, (j, i)]
    centre = (xy_sqrt_wh[..., :2] + cell[:, :, None]) / S
    half = xy_sqrt_wh[..., 2:] ** 2 / 2
    return torch.cat((centre - half, centre + half), dim=-1)


def _check_v1(pred: Tensor, num_boxes: int) -> int:
    if not isinstance(pred, Tensor) or pred.ndim != 4 or pred.shape[1] != pred.shape[2]:
        got = tuple(pred.shape) if isinstance(pred, Tensor) else type(pred).__name__
        raise ValueError(f"pred must be Tensor[N, S, S, B * 5 + C], got {got}")
    C = pred.shape[-1] - 5 * num_boxes
    if num_boxes < 1 or C < 1:
        raise ValueError(
            f"pred's last dimension {pred.shape[-1]} must be B * 5 + C with "
            f"C >= 1 for B = num_boxes = {num_boxes}"
        )
    return C


def yolo_v1_decode(pred: Tensor, num_boxes: int = 2) -> tuple[Tensor, Tensor]:
    """Every predicted box with its class-specific confidence scores.

    A box's score for class c is ``Pr(class c | object) * confidence``: the cell's class
    probability times the box's confidence (which estimates ``Pr(object) * IoU``).

    Args:
        pred (Tensor[N, S, S, B * 5 + C]): the (activated) predictions, B =
            ``num_boxes``.

    Returns:
        ``(boxes, scores)``: Tensor[N, S * S * B, 4] xyxy normalised (cells row-major,
        then the B boxes of a cell) and Tensor[N, S * S * B, C].
    """
    C = _check_v1(pred, num_boxes)
    N, S = pred.shape[:2]
    per_box = pred[..., : 5 * num_boxes].reshape(N, S, S, num_boxes, 5)
    scores = per_box[..., 4:5] * pred[..., None, 5 * num_boxes :]  # [N, S, S, B, C]
    boxes = yolo_v1_boxes(per_box[..., :4])
    return boxes.reshape(N, -1, 4), scores.reshape(N, -1, C)


def postprocess_detections(
    boxes: Tensor,
    scores: Tensor,
    image_size: tuple[int, int] = (1, 1),
    *,
    score_threshold: float = 0.01,
    iou_threshold: float = 0.45,
    max_detections: int = 100,
) -> list[dict[str, Tensor]]:
    """Detections from scored boxes: clip, keep (box, class) pairs scoring above
    ``score_threshold``, class-wise NMS (:func:`~d2lcv.ops.batched_nms`), best
    ``max_detections``.

    Args:
        boxes (Tensor[N, P, 4]): xyxy, normalised; scores (Tensor[N, P, C]): per class.
        image_size: ``(H, W)`` to scale the boxes to pixels (default: stay normalised).

    Returns:
        N dicts of ``boxes`` Tensor[K, 4], ``scores`` Tensor[K], ``labels`` Tensor[K]
        int64, by decreasing score: the format of
        :func:`~d2lcv.metrics.evaluate_detections`.
    """
    if boxes.ndim != 3 or boxes.shape[-1] != 4 or scores.shape[:2] != boxes.shape[:2]:
        raise ValueError(
            f"boxes must be [N, P, 4] and scores [N, P, C], got "
            f"{tuple(boxes.shape)} and {tuple(scores.shape)}"
        )
    H, W = image_size
    scale = torch.tensor([W, H, W, H], dtype=boxes.dtype, device=boxes.device)
    boxes = torch.minimum(boxes.clamp(min=0) * scale, scale)
    out = []
    for b in range(len(boxes)):
        p, cls = (scores[b] > score_threshold).nonzero(as_tuple=True)
        s, cand = scores[b, p, cls], boxes[b, p]
        keep = batched_nms(cand, s, cls, iou_threshold)[:max_detections]
        out.append({"boxes": cand[keep], "scores": s[keep], "labels": cls[keep]})
    return out
