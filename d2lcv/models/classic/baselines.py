"""Classifiers before CNNs: k nearest neighbours, a linear classifier and an MLP on pixels."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

__all__ = ["KNN", "vote", "linear_classifier", "mlp"]


class KNN:
    """k nearest neighbours: "training" stores the images; a test image gets the most
    common label of its ``k`` nearest training images (ties go to the nearest neighbour).

    Args:
        x (Tensor[N, ...]): training images (any shape, flattened), y (Tensor[N]): labels.
    """

    def __init__(self, x: Tensor, y: Tensor) -> None:
        if len(x) != len(y) or len(x) == 0:
            raise ValueError(f"need as many labels as images (> 0), got {len(x)} images, {len(y)} labels")
        self.x, self.y = x.flatten(1).float(), y

    def distances(self, x: Tensor, p: float = 2.0) -> Tensor:
        """[M, N] distances (``p=1``: L1, ``p=2``: L2) of test images x [M, ...] to the training images."""
        return torch.cdist(x.flatten(1).float(), self.x, p=p)

    def predict(self, x: Tensor, k: int = 1, p: float = 2.0, batch_size: int = 500) -> Tensor:
        """Labels Tensor[M] for test images x [M, ...] by majority vote of ``k`` neighbours."""
        return torch.cat([vote(self.distances(xb, p), self.y, k) for xb in x.split(batch_size)]) \
            if len(x) else self.y.new_empty(0)


def vote(dist: Tensor, y: Tensor, k: int) -> Tensor:
    """Majority label of the ``k`` smallest distances per row of dist [M, N]; ties are
    broken by the nearest neighbour's label. Returns Tensor[M]."""
    if not 1 <= k <= dist.shape[1]:
        raise ValueError(f"k must be in [1, {dist.shape[1]}], got {k}")
    idx = dist.topk(k, dim=1, largest=False).indices  # [M, k], nearest first
    labels = y[idx]
    votes = torch.zeros(len(dist), int(y.max()) + 1)
    votes.scatter_add_(1, labels, torch.ones(labels.shape))
    # tie-break: half a vote more for the nearest
    votes.scatter_add_(1, labels[:, :1], torch.full((len(dist), 1), 0.5))
    return votes.argmax(1)


def linear_classifier(in_features: int = 3 * 32 * 32, num_classes: int = 10) -> nn.Sequential:
    """``f(x) = W x + b`` on the flattened pixels: [B, C, H, W] -> [B, num_classes]."""
    return nn.Sequential(nn.Flatten(), nn.Linear(in_features, num_classes))


def mlp(in_features: int = 3 * 32 * 32, hidden: Sequence[int] = (4096, 4096), num_classes: int = 10,
        dropout: float = 0.0) -> nn.Sequential:
    """Dense layers with ReLUs on the flattened pixels. With the defaults (3072 -> 4096 ->
    4096 -> 10) it has 29,401,088 weights, the number in the Datawhale talk (plus biases)."""
    layers: list[nn.Module] = [nn.Flatten()]
    for h in hidden:
        layers += [nn.Linear(in_features, h), nn.ReLU(inplace=True)] + ([nn.Dropout(dropout)] if dropout else [])
        in_features = h
    return nn.Sequential(*layers, nn.Linear(in_features, num_classes))
