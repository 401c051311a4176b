"""The YOLO chapter's training recipe: a :class:`~d2lcv.engine.LossStep` per YOLO
version over :func:`d2lcv.engine.fit_staged` (the same as SSD's
:func:`~d2lcv.recipes.train_ssd`), with the bag of freebies as options: a learning-rate
``schedule``, a ``batch_transform`` (mixup with boxes, multi-scale batches) and label
smoothing."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from d2lcv.engine import History, LossStep, fit_staged, move_images, run_checkpoint
from d2lcv.losses.yolo import yolo_v1_loss, yolo_v3_loss
from d2lcv.models.detection.ssd import pad_targets, pad_weights
from d2lcv.models.detection.yolo import TinyYOLOv3, YOLOv1
from d2lcv.ops.yolo import yolo_v1_targets
from d2lcv.ops.yolo_anchors import yolo_v3_targets

__all__ = ["yolo_loss", "yolo_step", "train_yolo", "yolo_checkpoint"]

Batch = tuple[Tensor, list[dict[str, Tensor]]]
BatchTransform = Callable[[Tensor, list[dict[str, Tensor]]], Batch]


def yolo_loss(
    model: YOLOv1 | TinyYOLOv3, batch: Batch, **kwargs: Any
) -> tuple[Tensor, dict[str, Tensor]]:
    """The loss of a batch ``(images, targets: dicts of boxes in pixels and labels)``:
    targets padded and normalised, assigned (v1 grid or v3 anchors), then the version's
    loss (``kwargs`` go to it). Targets with ``weights`` (mixup) weight v3's loss.
    Returns ``(loss, parts)``."""
    images, targets = batch
    gt_boxes, gt_labels = (
        t.to(images.device) for t in pad_targets(targets, images.shape[-2:])
    )
    if isinstance(model, YOLOv1):
        if any("weights" in t for t in targets):
            raise ValueError("targets with 'weights' (mixup) need a TinyYOLOv3; "
                             "YOLO v1's loss has no per-object weights")
        target, _ = yolo_v1_targets(gt_boxes, gt_labels, model.grid, model.num_classes)
        return yolo_v1_loss(model(images), target, model.num_boxes, **kwargs)
    pred, priors = model(images)
    S = [
        int(s) for s in priors[:, 2].unique_consecutive().tolist()
    ]  # grid of each scale
    weights = None
    if any("weights" in t for t in targets):
        weights = pad_weights(targets).to(images.device)
    assigned = yolo_v3_targets(
        gt_boxes, gt_labels, model.anchors, S, model.num_classes, weights
    )
    return yolo_v3_loss(pred, priors, assigned, **kwargs)


def yolo_step(
    batch_transform: BatchTransform | None = None, **loss_kwargs: Any
) -> LossStep:
    """A YOLO training step (v1 or v3 by the model's class): reports ``loss`` and its
    parts (``box``, ``obj``, ``cls``, and v1's ``noobj``), means over images.
    ``batch_transform(images, targets)`` is applied to training batches only (e.g.
    :class:`~d2lcv.transforms.DetectionMixUp`)."""

    def loss(model: nn.Module, batch: Batch) -> tuple[Tensor, dict[str, Tensor]]:
        if batch_transform is not None and model.training:
            batch = batch_transform(*batch)
        return yolo_loss(model, batch, **loss_kwargs)

    return LossStep(loss, move=move_images)


def yolo_checkpoint(name: str, settings: Mapping[str, Any]) -> Path:
    """Where a training run of :func:`train_yolo` (or SSD's) is cached across pages:
    ``<cache>/yolo/<name>-<hash of settings>.pt`` (:func:`d2lcv.engine.run_checkpoint`).

    Args:
        name: e.g. ``"tiny-v3-cpu"``.
        settings: everything the run depends on (JSON-able: sizes, widths, epochs,
            learning rate, seed), so that changing one of them starts a new run
            instead of resuming an unrelated one.
    """
    return run_checkpoint(name, settings, folder="yolo")


def train_yolo(
    model: nn.Module,
    loader: Iterable,
    *,
    epochs: int,
    lr: float = 3e-3,
    weight_decay: float = 5e-4,
    schedule: str = "one-cycle",
    batch_transform: BatchTransform | None = None,
    device: torch.device | str | None = None,
    progress: bool = True,
    history: History | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    checkpoint: str | Path | None = None,
    stop_after: int | None = None,
    resume_from: str | Path | None = None,
    **loss_kwargs: Any,
) -> History:
    """Train a :class:`~d2lcv.models.YOLOv1` or :class:`~d2lcv.models.TinyYOLOv3` with
    AdamW and a per-step learning-rate schedule, as :func:`~d2lcv.recipes.train_ssd`
    trains SSD (:func:`~d2lcv.engine.fit_staged`).

    Args:
        model: the YOLO. loader: batches ``(images Tensor[B, 3, H, W] float, targets)``,
            e.g. a ``DataLoader`` with :func:`~d2lcv.data.detection_collate`.
        epochs: passes over ``loader`` (the length of the schedule); lr: the peak
            learning rate; weight_decay: AdamW's.
        schedule: ``"one-cycle"`` (default), ``"cosine"`` or ``"step"``
            (:func:`~d2lcv.engine.make_schedule`).
        batch_transform: applied to every training batch, e.g.
            :class:`~d2lcv.transforms.DetectionMixUp` or
            :class:`~d2lcv.transforms.RandomResize`.
        device, progress, history, optimizer: as in :func:`~d2lcv.recipes.train_ssd`.
        checkpoint: a file (e.g. :func:`yolo_checkpoint`): the model, optimizer,
            schedule and history are saved there after every epoch, and a run that finds
            the file continues from it (``history`` is then ignored): one schedule
            can be trained across several calls, or several notebooks.
        stop_after: end this call after that many epochs of the schedule (default: all).
        resume_from: another run's checkpoint (e.g. saved with ``stop_after``) to
            start from when ``checkpoint`` does not exist yet; it is copied, not
            changed, so the earlier stage stays as it was.
        loss_kwargs: to the loss (e.g. ``label_smoothing=0.1`` for v3).

    Returns:
        The :class:`~d2lcv.engine.History`: per epoch ``train_loss`` and
        ``train_<part>``, ``lr`` and ``time``.
    """
    if not isinstance(model, (YOLOv1, TinyYOLOv3)):
        raise ValueError(
            f"model must be a YOLOv1 or a TinyYOLOv3, got {type(model).__name__}"
        )
    if batch_transform is not None and not callable(batch_transform):
        raise ValueError(
            f"batch_transform must be callable, got {type(batch_transform).__name__}"
        )
    return fit_staged(
        model, loader, yolo_step(batch_transform, **loss_kwargs), epochs=epochs, lr=lr,
        weight_decay=weight_decay, schedule=schedule, device=device, progress=progress,
        history=history, optimizer=optimizer, checkpoint=checkpoint,
        stop_after=stop_after, resume_from=resume_from,
    )
