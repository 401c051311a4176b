"""Measuring generated samples: mode coverage on a known mixture, and the Fréchet distance.

* :func:`mode_coverage`: for samples of a 2-D (or any) mixture of isotropic Gaussians with
  known centres, how many modes receive samples and what fraction of samples lie within
  ``threshold`` standard deviations of a centre ("high quality"), as in the unrolled-GAN
  and VEEGAN papers (Metz et al., 2017; Srivastava et al., 2017).
* :func:`frechet_distance`: the Fréchet (2-Wasserstein) distance between two Gaussians,
  ``|mu1 - mu2|^2 + tr(C1 + C2 - 2 (C1^1/2 C2 C1^1/2)^1/2)``; on features of a network it
  is the FID of Heusel et al. (2017). :func:`feature_statistics` gives the Gaussian of a set
  of feature vectors, :func:`feature_frechet_distance` the distance between two sets.
* :func:`precision_recall_knn`: the k-nearest-neighbour precision and recall of
  Kynkäänniemi et al. (2019): how much of the generated set lies on the real data's
  manifold, and how much of the real data's manifold the generated set covers.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

__all__ = ["ModeCoverage", "mode_coverage", "sqrtm_psd", "feature_statistics", "frechet_distance",
           "feature_frechet_distance", "precision_recall_knn"]


class ModeCoverage(NamedTuple):
    """What :func:`mode_coverage` returns.

    Attributes:
        modes (int): the number of modes that received at least ``min_count`` high-quality samples.
        high_quality (float): the fraction of samples within ``threshold`` std of their nearest centre.
        counts (Tensor[K]): high-quality samples per mode (int64).
    """

    modes: int
    high_quality: float
    counts: Tensor


def _check_2d(name: str, x: Tensor) -> None:
    if not isinstance(x, Tensor) or x.dim() != 2:
        raise ValueError(f"{name} must be a Tensor[N, D], got {getattr(x, 'shape', type(x).__name__)}")


def _check_mixture(samples: Tensor, centers: Tensor, std: float, threshold: float, min_count: int) -> None:
    _check_2d("samples", samples)
    _check_2d("centers", centers)
    if samples.shape[1] != centers.shape[1] or len(centers) == 0:
        raise ValueError(f"samples {tuple(samples.shape)} and centers {tuple(centers.shape)} need the same "
                         f"dimension and at least one centre")
    if not std > 0 or not threshold > 0 or min_count < 1:
        raise ValueError(f"std and threshold must be > 0 and min_count >= 1, got {std}, {threshold}, {min_count}")


def mode_coverage(
    samples: Tensor, centers: Tensor, std: float, *, threshold: float = 3.0,
    min_count: int = 1,
) -> ModeCoverage:
    """Modes covered and the high-quality fraction of ``samples`` of a Gaussian mixture.

    Each sample is assigned to its nearest centre; it is *high quality* if it lies within
    ``threshold * std`` of it. A mode is *covered* if at least ``min_count`` high-quality
    samples are assigned to it.

    Args:
        samples (Tensor[N, D]): generated points.
        centers (Tensor[K, D]): the mixture's means.
        std: the standard deviation of each (isotropic) component, > 0.

    Returns:
        :class:`ModeCoverage`; for ``N = 0``: 0 modes, a high-quality fraction of 0.
    """
    _check_mixture(samples, centers, std, threshold, min_count)
    if len(samples) == 0:
        return ModeCoverage(0, 0.0, torch.zeros(len(centers), dtype=torch.long))
    dist = torch.cdist(samples.double(), centers.double())  # [N, K]
    nearest, which = dist.min(dim=1)
    good = nearest <= threshold * std
    # high-quality samples per mode
    counts = torch.bincount(which[good], minlength=len(centers))
    covered = int((counts >= min_count).sum())
    return ModeCoverage(covered, good.double().mean().item(), counts)


def sqrtm_psd(a: Tensor) -> Tensor:
    """The symmetric square root of a symmetric positive semi-definite matrix.

    With ``a = V diag(w) V^T`` (``torch.linalg.eigh``), ``sqrt(a) = V diag(sqrt(w)) V^T``;
    eigenvalues below 0 (round-off) are clamped to 0.

    Args:
        a (Tensor[D, D]): symmetric PSD.
    """
    if a.dim() != 2 or a.shape[0] != a.shape[1]:
        raise ValueError(f"a must be a square matrix Tensor[D, D], got {tuple(a.shape)}")
    w, v = torch.linalg.eigh((a + a.T) / 2)
    return (v * w.clamp(min=0).sqrt()) @ v.T


def frechet_distance(mu1: Tensor, cov1: Tensor, mu2: Tensor, cov2: Tensor) -> float:
    """The Fréchet distance between N(mu1, cov1) and N(mu2, cov2), in float64.

    ``d^2 = |mu1 - mu2|^2 + tr(cov1) + tr(cov2) - 2 tr((cov1^1/2 cov2 cov1^1/2)^1/2)``.
    The last trace equals ``tr((cov1 cov2)^1/2)``, the form FID implementations compute with
    ``scipy.linalg.sqrtm``; the symmetric form needs only two eigendecompositions.

    Args:
        mu1, mu2 (Tensor[D]): means. cov1, cov2 (Tensor[D, D]): covariances.

    Returns:
        ``d^2`` (the quantity FID reports), >= 0.
    """
    mu1, mu2, cov1, cov2 = (t.double() for t in (mu1, mu2, cov1, cov2))
    d = mu1.shape[0] if mu1.dim() == 1 else -1
    if mu2.shape != (d,) or cov1.shape != (d, d) or cov2.shape != (d, d):
        shapes = [tuple(t.shape) for t in (mu1, cov1, mu2, cov2)]
        raise ValueError(f"need mu Tensor[D] and cov Tensor[D, D]; got {shapes}")
    s1 = sqrtm_psd(cov1)
    w = torch.linalg.eigvalsh(s1 @ cov2 @ s1)  # the eigenvalues of (cov1 cov2), >= 0
    trace_sqrt = w.clamp(min=0).sqrt().sum()  # tr((cov1^1/2 cov2 cov1^1/2)^1/2)
    value = (mu1 - mu2).square().sum() + cov1.trace() + cov2.trace() - 2 * trace_sqrt
    return max(value.item(), 0.0)


def feature_statistics(features: Tensor) -> tuple[Tensor, Tensor]:
    """The mean Tensor[D] and the (unbiased) covariance Tensor[D, D] of ``features`` Tensor[N, D], float64."""
    _check_2d("features", features)
    if len(features) < 2:
        raise ValueError(f"need at least 2 feature vectors for a covariance, got {len(features)}")
    f = features.double()
    return f.mean(0), torch.cov(f.T).reshape(f.shape[1], f.shape[1])


def feature_frechet_distance(a: Tensor, b: Tensor) -> float:
    """The Fréchet distance between Gaussians fitted to two sets of features.

    Args:
        a (Tensor[N, D]), b (Tensor[M, D]): feature vectors, e.g. a classifier's penultimate
            layer on real and on generated images (with Inception-v3 features: FID).
    """
    return frechet_distance(*feature_statistics(a), *feature_statistics(b))


def _within(points: Tensor, ref: Tensor, k: int) -> Tensor:
    """For each row of ``points``: is it within the k-NN radius of some row of ``ref``?"""
    d_ref = torch.cdist(ref, ref)  # [M, M]; the 0 self-distance is the first neighbour
    radius = d_ref.kthvalue(min(k + 1, len(ref)), dim=1).values  # [M]
    return (torch.cdist(points, ref) <= radius[None]).any(dim=1)


def precision_recall_knn(real: Tensor, fake: Tensor, *, k: int = 3) -> tuple[float, float]:
    """k-NN precision and recall of generated features (Kynkäänniemi et al., 2019).

    Each real feature vector gets a ball reaching its k-th nearest real neighbour; the union
    of the balls estimates the real data's manifold. *Precision* is the fraction of fakes
    inside it (are the samples realistic?); *recall* swaps the roles (is the data's variety
    covered?).

    Args:
        real (Tensor[M, D]), fake (Tensor[N, D]): feature vectors (float64 inside).
        k: the neighbour that sets each ball's radius, >= 1.

    Returns:
        (precision, recall), each in [0, 1]; ``(0.0, 0.0)`` if either set is empty.
    """
    _check_2d("real", real)
    _check_2d("fake", fake)
    if k < 1 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"need k >= 1 and features of one dimension, got k={k}, {tuple(real.shape)}, "
                         f"{tuple(fake.shape)}")
    if len(real) == 0 or len(fake) == 0:
        return 0.0, 0.0
    real, fake = real.double(), fake.double()
    precision = _within(fake, real, k).double().mean().item()
    recall = _within(real, fake, k).double().mean().item()
    return precision, recall
