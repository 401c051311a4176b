"""Non-maximum suppression: greedy, class-aware (batched) and soft.

A detector predicts many overlapping boxes for one object. Greedy NMS keeps the
highest-scoring box, removes every box that overlaps it by more than an IoU threshold, and
repeats with the best remaining box. :func:`nms` and :func:`batched_nms` return the same
indices as ``torchvision.ops.nms`` / ``batched_nms`` (equal scores: the lower index first),
in pure torch: the IoU tests run a block of boxes at a time, so the Python loop runs over
blocks, not boxes. :func:`soft_nms` decays the scores of overlapping boxes instead of
removing them.

References: Neubeck and Van Gool, Efficient Non-Maximum Suppression, ICPR 2006;
Bodla et al., Soft-NMS, ICCV 2017.
"""

from __future__ import annotations

import torch
from torch import Tensor

from d2lcv.ops.boxes import check_boxes
from d2lcv.ops.iou import box_inter_union, safe_div

__all__ = ["nms", "batched_nms", "soft_nms"]


def _check(boxes: Tensor, scores: Tensor, iou_threshold: float | None = None) -> None:
    check_boxes(boxes)
    if not isinstance(scores, Tensor) or scores.shape != (boxes.shape[0],):
        got = f"shape {tuple(scores.shape)}" if isinstance(scores, Tensor) else type(scores).__name__
        raise ValueError(f"scores must be Tensor[{boxes.shape[0]}], one per box, got {got}")
    if bool(scores.isnan().any()):
        raise ValueError("scores contain NaN: a NaN score cannot be ranked; drop or replace those boxes first")
    if iou_threshold is not None and not 0 <= iou_threshold <= 1:
        raise ValueError(f"iou_threshold must be in [0, 1], got {iou_threshold}")


def _working(x: Tensor) -> Tensor:
    """``x`` in the dtype to compute in: float64 stays float64 (as in torchvision, where near
    ties decide which box is kept), anything else becomes float32."""
    return x if x.dtype == torch.float64 else x.float()


def _iou(b1: Tensor, b2: Tensor) -> Tensor:
    """IoU of every pair of two valid xyxy sets, [N, 4] x [M, 4] -> [N, M], without re-checking."""
    inter, union = box_inter_union(b1[:, None, :], b2[None, :, :])
    return safe_div(inter, union)


def _overlaps(b1: Tensor, area1: Tensor, b2: Tensor, area2: Tensor, iou_threshold: float) -> Tensor:
    """[n, m] bool: IoU > threshold for every pair, with torchvision's float operations
    (``inter / (area1 + area2 - inter)``) and in-place steps to save memory."""
    w = (torch.min(b1[:, None, 2], b2[None, :, 2]) - torch.max(b1[:, None, 0], b2[None, :, 0])).clamp_(min=0)
    h = (torch.min(b1[:, None, 3], b2[None, :, 3]) - torch.max(b1[:, None, 1], b2[None, :, 1])).clamp_(min=0)
    inter = w.mul_(h)  # [n, m]
    union = (area1[:, None] + area2[None, :]).sub_(inter)
    return inter.div_(union) > iou_threshold  # 0 / 0 = NaN compares False: zero-area boxes never suppress


def nms(
    boxes: Tensor, scores: Tensor, iou_threshold: float, block_size: int = 256
) -> Tensor:
    """Greedy non-maximum suppression.

    Go through the boxes by decreasing score; keep a box unless it overlaps an already kept
    box with IoU > ``iou_threshold``. Done a block of ``block_size`` boxes at a time: first
    drop the block's boxes that overlap a box kept in an earlier block (one IoU test of the
    block against all kept boxes), then settle the block itself: box j survives if no
    surviving earlier box of the block suppresses it; iterating that rule from "all
    survive" reaches the greedy answer in a few passes over the block's overlap matrix.

    Args:
        boxes (Tensor[N, 4]): xyxy, x1 <= x2, y1 <= y2; float64 is computed in float64, other
            dtypes in float32.
        scores (Tensor[N]): no NaN.
        iou_threshold: suppress boxes with IoU > this with a kept box.
        block_size: boxes per block (speed only; the result does not depend on it).

    Returns:
        Tensor[K] (int64): kept indices, by decreasing score (equal scores: lower index first).

    Reference: Neubeck and Van Gool, Efficient Non-Maximum Suppression, ICPR 2006.
    """
    _check(boxes, scores, iou_threshold)
    order = scores.argsort(descending=True, stable=True)
    b = _working(boxes[order])  # [N, 4] by decreasing score
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])  # [N]
    N = b.shape[0]
    keep = torch.zeros(N, dtype=torch.bool, device=b.device)
    # the first K are kept
    kept_boxes, kept_area, K = torch.empty_like(b), torch.empty_like(area), 0
    for start in range(0, N, block_size):
        # a block of n boxes [n, 4] and their areas [n]
        blk, blk_area = b[start : start + block_size], area[start : start + block_size]
        alive = torch.ones(len(blk), dtype=torch.bool, device=b.device)
        if K:  # suppressed by a box kept in an earlier block
            alive = ~_overlaps(
                blk, blk_area, kept_boxes[:K], kept_area[:K], iou_threshold
            ).any(dim=1)
        # [n, n] i < j
        over = _overlaps(blk, blk_area, blk, blk_area, iou_threshold).triu_(diagonal=1)
        # as numbers: "suppressed by a kept box" becomes a product
        over = over.to(b.dtype)
        k = alive
        while True:  # k[j] = alive[j] and no kept i < j suppresses j
            # [n]: number of kept boxes suppressing j
            new = alive & (k.to(b.dtype) @ over == 0)
            if torch.equal(new, k):
                break
            k = new
        keep[start : start + block_size] = k
        n = int(k.sum())
        kept_boxes[K : K + n], kept_area[K : K + n] = blk[k], blk_area[k]
        K += n
    return order[keep]


