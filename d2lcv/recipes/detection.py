"""The detection chapters' training recipe: SSD, a :class:`~d2lcv.engine.LossStep` over
:func:`d2lcv.engine.fit`."""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch.optim import AdamW
from torch.optim.lr_scheduler import OneCycleLR
from torch import Tensor

from d2lcv.config import try_device
from d2lcv.engine import History, LossStep, fit
from d2lcv.losses.detection import ssd_loss
from d2lcv.models.detection.ssd import SSD, ssd_targets

__all__ = ["ssd_step", "train_ssd"]


def _ssd_loss(model: SSD, batch: tuple[Tensor, list[dict[str, Tensor]]]) -> tuple[Tensor, dict[str, Tensor]]:
    images, targets = batch
    anchors, cls_logits, box_offsets = model(images)
    labels, offsets, mask = ssd_targets(anchors, targets, images.shape[-2:])
    loss, cls_loss, box_loss = ssd_loss(cls_logits, box_offsets, labels, offsets, mask)
    return loss, {"cls_loss": cls_loss, "box_loss": box_loss}


def _move_images(batch: tuple[Tensor, Any], device: torch.device) -> tuple[Tensor, Any]:
    images, targets = batch
    return images.to(device), targets  # ssd_targets pads the targets on the CPU and moves them itself


class _Batches:
    """``loader``, iterated only when the loop asks for batches: a progress bar's own
    ``iter()`` of it starts nothing (no extra DataLoader seed drawn from torch's RNG), as in
    the book's original SSD loop."""

    def __init__(self, loader: Iterable) -> None:
        self.loader = loader

    def __len__(self) -> int:
        return len(self.loader)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[Any]:
        yield from self.loader


def ssd_step() -> LossStep:
    """SSD's training step: the batch ``(images Tensor[B, 3, H, W], targets: B dicts of
    boxes Tensor[G_i, 4] xyxy pixels and labels Tensor[G_i])`` through the model, anchor
    targets (:func:`~d2lcv.models.detection.ssd.ssd_targets`) and the multibox loss
    (:func:`~d2lcv.losses.detection.ssd_loss`). Reports ``loss``, ``cls_loss`` and
    ``box_loss``, means over images."""
    return LossStep(_ssd_loss, move=_move_images)


def _check_stages(
    epochs: int, stop_after: int | None, checkpoint: str | Path | None, resume_from: str | Path | None
) -> None:
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    if stop_after is not None and not 1 <= stop_after <= epochs:
        raise ValueError(f"stop_after must be in 1..epochs={epochs}, got {stop_after}")
    if resume_from is not None and checkpoint is None:
        raise ValueError("resume_from needs a checkpoint to continue into; got checkpoint=None")


def _start_from(checkpoint: str | Path, resume_from: str | Path | None) -> None:
    """Create the checkpoint's folder; copy ``resume_from`` (an earlier stage) to
    ``checkpoint`` if only the earlier stage exists, leaving it as it was."""
    Path(checkpoint).parent.mkdir(parents=True, exist_ok=True)
    if resume_from is not None and not Path(checkpoint).exists() and Path(resume_from).exists():
        shutil.copyfile(resume_from, checkpoint)


def train_ssd(
    model: SSD, loader: Iterable, *, epochs: int, lr: float = 3e-3,
    weight_decay: float = 5e-4, device: torch.device | str | None = None,
    progress: bool = True, history: History | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    checkpoint: str | Path | None = None, stop_after: int | None = None,
    resume_from: str | Path | None = None,
) -> History:
    """Train an SSD with AdamW and a one-cycle learning rate over ``epochs`` epochs.

    Args:
        model: the SSD.
        loader: batches ``(images Tensor[B, 3, H, W] float, targets list of dict(boxes, labels))``,
            e.g. a ``DataLoader`` with :func:`~d2lcv.data.detection_collate`.
        epochs: passes over ``loader`` (the length of the one-cycle schedule).
        lr: the peak learning rate; weight_decay: AdamW's.
        device: where to train (default :func:`d2lcv.config.try_device`; full precision, as
            the book's numbers were made).
        progress: show progress bars.
        history, optimizer: pass the ones of an earlier call to continue a run (the schedule
            restarts; the epochs are numbered on). Without ``checkpoint`` only.
        checkpoint: a file (e.g. :func:`~d2lcv.recipes.yolo_checkpoint`): the model,
            optimizer, schedule and history are saved there after every epoch, and a call
            that finds the file continues from it (``history`` is then ignored): one
            schedule can be trained across several calls, or several notebooks, and a
            staged run equals a continuous one (as :func:`~d2lcv.recipes.train_yolo`).
        stop_after: end this call after that many epochs of the schedule (default: all).
        resume_from: an earlier stage's checkpoint (e.g. saved with ``stop_after``) to
            start from when ``checkpoint`` does not exist yet; it is copied, not changed.

    Returns:
        The :class:`~d2lcv.engine.History` (``history`` itself when given without
        ``checkpoint``): per epoch ``train_loss``, ``train_cls_loss``, ``train_box_loss``,
        ``lr`` and ``time`` (seconds; with a checkpoint, of every stage so far).
    """
    _check_stages(epochs, stop_after, checkpoint, resume_from)
    device = try_device() if device is None else torch.device(device)
    model.to(device)
    opt = optimizer or AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    steps = epochs * len(loader)  # type: ignore[arg-type]
    sched = OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.15)
    history = history if history is not None else History()
    end = stop_after or epochs
    if checkpoint is not None:  # the epochs done are in the file
        _start_from(checkpoint, resume_from)
    else:
        end += history.epochs_done
    return fit(model, _Batches(loader), epochs=end, step=ssd_step(), optimizer=opt,
               scheduler=sched, scheduler_interval="batch", device=device, amp=False,
               progress=progress, history=history,
               checkpoint=checkpoint, resume=checkpoint is not None)
