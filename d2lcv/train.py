"""One training loop for every chapter: :func:`fit`, with :func:`evaluate` and checkpoints.

The loop is the one in every PyTorch tutorial, plus what a real run needs:

* mixed precision on CUDA (bfloat16 where supported, else float16 with a ``GradScaler``),
* gradient clipping, a learning-rate scheduler, atomic checkpoints and resuming,
* progress bars and live training curves in Jupyter,
* the same code under ``torchrun``: with a process group up, the model is wrapped in
  ``DistributedDataParallel``, each process reads its share of the data and the reported
  metrics are summed over all processes.

A batch is a pair ``(inputs, targets)``. Targets are class indices (int64 ``[B]``) or
soft labels (float ``[B, C]``, from mixup or CutMix); the loss receives them as they are.

Example::

    train_loader = make_loader(train_set, batch_size=128, shuffle=True, seed=0)
    val_loader = make_loader(val_set, batch_size=256, shuffle=False)
    history = fit(model, train_loader, val_loader, epochs=10,
                  optimizer=functools.partial(torch.optim.SGD, lr=0.1, momentum=0.9))
    history.last["val_acc"]
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler
from tqdm.auto import tqdm

from d2lcv import config

__all__ = [
    "History",
    "fit",
    "train_epoch",
    "evaluate",
    "predict",
    "num_correct",
    "make_loader",
    "save_checkpoint",
    "load_checkpoint",
    "is_main_process",
]

LossFn = Callable[[Tensor, Tensor], Tensor]
Metric = Callable[[Tensor, Tensor], Tensor]
OptimizerArg = torch.optim.Optimizer | Callable[..., torch.optim.Optimizer] | None


class History:
    """Per-epoch records of a training run, as plain floats.

    Each record is a dict with ``epoch`` (1-based), ``train_loss``, ``train_acc``,
    ``val_loss`` and ``val_acc`` (only with a validation loader), ``lr`` (of the first
    parameter group, at the start of the epoch) and ``time`` (seconds).

    ``history["val_acc"]`` is the list of one key over epochs, ``history.last`` the last
    record, ``history.records`` a list of dicts (``pandas.DataFrame(history.records)``
    makes a table). :meth:`state_dict` is plain lists and dicts, so it can go in a
    checkpoint that loads with ``torch.load(weights_only=True)``.
    """

    def __init__(self, records: Iterable[dict[str, float]] = ()) -> None:
        self.records: list[dict[str, float]] = [dict(r) for r in records]

    def append(self, **values: float) -> None:
        """Add one epoch's record; values are stored as Python floats."""
        self.records.append({k: float(v) for k, v in values.items()})

    def __len__(self) -> int:
        return len(self.records)

    def __contains__(self, key: object) -> bool:
        return any(key in r for r in self.records)

    def __getitem__(self, key: str) -> list[float]:
        if key not in self:
            raise KeyError(f"history has no {key!r}; it has {self.keys()}")
        return [r[key] for r in self.records if key in r]

    def keys(self) -> list[str]:
        """The keys of all records, in first-seen order."""
        return list(dict.fromkeys(k for r in self.records for k in r))

    @property
    def last(self) -> dict[str, float]:
        """The record of the last epoch."""
        if not self.records:
            raise IndexError("history is empty: no epoch has finished")
        return self.records[-1]

    def state_dict(self) -> dict[str, list[dict[str, float]]]:
        return {"records": [dict(r) for r in self.records]}

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> History:
        return cls(state["records"])

    def __repr__(self) -> str:
        keys = self.keys()
        rows = ["  ".join(f"{k:>10}" for k in keys)]
        for r in self.records:
            rows.append("  ".join(_fmt(k, r.get(k, math.nan)) for k in keys))
        return "\n".join(rows)


def _fmt(key: str, value: float) -> str:
    if key == "epoch":
        return f"{int(value):>10d}"
    return f"{value:>10.3g}" if key == "lr" else f"{value:>10.4f}"