def batched_nms(
    boxes: Tensor, scores: Tensor, idxs: Tensor, iou_threshold: float
) -> Tensor:
    """Class-aware NMS: boxes suppress only boxes with the same ``idxs`` (class, or image).

    Shifts each class's boxes by ``idx * (max coordinate + 1)`` so that boxes of different
    classes never overlap, then runs one :func:`nms` on all of them; above 1000 boxes, one
    :func:`nms` per class instead (a loop over classes: each costs the square of its size).

    Args:
        boxes (Tensor[N, 4]): xyxy, finite.
        scores (Tensor[N]): no NaN.
        idxs (Tensor[N]): int64 category of each box.
        iou_threshold: as in :func:`nms`.

    Returns:
        Tensor[K] (int64): kept indices, by decreasing score (equal scores: lower index
        first). ``torchvision.ops.batched_nms`` keeps the same boxes; above 1000 boxes on the
        CPU it orders equal scores of different classes arbitrarily.
    """
    _check(boxes, scores, iou_threshold)
    if not isinstance(idxs, Tensor) or idxs.shape != scores.shape:
        raise ValueError(
            f"idxs must be Tensor[{len(scores)}], one category per box, got "
            f"{getattr(idxs, 'shape', idxs)}"
        )
    finite = torch.isfinite(boxes).all(dim=1)
    if not bool(finite.all()):  # the class offsets below would turn it into NaN
        i = int((~finite).nonzero()[0])
        raise ValueError(
            "boxes must be finite (classes are told apart by offsets of the "
            "coordinate range), "
            f"got box {i}: {boxes[i].tolist()}"
        )
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.long, device=boxes.device)
    # many boxes: one nms per class, each on fewer boxes (as torchvision)
    if len(boxes) > 1000:
        keep = torch.cat(
            [
                members[nms(boxes[members], scores[members], iou_threshold)]
                for members in _members(idxs)
            ]
        )
        # then by decreasing score, equal scores: lower index first
        keep = keep.sort().values
        return keep[scores[keep].argsort(descending=True, stable=True)]
    boxes = _working(boxes)
    span = boxes.max() - boxes.min() + 1
    shifted = boxes - boxes.min() + (idxs.to(boxes) * span)[:, None]
    return nms(shifted, scores, iou_threshold)


def _members(idxs: Tensor) -> list[Tensor]:
    """The indices of each category's boxes: one Tensor per distinct value of ``idxs``."""
    order = idxs.argsort(stable=True)
    counts = torch.unique_consecutive(idxs[order], return_counts=True)[1]
    return list(order.split(counts.tolist()))


def soft_nms(
    boxes: Tensor,
    scores: Tensor,
    sigma: float = 0.5,
    score_threshold: float = 0.001,
    method: str = "gaussian",
    iou_threshold: float = 0.3,
) -> tuple[Tensor, Tensor]:
    """Soft-NMS: instead of removing the boxes that overlap a kept box, lower their scores.

    Repeatedly keep the box with the highest current score and multiply the score of every
    remaining box by a decay of its IoU with it: ``exp(-IoU^2 / sigma)`` (``"gaussian"``), or
    ``1 - IoU`` when IoU > ``iou_threshold`` (``"linear"``). Boxes whose score falls below
    ``score_threshold`` are dropped. Sequential by nature: one step per kept box, and the
    full ``[N, N]`` IoU matrix is computed first, so it suits per-class sets of up to a few
    thousand boxes.

    Args:
        boxes (Tensor[N, 4]): xyxy.
        scores (Tensor[N]): no NaN.
        sigma: width of the Gaussian decay.
        score_threshold: drop boxes whose decayed score is below this.
        method: ``"gaussian"`` or ``"linear"``.
        iou_threshold: overlap from which the linear decay applies.

    Returns:
        ``(keep, new_scores)``: Tensor[K] int64 kept indices in the order they were picked
        (decreasing decayed score), and Tensor[K] their decayed scores (float64 for float64
        scores, else float32).

    Reference: Bodla et al., Soft-NMS: Improving Object Detection With One Line of Code, ICCV 2017.
    """
    _check(boxes, scores)
    if method not in ("gaussian", "linear"):
        raise ValueError(f"method must be 'gaussian' or 'linear', got {method!r}")
    if sigma <= 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    iou = _iou(_working(boxes), _working(boxes))  # [N, N]
    current = _working(scores).clone()
    remaining = current >= score_threshold
    keep, new_scores = [], []
    while bool(remaining.any()):
        i = int(current.masked_fill(~remaining, -float("inf")).argmax())
        keep.append(i)
        new_scores.append(current[i])
        remaining[i] = False
        overlap = iou[i]
        if method == "gaussian":
            decay = torch.exp(-overlap.pow(2) / sigma)
        else:
            decay = torch.where(
                overlap > iou_threshold, 1 - overlap, torch.ones_like(overlap)
            )
        current = torch.where(remaining, current * decay, current)
        remaining &= current >= score_threshold
    idx = torch.tensor(keep, dtype=torch.long, device=boxes.device)
    return idx, (torch.stack(new_scores) if new_scores else current.new_zeros(0))
