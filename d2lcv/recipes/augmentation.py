"""The augmentation chapter's training protocol."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.utils.data import DataLoader

from d2lcv.data.tensors import AugmentedImages
from d2lcv.engine import fit
from d2lcv.utils.seeding import seeded

__all__ = ["train_with_pipeline"]


def train_with_pipeline(
    make_model,
    images: Tensor,
    labels: Tensor,
    transform,
    test_loader,
    *,
    epochs: int,
    batch_size: int,
    batch_transform=None,
    workers: int = 0,
    seed: int = 0,
    max_lr: float = 0.1,
    device: torch.device | str | None = None,
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

    with seeded(seed):  # the same initial weights and order for every pipeline; the caller's RNG is left as it was
        loader = DataLoader(AugmentedImages(images, labels, transform), batch_size=batch_size, shuffle=True,
                            num_workers=workers, persistent_workers=workers > 0,
                            generator=torch.Generator().manual_seed(seed))
        if batch_transform is not None:
            loader = MixedBatches(loader, batch_transform)
        model = make_model()
        # OneCycleLR sets the lr
        optimizer = torch.optim.SGD(model.parameters(), lr=max_lr, momentum=0.9, weight_decay=5e-4)
        scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=max_lr, total_steps=epochs * len(loader))
        history = fit(model, loader, test_loader, epochs=epochs, optimizer=optimizer, scheduler=scheduler,
                      scheduler_interval="batch", loss_fn=soft_target_cross_entropy, device=device)
    return model, history
