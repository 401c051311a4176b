"""Fine-tuning: reuse a network trained on a large *source* task for a small *target* task.

The pieces, each one small function:

* :func:`stage_names`, :func:`freeze`, :func:`unfreeze`, :func:`frozen_stages`,
  :func:`count_trainable`: which parts of a network train. A *stage* is a top-level child
  module that owns parameters (``stem``, ``stage1`` ... ``stage4``, ``fc`` for
  :class:`d2lcv.models.ResNetCIFAR`; ``conv1``, ``bn1``, ``layer1`` ... ``layer4``, ``fc``
  for torchvision's ResNets).
* :func:`get_head`, :func:`replace_head`: a new classifier for the target's classes.
* :func:`param_groups`: discriminative learning rates, one per stage.
* :func:`map_class_rows`, :func:`init_head_from_source`: start the new classifier's rows
  for classes the source already knows from the source classifier's rows.
* :class:`SourceConfig`, :func:`pretrain_source`, :func:`load_source`: the source model:
  torchvision's ImageNet ResNet-18 where its weights can be had, otherwise a small ResNet
  the book pretrains itself (and caches) on eight CIFAR-10 classes, two of which the
  target shares.
* :func:`cifar_subset`, :func:`input_transform`, :func:`eval_loader`, :func:`fit_target`:
  the chapter's target task and training protocol.

References: Yosinski et al., How transferable are features in deep neural networks?,
NeurIPS 2014; Kornblith et al., Do Better ImageNet Models Transfer Better?, CVPR 2019;
Howard & Ruder, Universal Language Model Fine-tuning for Text Classification, ACL 2018.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import socket
import tempfile
import time
import types
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchvision
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset
from torchvision.transforms import v2

__all__ = [
    "stage_names",
    "freeze",
    "unfreeze",
    "frozen_stages",
    "count_trainable",
    "get_head",
    "replace_head",
    "param_groups",
    "map_class_rows",
    "init_head_from_source",
    "SOURCE_CLASSES",
    "TARGET_CLASSES",
    "SourceConfig",
    "Source",
    "source_cache_path",
    "pretrain_source",
    "load_source",
    "cifar_subset",
    "input_transform",
    "eval_loader",
    "fit_target",
]

# The book's offline source task: the eight CIFAR-10 classes other than cat and dog. The target
# task (cat, dog, deer, horse) shares two classes with it, so classifier rows can be reused.
SOURCE_CLASSES = ("airplane", "automobile", "bird", "deer", "frog", "horse", "ship", "truck")
TARGET_CLASSES = ("cat", "dog", "deer", "horse")
_HEAD_NAMES = ("fc", "classifier", "head")
_BN = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


# --- which parts train ----------------------------------------------------------------


def stage_names(model: nn.Module) -> list[str]:
    """The model's stages: its top-level children that own parameters, in order.

    ``["stem", "stage1", "stage2", "stage3", "stage4", "fc"]`` for
    :func:`d2lcv.models.resnet_cifar` (``pool`` has no parameters);
    ``["conv1", "bn1", "layer1", ..., "layer4", "fc"]`` for torchvision's ResNets.
    """
    return [name for name, child in model.named_children() if any(True for _ in child.parameters())]


def _check_stages(model: nn.Module, stages: str | Iterable[str]) -> list[str]:
    names = [stages] if isinstance(stages, str) else list(stages)
    valid = stage_names(model)
    for name in names:
        if name not in valid:
            raise ValueError(f"{type(model).__name__} has no stage {name!r}; its stages are {valid}")
    return names


def _train_as_eval(self: nn.Module, mode: bool = True) -> nn.Module:
    """``train`` for a frozen BatchNorm: whatever is asked, it stays in eval mode."""
    return nn.Module.train(self, False)


def freeze(model: nn.Module, stages: str | Iterable[str]) -> nn.Module:
    """Stop training the given stages: no gradients for their parameters, and their
    BatchNorm layers pinned to eval mode.

    A frozen BatchNorm must stay in eval mode: in training mode it would normalise with the
    statistics of each (small, target) batch instead of the source's running statistics, and
    overwrite those running statistics, so the "frozen" stage would compute a different
    function even though none of its parameters change. ``model.train()`` (which
    :func:`d2lcv.train.fit` calls every epoch) leaves pinned layers in eval mode; the pin is an
    attribute of the module object, so after loading a state dict into a new model, freeze again.

    Args:
        model: any module; ``stages`` name its top-level children (see :func:`stage_names`).
        stages: one stage name or several.

    Returns:
        ``model``, modified in place.

    Raises:
        ValueError: a name that is not a stage; the message lists the valid ones.
    """
    for name in _check_stages(model, stages):
        stage = getattr(model, name)
        stage.requires_grad_(False)
        for m in stage.modules():
            if isinstance(m, _BN):
                m.train = types.MethodType(_train_as_eval, m)  # shadows nn.Module.train
                m.eval()
    return model


def unfreeze(model: nn.Module, stages: str | Iterable[str] | None = None) -> nn.Module:
    """Undo :func:`freeze` for the given stages (None: all of them). The BatchNorm layers
    follow the model's mode again (call ``model.train()`` to switch them)."""
    for name in _check_stages(model, stage_names(model) if stages is None else stages):
        stage = getattr(model, name)
        stage.requires_grad_(True)
        for m in stage.modules():
            if "train" in vars(m):
                del m.train  # back to nn.Module.train
    return model


