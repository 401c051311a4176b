"""The fine-tuning chapters' source model: torchvision's ImageNet ResNet-18 where its weights
can be had, otherwise a small ResNet the book pretrains itself (and caches) on eight
CIFAR-10 classes."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import socket
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torchvision
from torch.optim.lr_scheduler import OneCycleLR
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from d2lcv.data.cifar10 import cifar_subset
from d2lcv.engine import History, fit
from d2lcv.utils.io import save_atomic
from d2lcv.utils.seeding import seeded

__all__ = [
    "SOURCE_CLASSES",
    "TARGET_CLASSES",
    "SourceConfig",
    "Source",
    "source_cache_path",
    "pretrain_source",
    "load_source",
]

# The book's offline source task: the six CIFAR-10 classes that are not target classes, so that
# what fine-tuning gains comes from features, not from classes the source has already seen
# (the reuse section pretrains its own sources that share classes with the target).
SOURCE_CLASSES = ("airplane", "automobile", "bird", "frog", "ship", "truck")


TARGET_CLASSES = ("cat", "dog", "deer", "horse")


@dataclass(frozen=True)
class SourceConfig:
    """How the book's own source model is pretrained (when no ImageNet weights can be had).

    A :func:`d2lcv.models.resnet_cifar` of the given ``width`` and ``blocks``, trained from
    scratch on ``n_per_class`` CIFAR-10 training images of each of ``classes`` for ``epochs``
    epochs: SGD with momentum 0.9, weight decay 5e-4, a one-cycle schedule peaking at
    ``lr``; with ``augment``, random flips and 4-pixel shifts (a few epochs over thousands
    of images do not overfit, and augmenting costs as much CPU time as training this
    small network).
    """

    classes: tuple[str, ...] = SOURCE_CLASSES
    n_per_class: int = 3000
    epochs: int = 5
    width: int = 8
    blocks: tuple[int, ...] = (1, 1, 1, 1)
    batch_size: int = 128
    lr: float = 0.1
    augment: bool = False
    seed: int = 0

    def key(self) -> str:
        """A hash of every setting (10 hex digits): part of the cache file's name."""
        text = json.dumps(dataclasses.asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:10]

    def describe(self) -> str:
        return (f"d2lcv resnet_cifar(width={self.width}, blocks={self.blocks}) pretrained by the book on "
                f"{len(self.classes)} CIFAR-10 classes ({', '.join(self.classes)}), {self.n_per_class} images "
                f"each, {self.epochs} epochs")


@dataclass
class Source:
    """A source model and what a target pipeline needs to know about it.

    Attributes:
        model: the network, with its source classifier.
        description: which weights these are, to print next to every result.
        classes: the source classifier's class names, row by row.
        mean, std: the input normalisation the model was trained with.
        image_size: the input side length the model expects (32 for the book's source).
        new_model: ``num_classes -> nn.Module``, the same architecture freshly initialised
            (the from-scratch baseline).
        history: the pretraining :class:`d2lcv.engine.History` (None for downloaded weights).
        cache: the file the weights were loaded from or saved to (None for torchvision's).
    """

    model: nn.Module
    description: str
    classes: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    image_size: int
    new_model: Callable[[int], nn.Module]
    history: History | None = None
    cache: Path | None = field(default=None)


def source_cache_path(config: SourceConfig, profile: str) -> Path:
    """``<cache>/finetune/source-<profile>-<config hash>.pt`` (see :func:`d2lcv.data.cache_dir`)."""
    from d2lcv.data import cache_dir

    return cache_dir() / "finetune" / f"source-{profile}-{config.key()}.pt"


def _new_source(config: SourceConfig, path: Path) -> Source:
    from d2lcv import models, transforms

    def new_model(num_classes: int) -> nn.Module:
        return models.resnet_cifar(num_classes, width=config.width, blocks_per_stage=config.blocks)

    return Source(new_model(len(config.classes)), config.describe(), tuple(config.classes),
                  transforms.CIFAR10_MEAN, transforms.CIFAR10_STD, 32, new_model, cache=path)


def _load_state(source: Source, path: Path) -> Source:
    state = torch.load(path, map_location="cpu", weights_only=True)
    source.model.load_state_dict(state["model"])
    source.history = History.from_state_dict(state["history"])
    return source


