"""Layer 5, the engine: one training loop for every chapter.

:func:`fit` runs epochs of a pluggable :class:`Step` (classification by default) with
mixed precision, clipping, schedules, checkpoints, callbacks and ``torchrun``;
:func:`evaluate` and :func:`predict` restore the model's mode; :class:`History` holds the
per-epoch numbers. Importing it has no side effects (matplotlib loads only for ``plot=True``).
"""

from __future__ import annotations

from d2lcv.metrics.classification import num_correct

from .callbacks import Callback, LivePlot, Snapshots, StepLog
from .checkpoint import load_checkpoint, save_checkpoint
from .context import Context, amp_setup
from .distributed import (
    all_reduce_sum,
    is_distributed,
    is_main_process,
    make_loader,
    resolve_device,
    unwrap,
)
from .evaluate import eval_mode, evaluate, predict
from .gan import GAN_OBJECTIVES, GANStep
from .history import History
from .loop import fit
from .optim import param_groups
from .pixels import ClosureStep, Pixels
from .sequence import CTCStep, TBPTTStep, clip_grad_norm, detach_state
from .staged import SCHEDULES, LazyBatches, fit_staged, make_schedule, move_images, run_checkpoint
from .steps import LossStep, Step, StepOutput, SupervisedStep

__all__ = [
    "fit", "History", "evaluate", "predict", "eval_mode",
    "Step", "StepOutput", "SupervisedStep", "LossStep", "ClosureStep", "Pixels", "GANStep", "TBPTTStep",
    "GAN_OBJECTIVES",
    "detach_state", "clip_grad_norm", "CTCStep", "Context", "amp_setup",
    "Callback", "LivePlot", "StepLog", "Snapshots",
    "save_checkpoint", "load_checkpoint",
    "is_distributed", "is_main_process", "unwrap", "resolve_device", "all_reduce_sum", "make_loader",
    "param_groups", "num_correct",
    "fit_staged", "make_schedule", "SCHEDULES", "run_checkpoint", "LazyBatches", "move_images",
]