def frozen_stages(model: nn.Module) -> list[str]:
    """The stages none of whose parameters require a gradient."""
    return [n for n in stage_names(model) if not any(p.requires_grad for p in getattr(model, n).parameters())]


def count_trainable(model: nn.Module) -> int:
    """The number of parameters (scalars) that require a gradient."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# --- the classifier ---------------------------------------------------------------------


def _head_name(model: nn.Module) -> str:
    for name in _HEAD_NAMES:
        head = getattr(model, name, None)
        if isinstance(head, nn.Linear):
            return name
    raise ValueError(
        f"{type(model).__name__} has no linear classifier named one of {_HEAD_NAMES}; "
        f"its children are {[n for n, _ in model.named_children()]}"
    )


def get_head(model: nn.Module) -> nn.Linear:
    """The model's final linear classifier (``fc``, ``classifier`` or ``head``)."""
    return getattr(model, _head_name(model))


def replace_head(model: nn.Module, num_classes: int) -> nn.Linear:
    """Put a new, freshly initialised ``nn.Linear(in_features, num_classes)`` in place of
    the classifier (same attribute, device and dtype).

    Returns:
        The new head; the old one is no longer part of ``model`` (take it with
        :func:`get_head` first to copy rows from it).
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
    name = _head_name(model)
    old = getattr(model, name)
    new = nn.Linear(old.in_features, num_classes, bias=old.bias is not None)
    new = new.to(device=old.weight.device, dtype=old.weight.dtype)
    setattr(model, name, new)
    return new


def param_groups(model: nn.Module, lrs: Mapping[str, float]) -> list[dict[str, Any]]:
    """Optimizer parameter groups with one learning rate per stage (discriminative rates).

    Args:
        model: the model; only parameters that require a gradient are included.
        lrs: ``{stage name: lr}``, plus ``"default"`` for every stage not named, e.g.
            ``{"fc": 10 * lr, "default": lr}`` (a new head learns faster than the pretrained body).

    Returns:
        ``[{"params": [...], "lr": float, "name": str}, ...]`` for ``torch.optim`` optimizers:
        one group per named stage, then the default group; groups without trainable
        parameters are left out.

    Raises:
        ValueError: an unknown stage name, or trainable stages left without a rate.

    Reference: Howard & Ruder, Universal Language Model Fine-tuning for Text
    Classification, ACL 2018 (discriminative fine-tuning).
    """
    named = _check_stages(model, [k for k in lrs if k != "default"])
    groups, rest = [], []
    for name in stage_names(model):
        params = [p for p in getattr(model, name).parameters() if p.requires_grad]
        if name in named:
            groups.append({"params": params, "lr": float(lrs[name]), "name": name})
        elif params:
            rest.append((name, params))
    if rest and "default" not in lrs:
        raise ValueError(f"stages {[n for n, _ in rest]} are trainable but have no rate; add a 'default' to lrs")
    if rest:
        groups.append({"params": [p for _, ps in rest for p in ps], "lr": float(lrs["default"]), "name": "default"})
    return [g for g in groups if g["params"]]


def map_class_rows(
    source_classes: Sequence[str], target_classes: Sequence[str], *, rename: Mapping[str, str] | None = None
) -> dict[int, int]:
    """Which target classes the source classifier already knows, as row indices.

    Args:
        source_classes: the source classifier's class names, row by row.
        target_classes: the new classifier's class names, row by row.
        rename: ``{target name: source name}`` for classes named differently in the two
            (e.g. ``{"hotdog": "hotdog, hot dog, red hot"}``).

    Returns:
        ``{target row: source row}`` for every target class found in the source (after
        ``rename``), in target order; classes the source does not know are left out.

    Raises:
        ValueError: duplicate names, or a ``rename`` entry naming a class that is not a
            target (or not a source) class; the message lists the valid names.
    """
    for what, names in (("source_classes", source_classes), ("target_classes", target_classes)):
        if len(set(names)) != len(names):
            raise ValueError(f"{what} has duplicate names: {sorted({n for n in names if list(names).count(n) > 1})}")
    rename = dict(rename or {})
    for t, s in rename.items():
        if t not in target_classes:
            raise ValueError(f"rename names target class {t!r}, which is not one of {list(target_classes)}")
        if s not in source_classes:
            raise ValueError(f"rename maps {t!r} to {s!r}, which is not a source class; choose one of "
                             f"{list(source_classes)}")
    row = {name: i for i, name in enumerate(source_classes)}
    return {t: row[rename.get(name, name)] for t, name in enumerate(target_classes) if rename.get(name, name) in row}


@torch.no_grad()
def init_head_from_source(new_head: nn.Linear, old_head: nn.Linear, mapping: Mapping[int, int]) -> nn.Linear:
    """Copy the source classifier's rows (weight row and bias) into the new classifier.

    For each ``t -> s`` in ``mapping``: ``new.weight[t] = old.weight[s]`` and
    ``new.bias[t] = old.bias[s]``; the other rows of ``new_head`` are left as they are.

    Args:
        new_head: ``nn.Linear(D, C_target)``, modified in place.
        old_head: ``nn.Linear(D, C_source)``, the source classifier.
        mapping: ``{target row: source row}``, e.g. from :func:`map_class_rows`.

    Returns:
        ``new_head``.
    """
    if new_head.in_features != old_head.in_features:
        raise ValueError(f"the heads read different features: new {new_head.in_features}, "
                         f"old {old_head.in_features}")
    for t, s in mapping.items():
        if not (0 <= t < new_head.out_features and 0 <= s < old_head.out_features):
            raise ValueError(f"row mapping {t} -> {s} is out of range: new head has {new_head.out_features} "
                             f"rows, old head {old_head.out_features}")
    if not mapping:
        return new_head
    t_rows = torch.tensor(list(mapping.keys()))
    s_rows = torch.tensor(list(mapping.values())).to(old_head.weight.device)
    new_head.weight[t_rows.to(new_head.weight.device)] = old_head.weight[s_rows].to(new_head.weight)
    if new_head.bias is not None and old_head.bias is not None:
        new_head.bias[t_rows.to(new_head.bias.device)] = old_head.bias[s_rows].to(new_head.bias)
    return new_head


# --- data ----------------------------------------------------------------------------------


def cifar_subset(
    split: str,
    classes: Sequence[str],
    n_per_class: int | None = None,
    *,
    seed: int = 0,
    from_end: bool = False,
) -> tuple[Tensor, Tensor]:
    """Some CIFAR-10 classes, relabelled ``0 .. len(classes) - 1`` in the order given.

    Per class, the images are put in a random order fixed by ``seed``; the first
    ``n_per_class`` are taken, or the last ones with ``from_end=True``. The same seed thus
    gives disjoint images to a source task (from the start) and a target task (from the end)
    as long as together they ask for at most the class's size (5,000 train, 1,000 test).

    Returns:
        ``(x, y)``: x Tensor[N, 3, 32, 32] (uint8), y Tensor[N] (int64), classes in turn.
    """
    from d2lcv.data import CIFAR10, CIFAR10_CLASSES

    unknown = [c for c in classes if c not in CIFAR10_CLASSES]
    if unknown:
        raise ValueError(f"unknown CIFAR-10 classes {unknown}; choose from {list(CIFAR10_CLASSES)}")
    data = CIFAR10(split)
    targets = np.asarray(data.targets)
    generator = torch.Generator().manual_seed(seed)
    picked = []
    for c in classes:
        pool = np.flatnonzero(targets == CIFAR10_CLASSES.index(c))
        order = pool[torch.randperm(len(pool), generator=generator).numpy()]
        n = len(order) if n_per_class is None else n_per_class
        if not 0 <= n <= len(order):
            raise ValueError(f"n_per_class must be in [0, {len(order)}] for {split} class {c!r}, got {n}")
        picked.append(order[len(order) - n:] if from_end else order[:n])
    idx = np.concatenate(picked)
    x = torch.from_numpy(np.ascontiguousarray(data.data[idx])).permute(0, 3, 1, 2).contiguous()
    y = torch.arange(len(classes)).repeat_interleave(torch.tensor([len(p) for p in picked]))
    return x, y


# --- the source model ---------------------------------------------------------------------


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
        history: the pretraining :class:`d2lcv.train.History` (None for downloaded weights).
        cache: the file the weights were loaded from or saved to (None for torchvision's).
    """

    model: nn.Module
    description: str
    classes: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    image_size: int
    new_model: Callable[[int], nn.Module]
    history: Any = None
    cache: Path | None = field(default=None)


