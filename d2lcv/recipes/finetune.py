"""The fine-tuning chapters' target protocol.

* the source model: :mod:`d2lcv.recipes.finetune_source`.
* :func:`input_transform`, :func:`eval_loader`, :func:`train_loader`, :func:`fit_target`: the target
  task and training protocol (the data: :func:`d2lcv.data.cifar_subset`).

Reference: Howard & Ruder, Universal Language Model Fine-tuning for Text Classification,
ACL 2018 (discriminative learning rates).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset
from torchvision.transforms import v2

from d2lcv.config import try_device
from d2lcv.data.tensors import AugmentedImages
from d2lcv.engine import History, evaluate, fit, param_groups
from d2lcv.utils.seeding import seeded

from .finetune_source import Source

__all__ = ["input_transform", "eval_loader", "train_loader", "fit_target"]


def input_transform(source: Source, *, train: bool) -> v2.Compose:
    """uint8 Tensor[3, 32, 32] -> the normalised float Tensor[3, S, S] that ``source`` expects.

    Training adds a random horizontal flip and a random 4-pixel shift (on the 32x32 image);
    then the image is scaled to [0, 1], resized to ``S = source.image_size`` (if not 32) and
    normalised with the source's mean and std.
    """
    augment = [v2.RandomCrop(32, padding=4), v2.RandomHorizontalFlip()] if train else []
    resize = [v2.Resize(source.image_size, antialias=True)] if source.image_size != 32 else []
    return v2.Compose([*augment, v2.ToImage(), v2.ToDtype(torch.float32, scale=True), *resize,
                       v2.Normalize(source.mean, source.std), v2.ToPureTensor()])


def eval_loader(x: Tensor, y: Tensor, source: Source, *, batch_size: int = 500) -> DataLoader:
    """A loader of test images ``x`` (uint8 Tensor[N, 3, 32, 32]) and labels ``y``,
    transformed once for ``source`` (the test pipeline is deterministic)."""
    return DataLoader(TensorDataset(input_transform(source, train=False)(x), y), batch_size=batch_size)


def train_loader(
    x: Tensor, y: Tensor, source: Source, *, batch_size: int, workers: int = 0, seed: int = 0
) -> DataLoader:
    """A shuffled loader of training images ``x`` (uint8 Tensor[N, 3, 32, 32]) and labels
    ``y``, augmented for ``source`` (:func:`input_transform` with ``train=True``) in
    ``workers`` processes; the order and the augmentation are fixed by ``seed``."""
    dataset = AugmentedImages(x, y, input_transform(source, train=True))
    return DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=workers,
                      persistent_workers=workers > 0, generator=torch.Generator().manual_seed(seed))


def _epoch_zero(model: nn.Module, test_loader: Iterable, device: torch.device | str | None) -> History:
    """A history whose one record (``epoch = 0``) is the test loss and accuracy before training."""
    start = time.perf_counter()
    result = evaluate(model.to(try_device() if device is None else device), test_loader, device=device)
    return History([{"epoch": 0, "val_loss": result["loss"], "val_acc": result["acc"],
                     "time": time.perf_counter() - start}])


def fit_target(
    model: nn.Module, train_loader: Iterable, test_loader: Iterable, *,
    epochs: int, lrs: Mapping[str, float], weight_decay: float = 5e-4,
    eval_first: bool = False, device: torch.device | str | None = None, seed: int = 0,
) -> History:
    """The chapter's fine-tuning protocol: SGD (momentum 0.9) with one learning rate per
    stage (:func:`d2lcv.engine.param_groups`), cosine decay over ``epochs``, test accuracy every epoch.

    Only parameters that require a gradient are optimised, so frozen stages stay as they are.

    Args:
        lrs: ``{stage: lr, "default": lr}``, see :func:`d2lcv.engine.param_groups`.
        eval_first: also evaluate before training and store it as a record with
            ``epoch = 0`` (``val_loss``, ``val_acc`` and ``time`` only).
        seed: the run is seeded with :func:`d2lcv.utils.seeding.seeded` (dropout, shuffling and
            augmentation in the main process); the caller's random state is left as it was.

    Returns:
        The :class:`d2lcv.engine.History` (per epoch ``train_*``, ``val_*``, ``lr``, ``time``).
    """
    with seeded(seed):
        groups = param_groups(model, lrs)
        optimizer = torch.optim.SGD(groups, momentum=0.9, weight_decay=weight_decay)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
        history = _epoch_zero(model, test_loader, device) if eval_first else History()
        return fit(model, train_loader, test_loader, epochs=epochs, optimizer=optimizer,
                   scheduler=scheduler, device=device, progress=False,
                   history=history)  # epochs numbered on from 0
