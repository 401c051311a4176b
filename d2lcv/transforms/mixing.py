"""Label-mixing batch augmentations (mixup, CutMix, RICAP) and the loss for their soft labels.

Each augmentation takes a batch ``(x, y)`` *after* the DataLoader and returns ``(x_mixed,
y_soft)``: images built from several images of the batch, and labels that are the same
mixture of their one-hot labels. The functional core samples through an explicit
``torch.Generator``; the thin modules (:class:`MixUp`, :class:`CutMix`, :class:`RICAP`,
:class:`MixUpOrCutMix`) make them batch transforms::

    mix = MixUpOrCutMix(num_classes=10)
    for x, y in loader:
        x, y = mix(x, y)                       # y: float [B, 10], rows sum to 1
        loss = soft_target_cross_entropy(model(x), y)     # d2lcv.losses

:func:`d2lcv.engine.fit` accepts the soft targets as they are, and ``F.cross_entropy`` takes
probability targets too; :func:`d2lcv.losses.soft_target_cross_entropy` is the same loss
written out. The batch-transform modules are in :mod:`d2lcv.transforms.mixing_modules`.

Labels ``y`` are class indices (int64 ``[B]``, with ``num_classes``) or already soft labels
(float ``[B, K]``, e.g. from a previous mix), so augmentations compose.

Sampling follows the papers' reference code: one mixing coefficient (or box, or boundary
point) per batch and a random permutation of the batch as the partner of each image (a
fixed point of the permutation mixes an image with itself, which leaves it unchanged).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["mixup", "cutmix", "ricap", "cutmix_box"]

Box = tuple[int, int, int, int]


def _check_batch(x: Tensor, y: Tensor, num_classes: int | None, *, need_float: bool) -> None:
    if not isinstance(x, Tensor) or x.ndim != 4:
        got = f"shape {tuple(x.shape)}" if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"x must be a batch Tensor[B, C, H, W], got {got}")
    if need_float and not x.is_floating_point():
        raise TypeError(
            f"x must be floating point to be mixed, got {x.dtype}; "
            "convert first, e.g. with v2.ToDtype(torch.float32, scale=True)"
        )
    if x.shape[0] < 2:
        raise ValueError(f"need a batch of at least 2 images to mix, got a batch of {x.shape[0]}")
    if not isinstance(y, Tensor) or y.ndim not in (1, 2) or y.shape[0] != x.shape[0]:
        got = f"shape {tuple(y.shape)}" if isinstance(y, Tensor) else type(y).__name__
        raise ValueError(f"y must be Tensor[B] class indices or Tensor[B, K] soft labels with B={x.shape[0]}, got {got}")
    if num_classes is not None and (isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1):
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")


def _soft_labels(y: Tensor, num_classes: int | None) -> Tensor:
    """Class indices ``[B]`` (int64) or soft labels ``[B, K]`` -> float soft labels ``[B, K]``."""
    if y.ndim == 2:
        if not y.is_floating_point():
            raise TypeError(f"soft labels y [B, K] must be floating point, got {y.dtype}")
        if num_classes is not None and y.shape[1] != num_classes:
            raise ValueError(f"soft labels have {y.shape[1]} classes but num_classes={num_classes}")
        return y
    if y.dtype != torch.int64:
        raise TypeError(f"class indices y [B] must be int64, got {y.dtype}")
    if num_classes is None:
        raise ValueError("num_classes is required when y holds class indices [B]")
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        raise ValueError(f"labels must be in [0, {num_classes}), got values in [{int(y.min())}, {int(y.max())}]")
    return F.one_hot(y, num_classes).float()


def _check_positive(name: str, value: float) -> None:
    if not value > 0:  # also catches NaN
        raise ValueError(f"{name} must be > 0, got {value!r}")


def _beta(a: float, b: float, generator: torch.Generator | None) -> float:
    """One draw from Beta(a, b), seeded by ``generator`` (or torch's global RNG).

    ``torch.distributions`` takes no generator, so a seed drawn from the torch generator
    drives NumPy's Beta sampler.
    """
    seed = int(torch.randint(0, 2**63 - 1, (), generator=generator))
    return float(np.random.default_rng(seed).beta(a, b))


def _randperm(n: int, generator: torch.Generator | None) -> Tensor:
    return torch.randperm(n, generator=generator)


def _randint(high: int, generator: torch.Generator | None) -> int:
    """A uniform integer in ``[0, high)``."""
    return int(torch.randint(0, high, (), generator=generator))


def _check_index(index: Tensor, batch: int) -> Tensor:
    if index.shape != (batch,) or index.dtype != torch.int64:
        raise ValueError(f"index must be Tensor[{batch}] (int64), got {tuple(index.shape)} {index.dtype}")
    if int(index.min()) < 0 or int(index.max()) >= batch:
        raise ValueError(f"index values must be in [0, {batch}), got [{int(index.min())}, {int(index.max())}]")
    return index


def mixup(
    x: Tensor,
    y: Tensor,
    *,
    alpha: float = 1.0,
    num_classes: int | None = None,
    generator: torch.Generator | None = None,
    lam: float | None = None,
    index: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """mixup: a convex combination of each image and label with a partner's.

    ``x_mixed[i] = lam * x[i] + (1 - lam) * x[index[i]]``, the same for the one-hot labels,
    with ``lam ~ Beta(alpha, alpha)`` once per batch and ``index`` a random permutation.

    Args:
        x (Tensor[B, C, H, W]): floating point images (uint8 raises: a blend of two uint8
            images would have to be rounded and would no longer match its label), B >= 2.
        y (Tensor[B] int64 or Tensor[B, K] float): class indices or soft labels.
        alpha: Beta parameter, > 0; small alpha keeps lam near 0 or 1 (the paper uses 0.2
            to 0.4 on ImageNet, 1.0 on CIFAR-10).
        num_classes: K; required for class indices, checked against soft labels.
        generator: source of randomness (torch's global RNG if None).
        lam: use this mixing coefficient in [0, 1] instead of sampling one.
        index (Tensor[B] int64): use this pairing instead of a random permutation.

    Returns:
        ``(x_mixed, y_soft)``: Tensor[B, C, H, W] (dtype of x) and Tensor[B, K] (float32
        for class indices, else the dtype of y), rows summing to 1 (for rows of y that did).

    Reference: Zhang et al., mixup: Beyond Empirical Risk Minimization, ICLR 2018.
    """
    _check_batch(x, y, num_classes, need_float=True)
    _check_positive("alpha", alpha)
    y_soft = _soft_labels(y, num_classes)
    B = x.shape[0]
    if lam is None:
        lam = _beta(alpha, alpha, generator)
    elif not 0.0 <= lam <= 1.0:
        raise ValueError(f"lam must be in [0, 1], got {lam!r}")
    index = _randperm(B, generator) if index is None else _check_index(index, B)
    x_mixed = lam * x + (1.0 - lam) * x[index]  # [B, C, H, W]
    y_mixed = lam * y_soft + (1.0 - lam) * y_soft[index]  # [B, K]
    return x_mixed, y_mixed


def cutmix_box(lam: float, height: int, width: int, *, generator: torch.Generator | None = None) -> Box:
    """The CutMix box for a mixing coefficient ``lam``, as in the paper's reference code.

    The box has side ``int(side * sqrt(1 - lam))``, so area fraction about ``1 - lam``, and a
    centre uniform over the pixels; it is clipped to the image, so it may be smaller.

    Returns:
        ``(x1, y1, x2, y2)``: pixel bounds, ``0 <= x1 <= x2 <= width`` (exclusive end), same for y.
    """
    cut = (1.0 - lam) ** 0.5
    cut_h, cut_w = int(height * cut), int(width * cut)
    cy, cx = _randint(height, generator), _randint(width, generator)
    y1, y2 = max(cy - cut_h // 2, 0), min(cy + cut_h // 2, height)
    x1, x2 = max(cx - cut_w // 2, 0), min(cx + cut_w // 2, width)
    return x1, y1, x2, y2


def cutmix(
    x: Tensor,
    y: Tensor,
    *,
    alpha: float = 1.0,
    num_classes: int | None = None,
    generator: torch.Generator | None = None,
    box: Box | None = None,
    index: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """CutMix: paste a box cut from each image's partner onto it.

    With ``lam ~ Beta(alpha, alpha)`` the box (:func:`cutmix_box`) covers about ``1 - lam``
    of the image; after clipping at the borders its *actual* area fraction ``a`` gives the
    label: ``y_soft[i] = (1 - a) * y[i] + a * y[index[i]]``.

    Args:
        x (Tensor[B, C, H, W]): images of any dtype (pixels are only copied, so uint8 works), B >= 2.
        y (Tensor[B] int64 or Tensor[B, K] float): class indices or soft labels.
        alpha: Beta parameter, > 0 (the paper uses 1.0).
        num_classes: K; required for class indices, checked against soft labels.
        generator: source of randomness (torch's global RNG if None).
        box: use this ``(x1, y1, x2, y2)`` box (pixels, end exclusive) instead of sampling one.
        index (Tensor[B] int64): use this pairing instead of a random permutation.

    Returns:
        ``(x_mixed, y_soft)``: Tensor[B, C, H, W] (dtype of x) and Tensor[B, K] (float).

    Reference: Yun et al., CutMix: Regularization Strategy to Train Strong Classifiers with
    Localizable Features, ICCV 2019.
    """
    _check_batch(x, y, num_classes, need_float=False)
    _check_positive("alpha", alpha)
    y_soft = _soft_labels(y, num_classes)
    B, _, H, W = x.shape
    if box is None:
        box = cutmix_box(_beta(alpha, alpha, generator), H, W, generator=generator)
    x1, y1, x2, y2 = box
    if not (0 <= x1 <= x2 <= W and 0 <= y1 <= y2 <= H):
        raise ValueError(
            f"box must satisfy 0 <= x1 <= x2 <= {W} and 0 <= y1 <= y2 <= {H}, got {box}"
        )
    index = _randperm(B, generator) if index is None else _check_index(index, B)
    x_mixed = x.clone()
    x_mixed[:, :, y1:y2, x1:x2] = x[index, :, y1:y2, x1:x2]
    area = (x2 - x1) * (y2 - y1) / (H * W)  # the pasted fraction, after clipping
    y_mixed = (1.0 - area) * y_soft + area * y_soft[index]  # [B, K]
    return x_mixed, y_mixed


def ricap(
    x: Tensor,
    y: Tensor,
    *,
    beta: float = 0.3,
    num_classes: int | None = None,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """RICAP: four random crops from four images, patched into one.

    A boundary point ``(w, h) = (round(W * Beta(beta, beta)), round(H * Beta(beta, beta)))``
    splits the canvas into four regions::

        +---- w ----+-- W - w --+
        |  patch 0  |  patch 1  |  h
        +-----------+-----------+
        |  patch 2  |  patch 3  |  H - h
        +-----------+-----------+

    Patch k is a crop of that region's size from image ``perm_k[i]`` (``perm_k`` a random
    permutation of the batch), at a random position (one per patch, shared by the batch, as in
    the reference code). The label is the area-weighted sum of the four one-hot labels.

    Args:
        x (Tensor[B, C, H, W]): images of any dtype (pixels are only copied), B >= 2.
        y (Tensor[B] int64 or Tensor[B, K] float): class indices or soft labels.
        beta: Beta parameter, > 0 (the paper uses 0.3).
        num_classes: K; required for class indices, checked against soft labels.
        generator: source of randomness (torch's global RNG if None).

    Returns:
        ``(x_mixed, y_soft)``: Tensor[B, C, H, W] (dtype of x) and Tensor[B, K] (float).

    Reference: Takahashi et al., RICAP: Random Image Cropping and Patching Data Augmentation
    for Deep CNNs, ACML 2018.
    """
    _check_batch(x, y, num_classes, need_float=False)
    _check_positive("beta", beta)
    y_soft = _soft_labels(y, num_classes)
    B, _, H, W = x.shape
    w = round(W * _beta(beta, beta, generator))
    h = round(H * _beta(beta, beta, generator))
    x_mixed = torch.empty_like(x)
    y_mixed = torch.zeros_like(y_soft)
    regions = [(0, 0, w, h), (w, 0, W, h), (0, h, w, H), (w, h, W, H)]  # (x1, y1, x2, y2) on the canvas
    for x1, y1, x2, y2 in regions:
        pw, ph = x2 - x1, y2 - y1
        index = _randperm(B, generator)
        cx, cy = _randint(W - pw + 1, generator), _randint(H - ph + 1, generator)  # crop origin in the source
        x_mixed[:, :, y1:y2, x1:x2] = x[index, :, cy : cy + ph, cx : cx + pw]
        y_mixed += (pw * ph / (H * W)) * y_soft[index]  # [B, K]
    return x_mixed, y_mixed
