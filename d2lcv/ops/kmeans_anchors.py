"""Anchor shapes from the data: k-means on box widths and heights with distance 1 - IoU
(YOLO v2's dimension clusters).

Only shapes matter: two boxes are compared as if they shared their centre, so their IoU
is ``min(w) min(h) / (w1 h1 + w2 h2 - min(w) min(h))``. With the Euclidean distance
large
boxes would pull the clusters more than small ones; ``1 - IoU`` is scale-free::

    anchors = kmeans_anchors(wh, k=9)             # [9, 2], by increasing area
    anchor_mean_iou(wh, anchors)                  # how well 9 shapes cover the boxes

Reference: Redmon and Farhadi, YOLO9000: Better, Faster, Stronger, CVPR 2017.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["check_wh", "shape_iou", "anchor_mean_iou", "kmeans_anchors"]


def check_wh(wh: Tensor, name: str = "wh") -> None:
    """Raise ``ValueError`` unless ``wh`` is a float Tensor[N, 2] of positive, finite
    sizes."""
    if not isinstance(wh, Tensor) or wh.ndim != 2 or wh.shape[1] != 2:
        got = (
            f"shape {tuple(wh.shape)}" if isinstance(wh, Tensor) else type(wh).__name__
        )
        raise ValueError(f"{name} must be a Tensor[N, 2] of (width, height), got {got}")
    if not wh.is_floating_point():
        raise ValueError(f"{name} must be floating point, got {wh.dtype}")
    bad = ~(torch.isfinite(wh) & (wh > 0)).all(dim=1)
    if bool(bad.any()):
        i = int(bad.nonzero()[0])
        raise ValueError(
            f"{name} must be positive and finite, got row {i}: {wh[i].tolist()}"
        )


def shape_iou(wh1: Tensor, wh2: Tensor) -> Tensor:
    """IoU of every pair of box shapes, the boxes aligned at their centres.

    Args:
        wh1 (Tensor[N, 2]), wh2 (Tensor[K, 2]): widths and heights, positive.

    Returns:
        Tensor[N, K]: ``min(w) min(h) / (w1 h1 + w2 h2 - min(w) min(h))``.
    """
    check_wh(wh1, "wh1")
    check_wh(wh2, "wh2")
    inter = torch.minimum(wh1[:, None], wh2[None]).prod(dim=-1)
    return inter / (wh1.prod(dim=1)[:, None] + wh2.prod(dim=1)[None] - inter)


def anchor_mean_iou(wh: Tensor, anchors: Tensor) -> Tensor:
    """The mean, over boxes, of each box's best shape IoU with the anchors (the "Avg
    IOU" of YOLO v2's Table 1).

    Args:
        wh (Tensor[N, 2]): box sizes; anchors (Tensor[K, 2]): anchor sizes, same units.

    Returns:
        Tensor[] (0-d): in (0, 1]; NaN for N = 0.
    """
    if isinstance(wh, Tensor) and wh.ndim == 2 and len(wh) == 0:
        return torch.tensor(float("nan"))
    return shape_iou(wh, anchors).max(dim=1).values.mean()


def _centroids(wh: Tensor, assign: Tensor, old: Tensor, center: str) -> Tensor:
    """Each cluster's mean (or median) width and height; an empty cluster keeps
    ``old``."""
    new = old.clone()
    for c in assign.unique().tolist():
        members = wh[assign == c]
        new[c] = (
            members.mean(dim=0) if center == "mean" else members.median(dim=0).values
        )
    return new


def kmeans_anchors(
    wh: Tensor,
    k: int,
    *,
    center: str = "mean",
    max_iters: int = 300,
    generator: torch.Generator | None = None,
) -> Tensor:
    """k anchor shapes by k-means with distance ``1 - shape_iou`` (Lloyd's iterations).

    Starts from k boxes drawn by k-means++ (far apart in ``1 - IoU``); then repeats:
    give each box to the centroid it overlaps most (highest :func:`shape_iou`, ties: the
    lower index), move each centroid to the mean (or median) width and height of its
    boxes (an empty cluster stays), until no box changes cluster. At the end each box's
    cluster is its best centroid and each centroid is its boxes' mean (median): a fixed
    point (a local optimum, which depends on the start).

    Args:
        wh (Tensor[N, 2]): widths and heights of the training boxes (any unit),
            positive.
        k: clusters, 1 <= k <= the number of distinct shapes.
        center: ``"mean"`` or ``"median"`` of a cluster's widths and heights.
        max_iters: stop after this many updates even if not converged.
        generator: the random start (e.g. ``torch.Generator().manual_seed(0)``).

    Returns:
        Tensor[k, 2]: the centroids by increasing area, dtype of ``wh``.
    """
    _check_kmeans(wh, k, center)
    centroids = _kmeans_pp(wh, k, generator)
    assign = shape_iou(wh, centroids).argmax(dim=1)
    for _ in range(max_iters):
        centroids = _centroids(wh, assign, centroids, center)
        new = shape_iou(wh, centroids).argmax(dim=1)
        if torch.equal(new, assign):
            break
        assign = new
    return centroids[centroids.prod(dim=1).argsort()]


def _kmeans_pp(wh: Tensor, k: int, generator: torch.Generator | None) -> Tensor:
    """k-means++ seeding with distance ``1 - shape_iou``: each next centroid is a box
    drawn with probability proportional to its squared distance to the nearest chosen
    one."""
    chosen = torch.randint(len(wh), (1,), generator=generator)
    for _ in range(k - 1):
        d = 1 - shape_iou(wh, wh[chosen]).amax(dim=1)
        pick = torch.multinomial(d.double() ** 2 + 1e-30, 1, generator=generator)
        chosen = torch.cat((chosen, pick))
    return wh[chosen].clone()


def _check_kmeans(wh: Tensor, k: int, center: str) -> None:
    check_wh(wh)
    if center not in ("mean", "median"):
        raise ValueError(f"center must be 'mean' or 'median', got {center!r}")
    distinct = len(torch.unique(wh, dim=0)) if len(wh) else 0
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= distinct:
        raise ValueError(
            f"k must be an int from 1 to the {distinct} distinct box shapes, got {k!r}"
        )
