"""One training loop for every chapter: :func:`fit`.

The loop is the one in every PyTorch tutorial, plus what a real run needs:

* a pluggable :class:`~d2lcv.engine.steps.Step` (classification by default; detection,
  GANs, language models, pixel optimisation),
* mixed precision on CUDA (bfloat16 where supported, else float16 with a ``GradScaler``),
* gradient clipping, learning-rate schedules per epoch or per batch, atomic checkpoints
  and resuming, continuing an earlier :class:`~d2lcv.engine.History`,
* progress bars, live training curves in Jupyter, callbacks,
* the same code under ``torchrun``: with a process group up, the model is wrapped in
  ``DistributedDataParallel``, each process reads its share of the data and the reported
  metrics are summed over all processes.

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
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DistributedSampler

from d2lcv.metrics.classification import num_correct
from d2lcv.utils.progress import progress as progress_bar

from .callbacks import Callback, LivePlot
from .checkpoint import load_checkpoint, save_checkpoint
from .context import Context, amp_setup
from .distributed import is_distributed, is_main_process, resolve_device, unwrap
from .evaluate import evaluate_pass
from .history import History
from .optim import DEFAULT, OptimizerSpec, make_optimizers, make_schedulers
from .steps import Step, SupervisedStep
from .totals import Totals

__all__ = ["fit", "train_pass"]


def _check(epochs: Any, scheduler_interval: str, grad_clip: Any, checkpoint: Any, resume: bool,
           callbacks: Sequence[Any]) -> None:
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
        raise ValueError(f"epochs must be a non-negative int, got {epochs!r}")
    if scheduler_interval not in ("epoch", "batch"):
        raise ValueError(f"scheduler_interval must be 'epoch' or 'batch', got {scheduler_interval!r}")
    if grad_clip is not None and not grad_clip > 0:
        raise ValueError(f"grad_clip must be positive or None, got {grad_clip!r}")
    if resume and checkpoint is None:
        raise ValueError("resume=True needs a checkpoint path, got checkpoint=None")
    bad = [type(cb).__name__ for cb in callbacks if not isinstance(cb, Callback)]
    if bad:
        raise ValueError(f"callbacks must be d2lcv.engine.Callback instances, got {bad}")


def _overrides(cb: Callback, hook: str) -> bool:
    return getattr(type(cb), hook) is not getattr(Callback, hook)


def train_pass(
    loader: Iterable,
    step: Step,
    ctx: Context,
    *,
    callbacks: Sequence[Callback] = (),
    show: bool = False,
) -> dict[str, float]:
    """One training pass of ``step`` over ``loader`` (model in train mode): the epoch's
    ``{name: sum / n}`` over all processes. Calls ``step.reset`` first and each callback's
    ``on_step_end`` after every batch."""
    ctx.model.train()
    ctx.training = True
    step.reset(ctx)
    totals = Totals()
    listeners = [cb for cb in callbacks if _overrides(cb, "on_step_end")]
    # Without a bar the loader is iterated bare: tqdm.auto calls iter(loader) once
    # more when it is built (even disabled), which draws a DataLoader seed from the
    # loader's generator (or torch's global one). With a bar that extra draw happens,
    # as it always has in d2lcv.
    batches = progress_bar(loader, True, desc="train", leave=False) if show else loader
    for batch in batches:
        out = step.update(ctx.model, batch, ctx)
        totals.add(out)
        ctx.iteration += 1
        if listeners:
            metrics = {
                k: float(v) / out.n if out.n else math.nan for k, v in out.sums.items()
            }
            for cb in listeners:
                cb.on_step_end(ctx, metrics)
    ctx.training = False
    return totals.means(ctx.device, step)


def fit(
    model: nn.Module,
    train_loader: Iterable,
    val_loader: Iterable | None = None,
    *,
    epochs: int,
    step: Step | None = None,
    optimizer: OptimizerSpec | Mapping[str, OptimizerSpec] | None = None,
    loss_fn: Callable[[Tensor, Tensor], Tensor] = F.cross_entropy,
    metric: Callable[[Tensor, Tensor], Tensor] | None = num_correct,
    device: torch.device | str | None = None,
    scheduler: Any | None = None,
    scheduler_interval: str = "epoch",
    amp: bool | None = None,
    grad_clip: float | None = None,
    checkpoint: str | os.PathLike | None = None,
    resume: bool = False,
    progress: bool = True,
    plot: bool = False,
    callbacks: Sequence[Callback] = (),
    history: History | None = None,
) -> History:
    """Train ``model`` for ``epochs`` epochs; evaluate on ``val_loader`` after each.

    Args:
        model: trained in place (moved to ``device``; under a process group, wrapped in
            ``DistributedDataParallel`` for the run).
        train_loader, val_loader: iterables of batches in the step's format; for the
            default step ``(inputs, targets)`` with class indices ``[B]`` or soft labels
            ``[B, C]``. Under ``torchrun``, build them with :func:`~d2lcv.engine.make_loader`
            so each process reads its own share (``sampler.set_epoch`` is called each epoch).
        epochs: the total number of epochs, counting those already in ``history`` or in a
            resumed checkpoint (only the missing ones are trained).
        step: how a batch is trained and evaluated; default
            ``SupervisedStep(loss_fn, metric)``. History keys are ``train_<name>`` and
            ``val_<name>`` for every metric the step reports.
        optimizer: an optimizer over ``model``'s parameters, a callable ``params ->
            optimizer`` (e.g. ``functools.partial(torch.optim.AdamW, lr=1e-3)``), ``None``
            for SGD (lr 0.05, momentum 0.9, weight decay 5e-4), or ``{name: either}`` for
            a step with several (a callable gets ``model.<name>``'s parameters).
        loss_fn, metric: for the default step; leave them alone when giving ``step``.
            ``metric(logits, targets)`` -> the batch's *sum* of a per-example score,
            reported as a mean (``*_acc``); ``None``: NaN.
        device: default :func:`d2lcv.config.try_device`; under ``torchrun`` with CUDA,
            GPU ``$LOCAL_RANK``.
        scheduler: a learning-rate scheduler or a callable ``optimizer -> scheduler``
            (``{name: either}`` with several optimizers).
        scheduler_interval: ``"epoch"`` (step after each epoch, e.g. ``CosineAnnealingLR``
            with ``T_max=epochs``) or ``"batch"`` (after each optimizer step, e.g. ``OneCycleLR``).
        amp: mixed precision; ``None`` turns it on for CUDA (bfloat16 where supported,
            else float16 with a ``GradScaler``) and off elsewhere; ``True`` on the CPU
            autocasts to bfloat16.
        grad_clip: clip the global L2 norm of each optimizer's gradients to this.
        checkpoint: a path; the state is saved there (atomically, by rank 0) after each epoch.
        resume: continue from ``checkpoint`` if that file exists (its history replaces ``history``).
        progress: show progress bars (rank 0 only; ``TQDM_DISABLE=1`` silences them).
        plot: redraw training curves in the notebook after each epoch (a
            :class:`~d2lcv.engine.callbacks.LivePlot`; rank 0 only, nothing outside Jupyter).
        callbacks: :class:`~d2lcv.engine.callbacks.Callback` objects, called in order.
        history: an earlier run's history to continue: new records are appended to it
            (in place) and epochs are numbered on from its last one.

    Returns:
        The :class:`~d2lcv.engine.History`, one record per epoch (earlier ones included):
        ``epoch``, ``train_*``, ``val_*``, ``lr`` (``lr_<name>`` per optimizer with several),
        ``time`` (seconds, training and validation).
    """
    _check(epochs, scheduler_interval, grad_clip, checkpoint, resume, callbacks)
    if step is None:
        step = SupervisedStep(loss_fn, metric)
    elif not isinstance(step, Step):
        raise ValueError(f"step must be a d2lcv.engine.Step, got {type(step).__name__}")
    elif loss_fn is not F.cross_entropy or metric is not num_correct:
        raise ValueError(f"pass loss_fn and metric to the step, not to fit; got step={step!r} with "
                         f"loss_fn={loss_fn!r}, metric={metric!r}")
    if history is not None and not isinstance(history, History):
        raise ValueError(f"history must be a d2lcv.engine.History or None, got {type(history).__name__}")
    device = resolve_device(device)
    model.to(device)
    optimizers = make_optimizers(optimizer, unwrap(model))
    schedulers = make_schedulers(scheduler, optimizers)
    amp_dtype, scaler = amp_setup(amp, device)
    history = History() if history is None else history
    start = history.epochs_done
    opt_state: Any = optimizers[DEFAULT] if DEFAULT in optimizers else optimizers
    if resume and Path(checkpoint).exists():
        history, start = _restore(checkpoint, model, opt_state, schedulers, scaler, device)
    if is_distributed() and not isinstance(model, DistributedDataParallel):
        device_ids = [device.index] if device.type == "cuda" else None  # None: CPU (gloo)
        model = DistributedDataParallel(model, device_ids=device_ids)
    main = is_main_process()
    callbacks = [*callbacks, *([LivePlot()] if plot and main else [])]
    ctx = Context(model, device, optimizers, schedulers, scheduler_interval=scheduler_interval, amp_dtype=amp_dtype,
                  scaler=scaler, grad_clip=grad_clip, history=history)
    for cb in callbacks:
        cb.on_fit_start(ctx)
    for epoch in progress_bar(range(start, epochs), progress and main, desc="epochs", initial=start, total=epochs):
        ctx.epoch = epoch
        sampler = getattr(train_loader, "sampler", None)
        if isinstance(sampler, DistributedSampler):
            sampler.set_epoch(epoch)  # a new, reproducible order each epoch
        lrs = _lrs(optimizers)
        tic = time.perf_counter()
        for cb in callbacks:
            cb.on_epoch_start(ctx)
        train = train_pass(train_loader, step, ctx, callbacks=callbacks, show=progress and main)
        if scheduler_interval == "epoch":
            for sched in schedulers.values():
                sched.step()
        record = {"epoch": epoch + 1, **{f"train_{k}": v for k, v in train.items()}}
        if val_loader is not None:
            val, _ = evaluate_pass(model, val_loader, step, ctx)
            record.update({f"val_{k}": v for k, v in val.items()})
        history.append(**record, **lrs, time=time.perf_counter() - tic)
        if checkpoint is not None and main:
            save_checkpoint(checkpoint, model, opt_state, epoch=epoch + 1, history=history,
                            **_extra_state(schedulers, scaler))
        for cb in callbacks:
            cb.on_epoch_end(ctx, history)
        if ctx.stop:
            break
    for cb in callbacks:
        cb.on_fit_end(ctx, history)
    return history


def _lrs(optimizers: dict[str, torch.optim.Optimizer]) -> dict[str, float]:
    if set(optimizers) == {DEFAULT}:
        return {"lr": optimizers[DEFAULT].param_groups[0]["lr"]}
    return {f"lr_{name}": opt.param_groups[0]["lr"] for name, opt in optimizers.items()}


def _extra_state(schedulers: dict[str, Any], scaler: torch.amp.GradScaler | None) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    if schedulers:
        extra["scheduler"] = (schedulers[DEFAULT].state_dict() if set(schedulers) == {DEFAULT}
                              else {name: s.state_dict() for name, s in schedulers.items()})
    if scaler is not None:
        extra["scaler"] = scaler.state_dict()
    return extra


def _restore(path: str | os.PathLike, model: nn.Module, optimizer: Any, schedulers: dict[str, Any],
             scaler: torch.amp.GradScaler | None, device: torch.device) -> tuple[History, int]:
    state = load_checkpoint(path, model, optimizer, map_location=device)
    if schedulers and "scheduler" in state:
        saved = state["scheduler"]
        for name, sched in schedulers.items():
            sched.load_state_dict(saved if set(schedulers) == {DEFAULT} else saved[name])
    if scaler is not None and "scaler" in state:
        scaler.load_state_dict(state["scaler"])
    return History.from_state_dict(state["history"]), int(state["epoch"])