def _source_loader(config: SourceConfig, workers: int) -> DataLoader:
    from d2lcv import transforms
    from d2lcv.data.tensors import AugmentedImages

    x, y = cifar_subset("train", config.classes, config.n_per_class, seed=config.seed)
    if config.augment:
        dataset = AugmentedImages(x, y, transforms.cifar_pipeline("flip_crop"))
    else:  # normalised once, batched in the main process
        dataset, workers = TensorDataset(transforms.cifar_pipeline("none")(x), y), 0
    return DataLoader(dataset, batch_size=config.batch_size, shuffle=True, drop_last=True,
                      num_workers=workers, persistent_workers=workers > 0,
                      generator=torch.Generator().manual_seed(config.seed))


def pretrain_source(
    config: SourceConfig, *, profile: str, device: torch.device | str | None = None,
    workers: int = 0, progress: bool = True,
) -> Source:
    """The book's source model: loaded from the cache, or pretrained and then cached.

    The cache file (:func:`source_cache_path`) is named by the run profile and a hash of
    ``config``, and written atomically, so a changed setting never loads stale weights and
    an interrupted run never leaves a broken file.

    Args:
        config: the source task and its training settings.
        profile: the run profile's name (part of the file name).
        workers: ``DataLoader`` workers for the augmentation (with ``config.augment``).

    Returns:
        A :class:`Source` whose ``history`` is the pretraining's (also when loaded).
    """
    path = source_cache_path(config, profile)
    with seeded(config.seed):  # weights, then image order; the caller's RNG is kept
        source = _new_source(config, path)
        if path.exists():
            return _load_state(source, path)
        loader = _source_loader(config, workers)
        model = source.model
        opt = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=0.9,
                              weight_decay=5e-4)
        steps = config.epochs * len(loader)
        schedule = OneCycleLR(opt, config.lr, total_steps=steps)
        source.history = fit(model, loader, epochs=config.epochs, optimizer=opt,
                             scheduler=schedule, scheduler_interval="batch",
                             device=device, progress=progress)
    model.cpu()
    state = {"model": model.state_dict(), "history": source.history.state_dict(),
             "config": dataclasses.asdict(config)}
    save_atomic(state, path)
    return source


def load_source(
    config: SourceConfig,
    *,
    profile: str,
    imagenet_size: int = 224,
    download: bool | None = None,
    device: torch.device | str | None = None,
    workers: int = 0,
) -> Source:
    """torchvision's ImageNet ResNet-18 if its weights can be had, else the book's source.

    Uses :func:`d2lcv.models.weights.load_pretrained` with :func:`pretrain_source` as its fallback
    (which announces itself with a :class:`~d2lcv.models.weights.PretrainedWeightsWarning`).

    Args:
        config, profile, device, workers: for :func:`pretrain_source`.
        imagenet_size: input side for the ImageNet model (224 as it was trained; smaller
            is faster, at some cost in accuracy).
        download: allow downloading the weights; None means "unless ``$D2LCV_OFFLINE`` is set
            or the download server cannot be reached within 3 seconds".

    Returns:
        A :class:`Source`; its ``description`` says which of the two it is.
    """
    from d2lcv.data import downloads_enabled
    from d2lcv.models import weights

    built: dict[str, Source] = {}

    def book_source(arch: str, kwargs: dict[str, Any]) -> nn.Module:
        built["source"] = pretrain_source(config, profile=profile, device=device, workers=workers)
        return built["source"].model

    w = weights.resolve_weights("resnet18", "DEFAULT")
    if download is None:  # only try to download where the server can be reached (no retries offline)
        download = downloads_enabled() and _reachable(w.url)
    model = weights.load_pretrained("resnet18", w, fallback=book_source, download=download, progress=False)
    if "source" in built:
        return built["source"]
    t = w.transforms()
    return Source(model, model.d2lcv_weights, tuple(w.meta["categories"]), tuple(t.mean), tuple(t.std),
                  imagenet_size, lambda num_classes: torchvision.models.resnet18(num_classes=num_classes))


def _reachable(url: str, timeout: float = 3.0) -> bool:
    """Whether a TCP connection to ``url``'s host can be opened (a quick test for being online)."""
    parts = urllib.parse.urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname, port), timeout=timeout).close()
    except OSError:
        return False
    return True
