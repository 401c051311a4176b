"""Layer 6, recipes: each chapter's training protocol, a thin function over
:func:`d2lcv.engine.fit` (a step, an optimiser, a schedule, callbacks)."""

from __future__ import annotations

from .augmentation import cifar_experiment_data, compare_pipelines, train_with_pipeline
from .detection import ssd_step, train_ssd
from .finetune import eval_loader, fit_target, input_transform, train_loader
from .finetune_source import (
    SOURCE_CLASSES,
    TARGET_CLASSES,
    Source,
    SourceConfig,
    load_source,
    pretrain_source,
    source_cache_path,
)
from .style import StyleResult, stylize, train_transform_net
from .style_network import RANDOM_STYLE_LAYERS, StyleNetwork, style_network

__all__ = [
    "train_with_pipeline", "cifar_experiment_data", "compare_pipelines",
    "train_ssd", "ssd_step",
    "SOURCE_CLASSES", "TARGET_CLASSES", "SourceConfig", "Source", "source_cache_path", "pretrain_source",
    "load_source", "input_transform", "eval_loader", "train_loader", "fit_target",
    "StyleResult", "stylize", "train_transform_net",
    "RANDOM_STYLE_LAYERS", "StyleNetwork", "style_network",
]
