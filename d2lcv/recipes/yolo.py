"""The YOLO chapter's training recipe: a :class:`~d2lcv.engine.LossStep` per YOLO
version over :func:`d2lcv.engine.fit` (the same loop as SSD's
:func:`~d2lcv.recipes.train_ssd`)."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.optim import AdamW
from torch.optim.lr_scheduler import OneCycleLR

from d2lcv.config import try_device
from d2lcv.data.cache import cache_dir
from d2lcv.engine import History, LossStep, fit
from d2lcv.losses.yolo import yolo_v1_loss, yolo_v3_loss
from d2lcv.models.detection.ssd import pad_targets
from d2lcv.models.detection.yolo import TinyYOLOv3, YOLOv1
from d2lcv.ops.yolo import yolo_v1_targets
from d2lcv.ops.yolo_anchors import yolo_v3_targets

__all__ = ["yolo_loss", "yolo_step", "train_yolo", "yolo_checkpoint"]

Batch = tuple[Tensor, list[dict[str, Tensor]]]


def yolo_loss(
    model: YOLOv1 | TinyYOLOv3, batch: Batch, **kwargs: Any
) -> tuple[Tensor, dict[str, Tensor]]:
    """The loss of a batch ``(images, targets: dicts of boxes in pixels and labels)``:
    targets padded and normalised, assigned (v1 grid or v3 anchors), then the version's
    loss (``kwargs`` go to it). Returns ``(loss, parts)``."""
    images, targets = batch
    gt_boxes, gt_labels = (
        t.to(images.device) for t in pad_targets(targets, images.shape[-2:])
    )
    if isinstance(model, YOLOv1):
        target, _ = yolo_v1_targets(gt_boxes, gt_labels, model.grid, model.num_classes)
        return yolo_v1_loss(model(images), target, model.num_boxes, **kwargs)
    pred, priors = model(images)
    S = [
        int(s) for s in priors[:, 2].unique_consecutive().tolist()
    ]  # grid of each scale
    assigned = yolo_v3_targets(gt_boxes, gt_labels, model.anchors, S, model.num_classes)
    return yolo_v3_loss(pred, priors, assigned, **kwargs)


def _move_images(batch: Batch, device: torch.device) -> Batch:
    images, targets = batch
    return images.to(device), targets  # the targets are padded and moved in yolo_loss


class _Batches:
    """``loader``, iterated only when the loop asks for batches (as in the SSD
    recipe)."""

    def __init__(self, loader: Iterable) -> None:
        self.loader = loader

    def __len__(self) -> int:
        return len(self.loader)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[Any]:
        yield from self.loader


def yolo_step(**loss_kwargs: Any) -> LossStep:
    """A YOLO training step (v1 or v3 by the model's class): reports ``loss`` and its
    parts (``box``, ``obj``, ``cls``, and v1's ``noobj``), means over images."""
    return LossStep(
        lambda model, batch: yolo_loss(model, batch, **loss_kwargs), move=_move_images
    )


def yolo_checkpoint(name: str, settings: Mapping[str, Any]) -> Path:
    """Where a training run of :func:`train_yolo` is cached across pages:
    ``<cache>/yolo/<name>-<hash of settings>.pt`` (:func:`d2lcv.data.cache_dir`).

    Args:
        name: e.g. ``"tiny-v3-cpu"``.
        settings: everything the run depends on (JSON-able: sizes, widths, epochs,
            learning rate, seed), so that changing one of them starts a new run
            instead of resuming an unrelated one.
    """
    if not name or "/" in name:
        raise ValueError(
            f"name must be a non-empty file name without '/', got {name!r}"
        )
    text = json.dumps(dict(settings), sort_keys=True, default=str)
    key = hashlib.sha256(text.encode()).hexdigest()[:10]
    return cache_dir() / "yolo" / f"{name}-{key}.pt"


def _check_train(
    model: nn.Module,
    epochs: int,
    stop_after: int | None,
    checkpoint: str | Path | None,
    resume_from: str | Path | None,
) -> None:
    if resume_from is not None and checkpoint is None:
        raise ValueError(
            "resume_from needs a checkpoint to continue into; got checkpoint=None"
        )
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    if stop_after is not None and not 1 <= stop_after <= epochs:
        raise ValueError(f"stop_after must be in 1..epochs={epochs}, got {stop_after}")
    if not isinstance(model, (YOLOv1, TinyYOLOv3)):
        raise ValueError(
            f"model must be a YOLOv1 or a TinyYOLOv3, got {type(model).__name__}"
        )


def _start_from(checkpoint: Path, resume_from: str | Path | None) -> None:
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    if resume_from is None or checkpoint.exists() or not Path(resume_from).exists():
        return
    shutil.copyfile(resume_from, checkpoint)


def train_yolo(
    model: nn.Module,
    loader: Iterable,
    *,
    epochs: int,
    lr: float = 3e-3,
    weight_decay: float = 5e-4,
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
    AdamW and a one-cycle learning rate, as :func:`~d2lcv.recipes.train_ssd` trains SSD.

    Args:
        model: the YOLO. loader: batches ``(images Tensor[B, 3, H, W] float, targets)``,
            e.g. a ``DataLoader`` with :func:`~d2lcv.data.detection_collate`.
        epochs: passes over ``loader`` (the length of the one-cycle schedule); lr: the
            peak learning rate; weight_decay: AdamW's.
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
    _check_train(model, epochs, stop_after, checkpoint, resume_from)
    device = try_device() if device is None else torch.device(device)
    model.to(device)
    opt = optimizer or AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    steps = epochs * len(loader)  # type: ignore[arg-type]
    sched = OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.15)
    history = history if history is not None else History()
    end = stop_after or epochs
    if checkpoint is not None:
        _start_from(Path(checkpoint), resume_from)
    return fit(
        model,
        _Batches(loader),
        epochs=end if checkpoint is not None else history.epochs_done + end,
        step=yolo_step(**loss_kwargs),
        optimizer=opt,
        scheduler=sched,
        scheduler_interval="batch",
        device=device,
        amp=False,
        progress=progress,
        history=history,
        checkpoint=checkpoint,
        resume=checkpoint is not None,
    )
