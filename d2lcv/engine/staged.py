"""AdamW with a learning-rate schedule over :func:`~d2lcv.engine.fit`, trainable in
stages: the detection recipes' (SSD, YOLO) training, with runs cached across notebooks.

A run of ``epochs`` epochs can stop after ``stop_after`` of them and leave a checkpoint
(model, optimiser, schedule, history); a later call with the same checkpoint continues
the same schedule, so a staged run equals a continuous one. ``resume_from`` starts a new
checkpoint from an earlier stage's file without changing that file.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.optim import AdamW
from torch.optim.lr_scheduler import LambdaLR, LRScheduler, OneCycleLR

from d2lcv.data.cache import cache_dir

from .distributed import resolve_device
from .history import History
from .loop import fit
from .steps import Step

__all__ = ["SCHEDULES", "make_schedule", "run_checkpoint", "LazyBatches", "move_images", "fit_staged"]

SCHEDULES = ("one-cycle", "cosine", "step")
"""The learning-rate schedules of :func:`make_schedule`."""


def make_schedule(
    optimizer: torch.optim.Optimizer, name: str, total_steps: int, lr: float
) -> LRScheduler:
    """A per-step schedule of ``optimizer``'s learning rate over ``total_steps``, peak ``lr``
    (every parameter group's learning rate is set by it).

    * ``"one-cycle"``: warm up for 15% of the steps to ``lr``, then cosine down to about 0
      (``OneCycleLR``, as the book's SSD and YOLO were trained);
    * ``"cosine"``: from ``lr`` straight down to 0 along half a cosine;
    * ``"step"``: ``lr`` until two thirds of the steps, then ``lr / 10``.
    """
    if name not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {name!r}")
    if total_steps < 1:
        raise ValueError(f"total_steps must be >= 1, got {total_steps}")
    if name == "one-cycle":
        return OneCycleLR(optimizer, max_lr=lr, total_steps=total_steps, pct_start=0.15)
    for group in optimizer.param_groups:
        group["lr"] = group["initial_lr"] = lr
    if name == "cosine":
        T = total_steps
        return LambdaLR(optimizer, lambda i: 0.5 * (1 + math.cos(math.pi * i / T)))
    drop = (2 * total_steps) // 3
    return LambdaLR(optimizer, lambda i: 1.0 if i < drop else 0.1)


def run_checkpoint(name: str, settings: Mapping[str, Any], folder: str = "runs") -> Path:
    """Where a training run is cached across notebooks:
    ``<cache>/<folder>/<name>-<hash of settings>.pt`` (:func:`d2lcv.data.cache_dir`).

    Args:
        name: e.g. ``"tiny-v3-cpu"``; folder: e.g. ``"yolo"``.
        settings: everything the run depends on (JSON-able: sizes, widths, epochs,
            learning rate, seed), so that changing one of them starts a new run
            instead of resuming an unrelated one.
    """
    for what, value in (("name", name), ("folder", folder)):
        if not value or "/" in value or "\\" in value:
            raise ValueError(f"{what} must be a non-empty file name without '/', got {value!r}")
    text = json.dumps(dict(settings), sort_keys=True, default=str)
    key = hashlib.sha256(text.encode()).hexdigest()[:10]
    return cache_dir() / folder / f"{name}-{key}.pt"


class LazyBatches:
    """``loader``, iterated only when the loop asks for batches: a progress bar's own
    ``iter()`` of it starts nothing (no extra ``DataLoader`` seed drawn from torch's
    RNG). ``len()`` is the loader's."""

    def __init__(self, loader: Iterable) -> None:
        self.loader = loader

    def __len__(self) -> int:
        return len(self.loader)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[Any]:
        yield from self.loader


def move_images(batch: tuple[Tensor, Any], device: torch.device) -> tuple[Tensor, Any]:
    """``(images, targets)`` with only the images moved to ``device``: detection losses
    pad the per-image targets on the CPU and move them themselves."""
    images, targets = batch
    return images.to(device), targets


def _check_stages(
    epochs: int,
    stop_after: int | None,
    checkpoint: str | Path | None,
    resume_from: str | Path | None,
) -> None:
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be an int >= 1, got {epochs!r}")
    if stop_after is not None and not 1 <= stop_after <= epochs:
        raise ValueError(f"stop_after must be in 1..epochs={epochs}, got {stop_after}")
    if resume_from is not None and checkpoint is None:
        raise ValueError("resume_from needs a checkpoint to continue into; got checkpoint=None")


def _start_from(checkpoint: Path, resume_from: str | Path | None) -> None:
    """Create the checkpoint's folder; copy ``resume_from`` (an earlier stage) to
    ``checkpoint`` if only the earlier stage exists, leaving it as it was."""
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    if resume_from is not None and not checkpoint.exists() and Path(resume_from).exists():
        shutil.copyfile(resume_from, checkpoint)


def fit_staged(
    model: nn.Module,
    loader: Iterable,
    step: Step,
    *,
    epochs: int,
    lr: float,
    weight_decay: float = 5e-4,
    schedule: str = "one-cycle",
    device: torch.device | str | None = None,
    progress: bool = True,
    history: History | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    checkpoint: str | Path | None = None,
    stop_after: int | None = None,
    resume_from: str | Path | None = None,
) -> History:
    """Train ``model`` with ``step`` and AdamW under a per-step :func:`make_schedule`
    of ``epochs`` epochs, in full precision, optionally in stages.

    Args:
        loader: the training batches (wrapped in :class:`LazyBatches`).
        step: e.g. a :class:`~d2lcv.engine.LossStep` with ``move=move_images``.
        epochs: the schedule's length in passes over ``loader``; lr: its peak;
            weight_decay: AdamW's; schedule: one of :data:`SCHEDULES`.
        device: default: CUDA if available, else the CPU.
        history, optimizer: pass the ones of an earlier call to continue a run (the
            schedule restarts; the epochs are numbered on). Without ``checkpoint`` only.
        checkpoint: a file (e.g. :func:`run_checkpoint`): the model, optimizer, schedule
            and history are saved there after every epoch, and a call that finds the
            file continues from it (``history`` is then ignored).
        stop_after: end this call after that many epochs of the schedule (default: all).
        resume_from: an earlier stage's checkpoint (saved with ``stop_after``) to start
            from when ``checkpoint`` does not exist yet; it is copied, not changed.

    Returns:
        The :class:`~d2lcv.engine.History`: per epoch ``train_<metric>`` of the step,
        ``lr`` and ``time`` (seconds; with a checkpoint, of every stage so far).
    """
    _check_stages(epochs, stop_after, checkpoint, resume_from)
    device = resolve_device(device)
    model.to(device)
    opt = optimizer or AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    steps = epochs * len(loader)  # type: ignore[arg-type]
    sched = make_schedule(opt, schedule, steps, lr)
    history = history if history is not None else History()
    end = stop_after or epochs
    if checkpoint is not None:  # the epochs done are in the file
        _start_from(Path(checkpoint), resume_from)
    else:
        end += history.epochs_done
    return fit(model, LazyBatches(loader), epochs=end, step=step, optimizer=opt,
               scheduler=sched, scheduler_interval="batch", device=device, amp=False,
               progress=progress, history=history,
               checkpoint=checkpoint, resume=checkpoint is not None)