def source_cache_path(config: SourceConfig, profile: str) -> Path:
    """``<cache>/finetune/source-<profile>-<config hash>.pt`` (see :func:`d2lcv.data.cache_dir`)."""
    from d2lcv.data import cache_dir

    return cache_dir() / "finetune" / f"source-{profile}-{config.key()}.pt"


def _save_atomic(obj: Any, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)  # readers see the old file or the whole new one, never a part
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def pretrain_source(
    config: SourceConfig,
    *,
    profile: str,
    device: torch.device | str | None = None,
    workers: int = 0,
    progress: bool = True,
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
    from d2lcv import augment, config as d2lcv_config, models, train

    def new_model(num_classes: int) -> nn.Module:
        return models.resnet_cifar(num_classes, width=config.width, blocks_per_stage=config.blocks)

    path = source_cache_path(config, profile)
    d2lcv_config.seed_everything(config.seed)  # the initial weights, then the order of the images
    model = new_model(len(config.classes))
    source = Source(model, config.describe(), tuple(config.classes), augment.CIFAR10_MEAN, augment.CIFAR10_STD,
                    32, new_model, cache=path)
    if path.exists():
        state = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(state["model"])
        source.history = train.History.from_state_dict(state["history"])
        return source
    x, y = cifar_subset("train", config.classes, config.n_per_class, seed=config.seed)
    if config.augment:
        dataset = augment.AugmentedImages(x, y, augment.cifar_pipeline("flip_crop"))
    else:
        dataset, workers = TensorDataset(augment.cifar_pipeline("none")(x), y), 0  # normalised once, batched
    loader = DataLoader(dataset, batch_size=config.batch_size, shuffle=True, drop_last=True, num_workers=workers,
                        persistent_workers=workers > 0, generator=torch.Generator().manual_seed(config.seed))
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=0.9, weight_decay=5e-4)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, config.lr, total_steps=config.epochs * len(loader))
    source.history = train.fit(model, loader, epochs=config.epochs, optimizer=optimizer, scheduler=scheduler,
                               scheduler_interval="batch", device=device, progress=progress)
    model.cpu()
    _save_atomic({"model": model.state_dict(), "history": source.history.state_dict(),
                  "config": dataclasses.asdict(config)}, path)
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

    Uses :func:`d2lcv.weights.load_pretrained` with :func:`pretrain_source` as its fallback
    (which announces itself with a :class:`~d2lcv.weights.PretrainedWeightsWarning`).

    Args:
        config, profile, device, workers: for :func:`pretrain_source`.
        imagenet_size: input side for the ImageNet model (224 as it was trained; smaller
            is faster, at some cost in accuracy).
        download: allow downloading the weights; None means "unless ``$D2LCV_OFFLINE`` is set
            or the download server cannot be reached within 3 seconds".

    Returns:
        A :class:`Source`; its ``description`` says which of the two it is.
    """
    from d2lcv import weights
    from d2lcv.data import downloads_enabled

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


# --- the target protocol ------------------------------------------------------------------


def fit_target(
    model: nn.Module,
    train_loader: Iterable,
    test_loader: Iterable,
    *,
    epochs: int,
    lrs: Mapping[str, float],
    weight_decay: float = 5e-4,
    eval_first: bool = False,
    device: torch.device | str | None = None,
    seed: int = 0,
) -> Any:
    """The chapter's fine-tuning protocol: SGD (momentum 0.9) with one learning rate per
    stage (:func:`param_groups`), cosine decay over ``epochs``, test accuracy every epoch.

    Only parameters that require a gradient are optimised, so frozen stages stay as they are.

    Args:
        lrs: ``{stage: lr, "default": lr}``, see :func:`param_groups`.
        eval_first: also evaluate before training and store it as a record with
            ``epoch = 0`` (``val_loss``, ``val_acc`` and ``time`` only).
        seed: seeds torch before training (dropout, augmentation in the main process).

    Returns:
        The :class:`d2lcv.train.History` (per epoch ``train_*``, ``val_*``, ``lr``, ``time``).
    """
    from d2lcv import config, train

    config.seed_everything(seed)
    optimizer = torch.optim.SGD(param_groups(model, lrs), momentum=0.9, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    first = None
    if eval_first:
        start = time.perf_counter()
        result = train.evaluate(model.to(config.try_device() if device is None else device), test_loader,
                                device=device)
        first = {"epoch": 0, "val_loss": result["loss"], "val_acc": result["acc"],
                 "time": time.perf_counter() - start}
    history = train.fit(model, train_loader, test_loader, epochs=epochs, optimizer=optimizer, scheduler=scheduler,
                        device=device, progress=False)
    if first is not None:
        history.records.insert(0, first)
    return history


def eval_loader(x: Tensor, y: Tensor, source: Source, *, batch_size: int = 500) -> DataLoader:
    """A loader of test images ``x`` (uint8 Tensor[N, 3, 32, 32]) and labels ``y``,
    transformed once for ``source`` (the test pipeline is deterministic)."""
    return DataLoader(TensorDataset(input_transform(source, train=False)(x), y), batch_size=batch_size)