# --- processes ----------------------------------------------------------------------


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def is_main_process() -> bool:
    """True on rank 0 of a process group, and always without one."""
    return not _distributed() or dist.get_rank() == 0


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, DistributedDataParallel) else model


def _resolve_device(device: torch.device | str | None) -> torch.device:
    device = config.try_device() if device is None else torch.device(device)
    if device.type == "cuda" and device.index is None and _distributed():
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))  # one GPU a process
    return device


def _all_reduce_sum(values: list[float], device: torch.device) -> list[float]:
    """Sum ``values`` over all processes (identity without a process group)."""
    if not _distributed():
        return values
    totals = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(totals)  # default op: SUM
    return totals.tolist()


def make_loader(
    dataset: Dataset,
    batch_size: int,
    *,
    shuffle: bool,
    seed: int = 0,
    drop_last: bool = False,
    **kwargs: Any,
) -> DataLoader:
    """A ``DataLoader`` whose order depends only on ``seed`` and the epoch.

    The sampler is a ``DistributedSampler``: under ``torchrun`` it gives each process
    its share of the data; alone, it is one process's share of everything, i.e. a plain
    (seeded) shuffle. :func:`fit` calls ``sampler.set_epoch(epoch)``, so each epoch has
    a new order, the same on every run, and a resumed run sees the same batches as an
    uninterrupted one.

    With ``P`` processes and ``len(dataset)`` not divisible by ``P``, the sampler repeats
    up to ``P - 1`` examples so that every process has as many batches.

    Args:
        dataset: a map-style dataset.
        batch_size: examples per batch *per process*.
        shuffle: shuffle each epoch (training) or not (evaluation).
        seed: the shuffle's seed.
        drop_last: drop the last, incomplete batch.
        **kwargs: passed to ``DataLoader`` (``num_workers``, ``pin_memory``, ...).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    if "sampler" in kwargs or "batch_sampler" in kwargs:
        raise ValueError(f"make_loader builds its own sampler; got {sorted(kwargs)}")
    replicas, rank = (dist.get_world_size(), dist.get_rank()) if _distributed() else (1, 0)
    sampler = DistributedSampler(
        dataset, num_replicas=replicas, rank=rank, shuffle=shuffle, seed=seed, drop_last=drop_last
    )
    return DataLoader(dataset, batch_size, sampler=sampler, drop_last=drop_last, **kwargs)


# --- one epoch ----------------------------------------------------------------------


def num_correct(logits: Tensor, targets: Tensor) -> Tensor:
    """How many predictions ``logits.argmax(1)`` match the targets.

    Args:
        logits (Tensor[B, C]): scores.
        targets (Tensor[B] int64 or Tensor[B, C] float): class indices, or soft labels
            whose argmax is taken as the class.

    Returns:
        Tensor[] (int64): the count (a sum, so that it adds up over batches and processes).
    """
    if targets.ndim == logits.ndim:  # soft labels [B, C]
        targets = targets.argmax(dim=1)
    return (logits.argmax(dim=1) == targets).sum()


def _autocast(device: torch.device, amp_dtype: torch.dtype | None) -> torch.autocast:
    return torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None)


def train_epoch(
    model: nn.Module,
    loader: Iterable,
    optimizer: torch.optim.Optimizer,
    loss_fn: LossFn = F.cross_entropy,
    *,
    device: torch.device,
    metric: Metric | None = num_correct,
    scheduler: Any | None = None,
    grad_clip: float | None = None,
    amp_dtype: torch.dtype | None = None,
    scaler: torch.amp.GradScaler | None = None,
    progress: bool = False,
) -> dict[str, float]:
    """Train for one pass over ``loader``.

    Args:
        scheduler: stepped after every batch (pass ``None`` for per-epoch schedulers;
            :func:`fit` steps those).
        grad_clip: clip the gradients' global L2 norm to this value.
        amp_dtype: autocast to this dtype (``None``: full precision).
        scaler: a float16 ``GradScaler`` (``None`` for bfloat16 or full precision).

    Returns:
        ``{"loss": mean loss, "acc": mean metric, "n": examples}`` over all processes.
    """
    model.train()
    loss_sum, correct, n = 0.0, 0.0, 0
    for x, y in _progress(loader, progress, desc="train", leave=False):
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        with _autocast(device, amp_dtype):
            logits = model(x)  # [B, C]
            loss = loss_fn(logits, y)  # mean over the batch
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
        else:
            loss.backward()
        if grad_clip is not None:
            nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        if scheduler is not None:
            scheduler.step()
        loss_sum += loss.item() * len(y)
        correct += metric(logits, y).item() if metric is not None else math.nan
        n += len(y)
    return _summarise(loss_sum, correct, n, device)


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: Iterable,
    loss_fn: LossFn = F.cross_entropy,
    *,
    device: torch.device | str | None = None,
    metric: Metric | None = num_correct,
    amp_dtype: torch.dtype | None = None,
) -> dict[str, float]:
    """Mean loss and accuracy of ``model`` on ``loader``, in eval mode.

    Under a process group each process evaluates its share and the sums are all-reduced,
    so every process returns the numbers for the whole dataset.

    Returns:
        ``{"loss": float, "acc": float, "n": int}``; ``acc`` is NaN when ``metric`` is None.
    """
    device = _resolve_device(device)
    module = _unwrap(model)  # no DDP forward: evaluation needs no gradient sync
    was_training = module.training
    module.eval()
    loss_sum, correct, n = 0.0, 0.0, 0
    for x, y in loader:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        with _autocast(device, amp_dtype):
            logits = module(x)
            loss = loss_fn(logits, y)
        loss_sum += loss.item() * len(y)
        correct += metric(logits, y).item() if metric is not None else math.nan
        n += len(y)
    module.train(was_training)
    return _summarise(loss_sum, correct, n, device)


def _progress(iterable: Iterable, show: bool, **kwargs: Any) -> Iterable:
    """A tqdm.auto bar, or the bare iterable. ``disable`` is left unset when showing, so
    ``TQDM_DISABLE=1`` in the environment (set when the book is built) still silences it."""
    return tqdm(iterable, **kwargs) if show else iterable


def _summarise(loss_sum: float, correct: float, n: int, device: torch.device) -> dict[str, float]:
    loss_sum, correct, n = _all_reduce_sum([loss_sum, correct, float(n)], device)
    if n == 0:
        raise ValueError("the loader yielded no examples")
    return {"loss": loss_sum / n, "acc": correct / n, "n": int(n)}


@torch.no_grad()
def predict(model: nn.Module, loader: Iterable, *, device: torch.device | str | None = None) -> Tensor:
    """The model's outputs on every batch of ``loader``, concatenated, on the CPU.

    Batches may be ``(inputs, targets)`` pairs or bare inputs. Returns Tensor[N, C].
    """
    device = _resolve_device(device)
    module = _unwrap(model)
    was_training = module.training
    module.eval()
    outputs = []
    for batch in loader:
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        outputs.append(module(x.to(device)).float().cpu())
    module.train(was_training)
    if not outputs:
        raise ValueError("the loader yielded no batches")
    return torch.cat(outputs)


# --- checkpoints --------------------------------------------------------------------


def save_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    *,
    epoch: int = 0,
    history: History | None = None,
    **extra: Any,
) -> Path:
    """Save model (and optimizer) state atomically: a temporary file, then ``os.replace``.

    A run killed while saving leaves the previous checkpoint intact. Everything stored
    is tensors and plain containers, so :func:`load_checkpoint` can use
    ``torch.load(weights_only=True)``.

    Args:
        epoch: the number of finished epochs.
        history: stored as :meth:`History.state_dict`.
        **extra: more plain entries (e.g. ``scheduler=scheduler.state_dict()``).
    """
    path = Path(path)
    state = {"model": _unwrap(model).state_dict(), "epoch": int(epoch), **extra}
    if optimizer is not None:
        state["optimizer"] = optimizer.state_dict()
    if history is not None:
        state["history"] = history.state_dict()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # same directory: os.replace is atomic
    try:
        with open(tmp, "wb") as f:
            torch.save(state, f)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    *,
    map_location: torch.device | str = "cpu",
) -> dict[str, Any]:
    """Load a :func:`save_checkpoint` file into ``model`` (and ``optimizer``).

    Returns:
        The whole checkpoint dict (``epoch``, ``history``, and any extras).
    """
    state = torch.load(path, map_location=map_location, weights_only=True)
    _unwrap(model).load_state_dict(state["model"])
    if optimizer is not None:
        if "optimizer" not in state:
            raise ValueError(f"checkpoint {str(path)!r} has no optimizer state")
        optimizer.load_state_dict(state["optimizer"])
    return state


# --- the loop -----------------------------------------------------------------------


def _make_optimizer(optimizer: OptimizerArg, model: nn.Module) -> torch.optim.Optimizer:
    if optimizer is None:
        return torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    if isinstance(optimizer, torch.optim.Optimizer):
        return optimizer
    if callable(optimizer):
        return optimizer(model.parameters())
    raise TypeError(
        f"optimizer must be an Optimizer, a callable or None, got {type(optimizer).__name__}"
    )


def _amp_setup(
    amp: bool | None, device: torch.device
) -> tuple[torch.dtype | None, torch.amp.GradScaler | None]:
    """Autocast dtype and scaler: bf16 where supported, else fp16 with a scaler; CPU: off."""
    if amp is None:
        amp = device.type == "cuda"
    if not amp:
        return None, None
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return torch.float16, torch.amp.GradScaler("cuda")
    return torch.bfloat16, None


def fit(
    model: nn.Module,
    train_loader: Iterable,
    val_loader: Iterable | None = None,
    *,
    epochs: int,
    optimizer: OptimizerArg = None,
    loss_fn: LossFn = F.cross_entropy,
    device: torch.device | str | None = None,
    scheduler: Any | None = None,
    scheduler_interval: str = "epoch",
    amp: bool | None = None,
    grad_clip: float | None = None,
    metric: Metric | None = num_correct,
    checkpoint: str | os.PathLike | None = None,
    resume: bool = False,
    progress: bool = True,
    plot: bool = False,
) -> History:
    """Train ``model`` for ``epochs`` epochs; evaluate on ``val_loader`` after each.

    Args:
        model: trained in place (moved to ``device``; under a process group, wrapped in
            ``DistributedDataParallel`` for the run).
        train_loader, val_loader: yield ``(inputs, targets)``; targets are class indices
            ``[B]`` or soft labels ``[B, C]``. Under ``torchrun``, build them with
            :func:`make_loader` so each process reads its own share.
        epochs: the total number of epochs (a resumed run trains only the missing ones).
        optimizer: an optimizer over ``model``'s parameters, a callable
            ``params -> optimizer`` (e.g. ``functools.partial(torch.optim.AdamW, lr=1e-3)``),
            or ``None`` for SGD (lr 0.05, momentum 0.9, weight decay 5e-4).
        loss_fn: ``loss_fn(logits, targets)``, a mean over the batch.
        device: default :func:`d2lcv.config.try_device`; under ``torchrun`` with CUDA,
            GPU ``$LOCAL_RANK``.
        scheduler: a learning-rate scheduler, or a callable ``optimizer -> scheduler``.
        scheduler_interval: ``"epoch"`` (step after each epoch, e.g. ``CosineAnnealingLR``
            with ``T_max=epochs``) or ``"batch"`` (after each step, e.g. ``OneCycleLR``).
        amp: mixed precision; ``None`` turns it on for CUDA (bfloat16 where supported,
            else float16 with a ``GradScaler``) and off elsewhere; ``True`` on the CPU
            autocasts to bfloat16.
        grad_clip: clip the global L2 norm of the gradients to this (``clip_grad_norm_``).
        metric: ``metric(logits, targets)`` -> the batch's *sum* of a per-example score,
            reported as a mean (``*_acc``); default :func:`num_correct`; ``None``: NaN.
        checkpoint: a path; the state is saved there (atomically, by rank 0) after each epoch.
        resume: continue from ``checkpoint`` if that file exists.
        progress: show progress bars (rank 0 only).
        plot: redraw training curves in the notebook after each epoch (rank 0 only; does
            nothing outside Jupyter).

    Returns:
        A :class:`History`, one record per epoch (including epochs from a resumed checkpoint).
    """
    if not isinstance(epochs, int) or epochs < 0:
        raise ValueError(f"epochs must be a non-negative int, got {epochs!r}")
    if scheduler_interval not in ("epoch", "batch"):
        raise ValueError(f"scheduler_interval must be 'epoch' or 'batch', got {scheduler_interval!r}")
    if grad_clip is not None and not grad_clip > 0:
        raise ValueError(f"grad_clip must be positive or None, got {grad_clip!r}")
    if resume and checkpoint is None:
        raise ValueError("resume=True needs a checkpoint path, got checkpoint=None")
    device = _resolve_device(device)
    model.to(device)
    optimizer = _make_optimizer(optimizer, _unwrap(model))
    if scheduler is not None and not hasattr(scheduler, "step"):
        scheduler = scheduler(optimizer)
    amp_dtype, scaler = _amp_setup(amp, device)
    history, start = History(), 0
    if resume and Path(checkpoint).exists():
        history, start = _restore(checkpoint, model, optimizer, scheduler, scaler, device)
    if _distributed() and not isinstance(model, DistributedDataParallel):
        device_ids = [device.index] if device.type == "cuda" else None  # None: CPU (gloo)
        model = DistributedDataParallel(model, device_ids=device_ids)
    main = is_main_process()
    live = _live_plot() if plot and main else None
    batch_scheduler = scheduler if scheduler_interval == "batch" else None
    epoch_bar = _progress(range(start, epochs), progress and main, desc="epochs", initial=start, total=epochs)
    for epoch in epoch_bar:
        sampler = getattr(train_loader, "sampler", None)
        if isinstance(sampler, DistributedSampler):
            sampler.set_epoch(epoch)  # a new, reproducible order each epoch
        lr, tic = optimizer.param_groups[0]["lr"], time.perf_counter()
        train = train_epoch(model, train_loader, optimizer, loss_fn, device=device, metric=metric,
                            scheduler=batch_scheduler, grad_clip=grad_clip, amp_dtype=amp_dtype,
                            scaler=scaler, progress=progress and main)
        if scheduler is not None and scheduler_interval == "epoch":
            scheduler.step()
        record = {"epoch": epoch + 1, "train_loss": train["loss"], "train_acc": train["acc"]}
        if val_loader is not None:
            val = evaluate(model, val_loader, loss_fn, device=device, metric=metric, amp_dtype=amp_dtype)
            record.update(val_loss=val["loss"], val_acc=val["acc"])
        history.append(**record, lr=lr, time=time.perf_counter() - tic)
        if checkpoint is not None and main:
            save_checkpoint(checkpoint, model, optimizer, epoch=epoch + 1, history=history,
                            **_extra_state(scheduler, scaler))
        if live is not None:
            live.update(history)
    return history


def _extra_state(scheduler: Any | None, scaler: torch.amp.GradScaler | None) -> dict[str, Any]:
    extra = {}
    if scheduler is not None:
        extra["scheduler"] = scheduler.state_dict()
    if scaler is not None:
        extra["scaler"] = scaler.state_dict()
    return extra


def _restore(path, model, optimizer, scheduler, scaler, device) -> tuple[History, int]:
    state = load_checkpoint(path, model, optimizer, map_location=device)
    if scheduler is not None and "scheduler" in state:
        scheduler.load_state_dict(state["scheduler"])
    if scaler is not None and "scaler" in state:
        scaler.load_state_dict(state["scaler"])
    return History.from_state_dict(state["history"]), state["epoch"]


def _live_plot() -> Any:
    from d2lcv.plot import LivePlot  # matplotlib only when asked for

    return LivePlot()
