"""The detection chapters' training recipe: SSD, a :class:`~d2lcv.engine.LossStep` over
:func:`d2lcv.engine.fit_staged`."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import torch
from torch import Tensor

from d2lcv.engine import History, LossStep, fit_staged, move_images
from d2lcv.losses.detection import ssd_loss
from d2lcv.models.detection.ssd import SSD, ssd_targets

__all__ = ["ssd_batch_loss", "ssd_step", "train_ssd"]


def ssd_batch_loss(
    model: SSD, batch: tuple[Tensor, list[dict[str, Tensor]]]
) -> tuple[Tensor, dict[str, Tensor]]:
    """The multibox loss of a batch ``(images, targets)``: the anchors labelled
    (:func:`~d2lcv.models.detection.ssd.ssd_targets`), then
    :func:`~d2lcv.losses.detection.ssd_loss`. Returns ``(loss, {cls_loss, box_loss})``."""
    images, targets = batch
    anchors, cls_logits, box_offsets = model(images)
    labels, offsets, mask = ssd_targets(anchors, targets, images.shape[-2:])
    loss, cls_loss, box_loss = ssd_loss(cls_logits, box_offsets, labels, offsets, mask)
    return loss, {"cls_loss": cls_loss, "box_loss": box_loss}


def ssd_step() -> LossStep:
    """SSD's training step: the batch ``(images Tensor[B, 3, H, W], targets: B dicts of
    boxes Tensor[G_i, 4] xyxy pixels and labels Tensor[G_i])`` through the model, anchor
    targets (:func:`~d2lcv.models.detection.ssd.ssd_targets`) and the multibox loss
    (:func:`~d2lcv.losses.detection.ssd_loss`). Reports ``loss``, ``cls_loss`` and
    ``box_loss``, means over images."""
    return LossStep(ssd_batch_loss, move=move_images)


def train_ssd(
    model: SSD, loader: Iterable, *, epochs: int, lr: float = 3e-3,
    weight_decay: float = 5e-4, device: torch.device | str | None = None,
    progress: bool = True, history: History | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    checkpoint: str | Path | None = None, stop_after: int | None = None,
    resume_from: str | Path | None = None,
) -> History:
    """Train an SSD with AdamW and a one-cycle learning rate over ``epochs`` epochs
    (:func:`~d2lcv.engine.fit_staged` with :func:`ssd_step`).

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
        checkpoint: a file (e.g. :func:`~d2lcv.engine.run_checkpoint`): the model,
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
    return fit_staged(model, loader, ssd_step(), epochs=epochs, lr=lr, weight_decay=weight_decay,
                      device=device, progress=progress, history=history, optimizer=optimizer,
                      checkpoint=checkpoint, stop_after=stop_after, resume_from=resume_from)
