"""The bag-of-freebies experiment of the YOLO chapter: each freebie switched on alone in
the same short continuation of a cached training run, several seeds, results cached.

A *trial* loads a checkpoint of :func:`~d2lcv.recipes.train_yolo` (model and AdamW
state), trains ``epochs`` more epochs from it with the baseline recipe (step schedule,
one input size, hard class targets, no mixup) or with one freebie, and measures mAP on a
validation set. The seed sets the data order and the freebie's own randomness; the start
is the same for every trial, so two trials with the same seed differ only by the freebie.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from d2lcv.config import seed_everything
from d2lcv.data.detection import EmojiDetection, detection_collate
from d2lcv.data.emoji_scenes import SceneSettings
from d2lcv.engine import load_checkpoint, save_checkpoint
from d2lcv.metrics import evaluate_detections
from d2lcv.models.detection.yolo import TinyYOLOv3, yolo_detect
from d2lcv.ops import kmeans_anchors
from d2lcv.transforms import DetectionMixUp, RandomResize, detection_transforms
from d2lcv.utils.io import atomic_write

from .yolo import train_yolo, yolo_checkpoint

__all__ = ["FREEBIES", "freebie_options", "freebie_trial", "TinyYoloRun", "tiny_yolo_run"]

FREEBIES = ("baseline", "cosine schedule", "label smoothing", "mixup", "multi-scale")
"""The trials: the baseline, then each freebie of Zhang et al. (2019) alone."""


def freebie_options(
    name: str, seed: int, sizes: Sequence[int] = (128, 160, 192, 224, 256)
) -> dict[str, Any]:
    """:func:`~d2lcv.recipes.train_yolo`'s options for trial ``name`` (one of
    :data:`FREEBIES`); ``sizes`` are multi-scale's input sides."""
    g = torch.Generator().manual_seed(seed)
    options: dict[str, Any] = {"schedule": "step"}  # the baseline
    if name == "cosine schedule":
        options["schedule"] = "cosine"
    elif name == "label smoothing":
        options["label_smoothing"] = 0.1
    elif name == "mixup":
        options["batch_transform"] = DetectionMixUp(alpha=1.5, generator=g)
    elif name == "multi-scale":
        options["batch_transform"] = RandomResize(sizes, generator=g)
    elif name != "baseline":
        raise ValueError(f"name must be one of {FREEBIES}, got {name!r}")
    return options


def _result(model: TinyYOLOv3, val_set: Dataset, device: torch.device | str | None,
            seconds: float, final_loss: float) -> dict[str, float]:
    r = evaluate_detections(yolo_detect(model, val_set, device=device),
                            val_set.targets, model.num_classes)  # type: ignore[attr-defined]
    return {"map50": float(r.map_50), "map": float(r.map), "map_small": float(r.map_small),
            "map_medium": float(r.map_medium), "map_large": float(r.map_large),
            "seconds": seconds, "train_loss": final_loss}


def freebie_trial(
    name: str,
    seed: int,
    *,
    make_model: Callable[[], TinyYOLOv3],
    start: str | Path,
    train_set: Dataset,
    val_set: Dataset,
    epochs: int,
    batch_size: int = 32,
    cache: str | Path | None = None,
    save_model: str | Path | None = None,
    device: torch.device | str | None = None,
    progress: bool = True,
) -> dict[str, float]:
    """Train trial ``name`` (one of :data:`FREEBIES`) with ``seed`` and measure it.

    Args:
        make_model: builds the untrained model (the architecture of ``start``).
        start: the checkpoint to continue (model and optimiser; its learning rate is
            the trial's peak).
        train_set, val_set: detection data sets (``val_set.targets``: boxes, labels).
        epochs: the trial's epochs; batch_size: its batches.
        cache: a JSON file of results by ``"<name>/<seed>"``: a trial found there is
            not trained again; a new one is added (written atomically).
        save_model: a file for the trained weights (:func:`~d2lcv.engine.save_checkpoint`;
            load them with :func:`~d2lcv.engine.load_checkpoint`); a cached trial whose
            file is missing is trained again.

    Returns:
        ``{"map50", "map", "map_small", "map_medium", "map_large", "seconds",
        "train_loss"}`` on ``val_set``.
    """
    key = f"{name}/{seed}"
    done = json.loads(Path(cache).read_text()) if cache and Path(cache).exists() else {}
    if key in done and (save_model is None or Path(save_model).exists()):
        return done[key]
    options = freebie_options(name, seed)
    torch.manual_seed(seed)
    model = make_model()
    opt = torch.optim.AdamW(model.parameters())
    load_checkpoint(start, model, opt)
    loader = DataLoader(train_set, batch_size=batch_size, shuffle=True,
                        collate_fn=detection_collate, generator=torch.Generator().manual_seed(seed))
    tic = time.perf_counter()
    history = train_yolo(model, loader, epochs=epochs, lr=opt.param_groups[0]["lr"],
                         optimizer=opt, device=device, progress=progress, **options)
    done[key] = _result(model, val_set, device, time.perf_counter() - tic,
                        history["train_loss"][-1])
    if save_model is not None:
        save_checkpoint(save_model, model)
    if cache:
        done = {**(json.loads(Path(cache).read_text()) if Path(cache).exists() else {}),
                key: done[key]}
        with atomic_write(cache, "w") as f:
            f.write(json.dumps(done, indent=1))
    return done[key]


