"""Anchor boxes: generation on a feature map, matching to ground truth, offsets
(hard negatives: :mod:`d2lcv.ops.sampling`).

Anchors live in NORMALISED image coordinates: x and y are fractions of the image's width and
height, so one set of anchors serves any input resolution. Labelling follows SSD and d2l's
``multibox_target`` (class 0 = background, object class k -> k + 1; offsets with the usual
variances 0.1 and 0.2), batched over images with no Python loop over images or boxes::

    anchors = generate_anchors(fmap_h, fmap_w, sizes=[0.2, 0.272], ratios=[1, 2, 0.5])
    labels, offsets, mask = label_anchors(anchors, gt_boxes, gt_labels)   # [B, A] [B, A, 4] [B, A, 4]

Reference: Liu et al., SSD: Single Shot MultiBox Detector, ECCV 2016.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from d2lcv.ops.boxes import box_convert, check_boxes
from d2lcv.ops.iou import box_inter_union

__all__ = [
    "generate_anchors",
    "match_anchors",
    "encode_offsets",
    "decode_offsets",
    "label_anchors",
]


def generate_anchors(
    fmap_h: int, fmap_w: int, sizes: Sequence[float], ratios: Sequence[float]
) -> Tensor:
    """The anchors centred on every cell of an ``fmap_h x fmap_w`` feature map.

    Each cell gets ``n + m - 1`` anchors for ``n`` sizes and ``m`` ratios: every size with the
    first ratio, then the first size with every other ratio, in the order
    ``(s1, r1), ..., (sn, r1), (s1, r2), ..., (s1, rm)``.

    Width and height semantics (d2l's text and code disagree here): ``r`` is the anchor's
    width / height *in pixels* and ``s`` its height at ``r = 1`` as a fraction of the image
    height. So an anchor is ``s * sqrt(r) * H`` pixels wide and ``s / sqrt(r) * H`` pixels high,
    and in normalised coordinates its width is ``s * sqrt(r) * H / W`` and its height
    ``s / sqrt(r)``; the image is assumed to have the feature map's aspect ratio ``H / W =
    fmap_h / fmap_w``. These are the values of ``d2l.multibox_prior`` (any shape).

    Args:
        fmap_h, fmap_w: the feature map's height and width (cells).
        sizes: ``s1..sn`` in (0, 1].
        ratios: ``r1..rm``, positive and finite.

    Returns:
        Tensor[fmap_h * fmap_w * (n + m - 1), 4] (float32): xyxy, normalised, row-major over the
        cells (all anchors of cell (0, 0) first), centres at ``((j + 0.5) / fmap_w, (i + 0.5) / fmap_h)``.
    """
    for name, v in (("fmap_h", fmap_h), ("fmap_w", fmap_w)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive int, got {v!r}")
    if len(sizes) == 0 or len(ratios) == 0:
        raise ValueError(
            f"need at least one size and one ratio, got sizes={list(sizes)}, "
            f"ratios={list(ratios)}"
        )
    # NaN fails "> 0"
    if not all(math.isfinite(float(v)) and float(v) > 0 for v in (*sizes, *ratios)):
        raise ValueError(
            f"sizes and ratios must be positive and finite, got sizes={list(sizes)}, "
            f"ratios={list(ratios)}"
        )
    # the k = n + m - 1 (size, ratio) pairs of a cell
    s = torch.tensor([*sizes, *[sizes[0]] * (len(ratios) - 1)], dtype=torch.float32)
    r = torch.tensor([*[ratios[0]] * len(sizes), *ratios[1:]], dtype=torch.float32)
    w = s * r.sqrt() * fmap_h / fmap_w  # normalised widths [k]
    h = s / r.sqrt()  # normalised heights [k]
    cy = (torch.arange(fmap_h, dtype=torch.float32) + 0.5) / fmap_h
    cx = (torch.arange(fmap_w, dtype=torch.float32) + 0.5) / fmap_w
    cy, cx = torch.meshgrid(cy, cx, indexing="ij")  # [fmap_h, fmap_w]
    centres = torch.stack((cx, cy, cx, cy), dim=-1).reshape(-1, 1, 4)  # [H*W, 1, 4]
    half = torch.stack((-w, -h, w, h), dim=-1) / 2  # [k, 4]
    return (centres + half).reshape(-1, 4)


def _greedy_match(iou: Tensor, valid: Tensor) -> Tensor:
    """The seeds' greedy assignment, batched: ``iou [B, G, A]`` (box-major), ``valid [B, G]`` -> ``[B, A]``.

    The greedy algorithm takes the largest remaining x_ij, gives box j to anchor i and
    discards anchor i and box j. An entry that is the largest for its anchor AND for its box
    (ties towards the smaller index, as ``argmax`` and the seeds' flat argmax do) is one the
    greedy algorithm will take: only larger entries are taken before it, and they involve
    other anchors and boxes. So each round takes all such "mutual maxima" at once, for every
    image: a few rounds (never more than G), each on the boxes still free, give exactly the
    greedy result. Entries of 0 are never taken: a box that overlaps no free anchor stays free
    (the seeds' loop would give it an arbitrary anchor, the first free one).
    """
    B, G, A = iou.shape
    match = torch.full((B, A), -1, dtype=torch.long, device=iou.device)
    free = valid.clone()  # [B, G] boxes without an anchor yet
    # anchors given a box
    taken = torch.zeros(B, A, dtype=torch.bool, device=iou.device)
    boxes = torch.arange(G, device=iou.device)
    for _ in range(min(G, A)):
        b, g = free.nonzero(as_tuple=True)  # [F] the free boxes of all images
        if len(b) == 0:
            break
        x = iou[b, g]  # [F, A] their IoU with the free anchors
        if bool(taken.any()):
            x = x.masked_fill_(taken[b], -1.0)
        best_a = x.argmax(dim=1)  # [F] best free anchor of each free box
        best_v = x.gather(1, best_a[:, None])[:, 0]
        # [F, G] that anchor vs free boxes
        col = iou[b[:, None], boxes, best_a[:, None]].masked_fill(~free[b], -1.0)
        # mutual maxima, with some overlap
        take = (col.argmax(dim=1) == g) & (best_v > 0)
        if not bool(take.any()):
            break
        b, g, a = b[take], g[take], best_a[take]
        match[b, a] = g
        free[b, g] = False
        taken[b, a] = True
    return match


def _match(iou: Tensor, valid: Tensor, iou_threshold: float) -> Tensor:
    """Greedy matching, then every still unmatched anchor whose best IoU >= threshold gets that box.
    ``iou [B, G, A]``, ``valid [B, G]`` -> ``[B, A]``."""
    match = _greedy_match(iou, valid)
    # no boxes, or no anchors: all background
    if iou.shape[1] == 0 or iou.shape[2] == 0:
        return match
    if not bool(valid.all()):
        iou = iou.masked_fill(~valid[..., None], -1.0)
    best_iou, best_j = iou.max(dim=1)  # [B, A]
    return torch.where((match < 0) & (best_iou >= iou_threshold), best_j, match)


def match_anchors(iou: Tensor, iou_threshold: float = 0.5) -> Tensor:
    """Assign ground-truth boxes to anchors from their IoU matrix.

    First the greedy step (largest x_ij: box j to anchor i; discard row i and column j;
    repeat), so every box gets its best anchor even when that IoU is low (but not 0: a box
    that overlaps no free anchor gets none, where d2l would hand it an arbitrary one); then
    each remaining anchor takes its best box if their IoU is at least ``iou_threshold``.

    Args:
        iou (Tensor[A, G]): IoU of each anchor with each ground-truth box.
        iou_threshold: the IoU from which an anchor counts as a positive.

    Returns:
        Tensor[A] (int64): the box index of each anchor, -1 for background.
    """
    if not isinstance(iou, Tensor) or iou.ndim != 2:
        got = f"shape {tuple(iou.shape)}" if isinstance(iou, Tensor) else type(iou).__name__
        raise ValueError(f"iou must be a Tensor[A, G] (anchors x boxes), got {got}")
    if bool(iou.isnan().any()):
        raise ValueError("iou contains NaN: check the boxes it was computed from")
    valid = torch.ones(1, iou.shape[1], dtype=torch.bool, device=iou.device)
    return _match(iou.T[None].float(), valid, iou_threshold)[0]


def encode_offsets(
    anchors: Tensor, boxes: Tensor, variances: tuple[float, float] = (0.1, 0.2)
) -> Tensor:
    """Offsets that move each anchor onto its box, as SSD regresses them.

    ``((x_b - x_a) / w_a / v0, (y_b - y_a) / h_a / v0, log(w_b / w_a) / v1, log(h_b / h_a) / v1)``
    with centres (x, y) and sizes (w, h); the variances ``v0 = 0.1, v1 = 0.2`` scale the
    offsets to roughly unit spread (d2l writes them as ``10 *`` and ``5 *``).

    Args:
        anchors (Tensor[..., 4]): xyxy, positive sizes.
        boxes (Tensor[..., 4]): xyxy, positive sizes, same shape as ``anchors`` (or broadcastable).
        variances: ``(v0, v1)``.

    Returns:
        Tensor[..., 4]: the offsets.

    Raises:
        ValueError: a box or anchor of zero width or height (its log-size offset is -inf).
    """
    a = box_convert(anchors, "xyxy", "cxcywh")
    b = box_convert(boxes, "xyxy", "cxcywh")
    for name, original, x in (("anchors", anchors, a), ("boxes", boxes, b)):
        bad = ~((x[..., 2] > 0) & (x[..., 3] > 0))  # NaN is bad too
        if bool(bad.any()):
            i = tuple(bad.nonzero()[0].tolist())
            raise ValueError(
                f"{name} must have positive width and height (log-size offsets), got "
                "box "
                f"{i[0] if len(i) == 1 else i}: {_fmt(original[i])}"
            )
    xy = (b[..., :2] - a[..., :2]) / a[..., 2:] / variances[0]
    wh = torch.log(b[..., 2:] / a[..., 2:]) / variances[1]
    return torch.cat((xy, wh), dim=-1)


def _fmt(box: Tensor) -> str:
    return "[" + ", ".join(f"{v:.6g}" for v in box.tolist()) + "]"


def decode_offsets(
    anchors: Tensor, offsets: Tensor, variances: tuple[float, float] = (0.1, 0.2)
) -> Tensor:
    """Boxes from anchors and predicted offsets: the inverse of :func:`encode_offsets`.

    Args:
        anchors (Tensor[A, 4]): xyxy.
        offsets (Tensor[..., A, 4]): e.g. ``[B, A, 4]`` for a batch of predictions.
        variances: as in :func:`encode_offsets`.

    Returns:
        Tensor[..., A, 4]: xyxy boxes (always x1 <= x2, y1 <= y2).
    """
    if offsets.shape[-1] != 4 or offsets.shape[-2:] != anchors.shape[-2:]:
        raise ValueError(
            f"offsets must be [..., A, 4] for anchors {tuple(anchors.shape)}, got "
            f"{tuple(offsets.shape)}"
        )
    a = box_convert(anchors, "xyxy", "cxcywh")
    xy = offsets[..., :2] * variances[0] * a[..., 2:] + a[..., :2]
    wh = torch.exp(offsets[..., 2:] * variances[1]) * a[..., 2:]
    return box_convert(torch.cat((xy, wh), dim=-1), "cxcywh", "xyxy")


def _check_targets(anchors: Tensor, gt_boxes: Tensor, gt_labels: Tensor) -> Tensor:
    """Checks :func:`label_anchors`' inputs; returns ``valid`` Tensor[B, G], the real boxes."""
    check_boxes(anchors)
    if not isinstance(gt_boxes, Tensor) or not isinstance(gt_labels, Tensor):
        raise TypeError(f"gt_boxes and gt_labels must be tensors, got {type(gt_boxes).__name__} "
                        f"and {type(gt_labels).__name__}")
    if gt_labels.is_floating_point() or gt_labels.is_complex() or gt_labels.dtype == torch.bool:
        raise TypeError(f"gt_labels must be an integer tensor (classes, -1 for padding), got {gt_labels.dtype}")
    if gt_boxes.ndim != 3 or gt_boxes.shape[-1] != 4 or gt_labels.shape != gt_boxes.shape[:2]:
        raise ValueError(f"gt_boxes must be [B, G, 4] and gt_labels [B, G], got {tuple(gt_boxes.shape)} "
                         f"and {tuple(gt_labels.shape)}")
    valid = gt_labels >= 0
    check_boxes(gt_boxes[valid])
    bad = valid & ~((gt_boxes[..., 2] > gt_boxes[..., 0]) & (gt_boxes[..., 3] > gt_boxes[..., 1]))
    if bool(bad.any()):
        b, g = bad.nonzero()[0].tolist()
        raise ValueError("gt_boxes must have positive width and height (the log-size offset of a zero-size "
                         f"box is -inf; drop it, or label it -1), got image {b}, box {g}: {_fmt(gt_boxes[b, g])}")
    return valid


def label_anchors(
    anchors: Tensor, gt_boxes: Tensor, gt_labels: Tensor, iou_threshold: float = 0.5,
    variances: tuple[float, float] = (0.1, 0.2),
) -> tuple[Tensor, Tensor, Tensor]:
    """Training targets for every anchor of every image in a batch.

    Each anchor is matched (:func:`match_anchors`) to a ground-truth box of its image; a
    matched anchor gets the box's class + 1 and the offsets to it, an unmatched one class 0
    (background), zero offsets and a zero mask. Images may have different numbers of boxes:
    pad ``gt_labels`` with -1 (padding boxes are ignored, whatever their coordinates). A box
    that overlaps no anchor at all (IoU 0 with each) gets no anchor and is absent from the
    targets: no anchor could regress it (d2l's ``multibox_target`` gives it an arbitrary one).

    Args:
        anchors (Tensor[A, 4]): xyxy, normalised.
        gt_boxes (Tensor[B, G, 4]): xyxy, normalised, x1 < x2, y1 < y2 (except padding rows).
        gt_labels (Tensor[B, G]): integer classes 0..C-1, -1 for padding.
        iou_threshold: as in :func:`match_anchors`.
        variances: as in :func:`encode_offsets`.

    Returns:
        ``(labels, offsets, mask)`` (the order of every anchor-target function in d2lcv):
        labels Tensor[B, A] int64 (0 = background, k + 1 for class k), offsets
        Tensor[B, A, 4] (0 for background), mask Tensor[B, A, 4] float (1 for matched
        anchors). d2l's ``multibox_target`` returns the same values in the order
        ``(offsets, mask, labels)``, flattened to ``[B, A * 4]``, for batches without padding.

    Raises:
        TypeError: non-tensor input, or ``gt_labels`` not of an integer dtype.
        ValueError: bad shapes, or a (non-padding) box of zero width or height: its offsets
            would be infinite (d2l adds an epsilon instead; here such boxes must be dropped first).
    """
    valid = _check_targets(anchors, gt_boxes, gt_labels)  # [B, G]: not padding
    B, A = gt_labels.shape[0], anchors.shape[0]
    gt_boxes = gt_boxes.to(anchors.dtype)
    inter, union = box_inter_union(gt_boxes[:, :, None, :], anchors[None, None, :, :])
    iou = inter.div_(union).nan_to_num_(0.0)  # [B, G, A]; 0 / 0 (zero-area boxes) -> 0
    match = _match(iou, valid, iou_threshold)  # [B, A]
    b, a = (match >= 0).nonzero(as_tuple=True)  # the positives: offsets only for them
    g = match[b, a]
    offsets = torch.zeros(B, A, 4, dtype=anchors.dtype, device=anchors.device)
    offsets[b, a] = encode_offsets(anchors[a], gt_boxes[b, g], variances)
    mask = torch.zeros_like(offsets)
    mask[b, a] = 1.0
    labels = torch.zeros(B, A, dtype=torch.long, device=anchors.device)
    labels[b, a] = gt_labels[b, g].long() + 1  # any integer dtype
    return labels, offsets, mask
