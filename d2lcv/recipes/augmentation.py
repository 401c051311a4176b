"""The augmentation chapter's experiment: data, the training protocol, and a comparison of
pipelines under it (both experiment sections use these)."""

from __future__ import annotations

import time
from typing import Any

import torch
from torch.optim.lr_scheduler import OneCycleLR
from torch import Tensor
from torch.utils.data import DataLoader, TensorDataset

from d2lcv.data.tensors import AugmentedImages
from d2lcv.engine import fit
from d2lcv.utils.seeding import seeded

__all__ = ["train_with_pipeline", "cifar_experiment_data", "compare_pipelines"]


def train_with_pipeline(
    make_model, images: Tensor, labels: Tensor, transform, test_loader, *,
    epochs: int, batch_size: int, batch_transform=None, workers: int = 0, seed: int = 0,
    max_lr: float = 0.1, device: torch.device | str | None = None,
):
    """The augmentation chapter's protocol: train a fresh model under one pipeline.

    Every call runs under :func:`d2lcv.utils.seeding.seeded` ``(seed)``, so the initial
    weights and the order of the training images are the same for every pipeline; only the
    augmentation differs (and the caller's random state is left as it was).
    SGD with momentum and weight decay under a one-cycle learning rate; the loss is
    :func:`d2lcv.losses.soft_target_cross_entropy`, which also takes the soft labels of a
    ``batch_transform`` such as CutMix.

    Args:
        make_model: ``() -> nn.Module``.
        images (Tensor[N, 3, H, W], uint8), labels (Tensor[N], int64): the training set.
        transform: per-image pipeline (e.g. :func:`d2lcv.transforms.cifar_pipeline`).
        test_loader: evaluated after every epoch.
        batch_transform: optional ``(x, y) -> (x, y_soft)`` applied to each batch.
        workers: ``DataLoader`` worker processes running ``transform``.

    Returns:
        ``(model, history)`` as from :func:`d2lcv.engine.fit`.
    """
    from d2lcv.losses import soft_target_cross_entropy
    from d2lcv.transforms.mixing_modules import MixedBatches

    # the same initial weights and order for every pipeline; the caller's RNG is kept
    with seeded(seed):
        dataset = AugmentedImages(images, labels, transform)
        loader = DataLoader(dataset, batch_size=batch_size, shuffle=True,
                            num_workers=workers, persistent_workers=workers > 0,
                            generator=torch.Generator().manual_seed(seed))
        if batch_transform is not None:
            loader = MixedBatches(loader, batch_transform)
        model = make_model()
        optimizer = torch.optim.SGD(model.parameters(), lr=max_lr, momentum=0.9,
                                    weight_decay=5e-4)
        total = epochs * len(loader)  # OneCycleLR sets the lr of every step
        scheduler = OneCycleLR(optimizer, max_lr, total_steps=total)
        history = fit(model, loader, test_loader, epochs=epochs, optimizer=optimizer,
                      scheduler=scheduler, scheduler_interval="batch",
                      loss_fn=soft_target_cross_entropy, device=device)
    return model, history

def cifar_experiment_data(
    n_train: int, n_test: int, *, batch_size: int = 500
) -> tuple[Tensor, Tensor, DataLoader]:
    """The augmentation experiments' data: class-balanced CIFAR-10 subsets (seeds 0 and 1).

    Returns:
        ``(x_train uint8 Tensor[n_train, 3, 32, 32], y_train Tensor[n_train], test_loader)``;
        the test images are normalised once (the test pipeline is deterministic).
    """
    from d2lcv.data.cifar10 import CIFAR10
    from d2lcv.transforms.classification import cifar_pipeline

    x_train, y_train = CIFAR10("train").tensors(n=n_train, generator=torch.Generator().manual_seed(0))
    x_test, y_test = CIFAR10("test").tensors(n=n_test, generator=torch.Generator().manual_seed(1))
    test_set = TensorDataset(cifar_pipeline("none")(x_test), y_test)  # batched, once
    return x_train, y_train, DataLoader(test_set, batch_size=batch_size)


def compare_pipelines(
    make_model, images: Tensor, labels: Tensor, runs: dict, test_loader, **kwargs
) -> dict[str, tuple[Any, Any, float]]:
    """:func:`train_with_pipeline` once per run, under the same protocol and seed.

    Args:
        runs: ``{name: transform}`` or ``{name: (transform, batch_transform)}``.
        **kwargs: for :func:`train_with_pipeline` (``epochs``, ``batch_size``, ...).

    Returns:
        ``{name: (model, history, seconds)}`` in the order of ``runs``.
    """
    results = {}
    for name, run in runs.items():
        transform, batch_transform = run if isinstance(run, tuple) else (run, None)
        start = time.perf_counter()
        model, history = train_with_pipeline(make_model, images, labels, transform, test_loader,
                                             batch_transform=batch_transform, **kwargs)
        results[name] = (model, history, time.perf_counter() - start)
    return results