@dataclass
class TinyYoloRun:
    """The chapter's tiny YOLO v3 on the hard emoji set (:func:`tiny_yolo_run`).

    Attributes:
        train_set, val_set: the hard set's splits (float images, no augmentation).
        classes: the class names; anchors (Tensor[3, 3, 2]): k-means anchors.
        settings: what names the run's checkpoints (:func:`yolo_checkpoint`).
        stage1: the checkpoint after the first ``stage1`` epochs of the schedule.
    """

    train_set: EmojiDetection
    val_set: EmojiDetection
    classes: list[str]
    anchors: torch.Tensor
    settings: dict[str, Any]
    stage1: Path
    widths: tuple[int, ...]
    convs: tuple[int, ...]
    neck: int

    def make_model(self) -> TinyYOLOv3:
        """A fresh (untrained) model of the run's architecture."""
        return TinyYOLOv3(len(self.classes), self.anchors, widths=self.widths,
                          convs=self.convs, neck=self.neck)


def tiny_yolo_run(
    cfg: Mapping[str, Any],
    *,
    device: torch.device | str | None = None,
    progress: bool = True,
) -> TinyYoloRun:
    """The data, anchors and first training stage of the YOLO chapter's tiny v3, as the
    chapter's first training page builds them; the stage is trained (and cached) only
    if its checkpoint is missing.

    Args:
        cfg: ``profile, sizes, widths, convs, neck, batch_size, lr, epochs, stage1,
            seed`` (any other keys are ignored), the chapter's settings.
    """
    keys = ("profile", "sizes", "widths", "convs", "neck", "batch_size", "lr", "epochs",
            "stage1", "seed")
    missing = [k for k in keys if k not in cfg]
    if missing:
        raise ValueError(f"cfg lacks {missing}; it needs {list(keys)}")
    c = {k: cfg[k] for k in keys}
    hard = SceneSettings.hard(sizes=c["sizes"])
    to_float = detection_transforms(False, hard.image_size)
    train_set = EmojiDetection("train", to_float, settings=hard)
    val_set = EmojiDetection("val", settings=hard)
    side = hard.image_size
    wh = torch.cat([(t["boxes"][:, 2:] - t["boxes"][:, :2]) / side for t in train_set.targets])
    g = torch.Generator().manual_seed(c["seed"])
    anchors = kmeans_anchors(wh, 9, generator=g).reshape(3, 3, 2)
    settings = {k: v for k, v in c.items() if k != "stage1"}
    settings.update(image_size=side, classes=len(train_set.classes))
    stage1 = yolo_checkpoint(f"tiny-v3-{c['profile']}-stage1", settings)
    run = TinyYoloRun(train_set, val_set, train_set.classes, anchors, settings, stage1,
                      tuple(c["widths"]), tuple(c["convs"]), c["neck"])
    if not stage1.exists():
        loader = DataLoader(train_set, batch_size=c["batch_size"], shuffle=True,
                            collate_fn=detection_collate,
                            generator=torch.Generator().manual_seed(c["seed"]))
        seed_everything(c["seed"])
        train_yolo(run.make_model(), loader, epochs=c["epochs"], lr=c["lr"], device=device,
                   progress=progress, checkpoint=stage1, stop_after=c["stage1"])
    return run
