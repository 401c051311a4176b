"""Layer 6, recipes: each chapter's training protocol, a thin function over
:func:`d2lcv.engine.fit` (a step, an optimiser, a schedule, callbacks)."""

from __future__ import annotations

from .augmentation import cifar_experiment_data, compare_pipelines, train_with_pipeline
from .classic import baseline_results, cifar_model, cifar_tensors, model_row, table_rows, train_classifier
from .detection import ssd_batch_loss, ssd_step, train_ssd
from .yolo import train_yolo, yolo_checkpoint, yolo_loss, yolo_step
from .yolo_freebies import FREEBIES, TinyYoloRun, freebie_options, freebie_trial, tiny_yolo_run
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
from .gan import GANRun, plane_grid, train_gan, train_toy_gan
from .gan_emoji import (
    EMOJI_GROUPS,
    EMOJI_MEMBER,
    classifier_features,
    emoji_base,
    emoji_groups,
    emoji_images,
    split_by_base,
)
from .rnn import hidden_gradient_norms, scale_spectral_radius, timemachine_lm_data, train_lm
from .reading import (
    NO_DIGIT,
    ctc_targets,
    decode_ctc,
    decode_positions,
    load_reader,
    position_correct,
    position_loss,
    position_targets,
    read_numbers,
    reader_checkpoint,
    reader_loader,
    save_reader,
    train_reader,
    trained_reader,
)
from .style import StyleResult, stylize, train_transform_net
from .style_network import RANDOM_STYLE_LAYERS, StyleNetwork, style_network

__all__ = [
    "train_with_pipeline", "cifar_experiment_data", "compare_pipelines",
    "cifar_model", "cifar_tensors", "train_classifier", "model_row", "table_rows", "baseline_results",
    "train_ssd", "ssd_step", "ssd_batch_loss", "yolo_loss", "yolo_step", "train_yolo", "yolo_checkpoint",
    "FREEBIES", "freebie_options", "freebie_trial", "TinyYoloRun", "tiny_yolo_run",
    "SOURCE_CLASSES", "TARGET_CLASSES", "SourceConfig", "Source", "source_cache_path", "pretrain_source",
    "load_source", "input_transform", "eval_loader", "train_loader", "fit_target",
    "StyleResult", "stylize", "train_transform_net",
    "GANRun", "train_toy_gan", "train_gan", "plane_grid",
    "emoji_images", "emoji_base", "EMOJI_GROUPS", "EMOJI_MEMBER", "emoji_groups", "split_by_base", "classifier_features",
    "RANDOM_STYLE_LAYERS", "StyleNetwork", "style_network",
    "timemachine_lm_data", "train_lm", "hidden_gradient_norms", "scale_spectral_radius",
    "NO_DIGIT", "ctc_targets", "position_targets", "decode_ctc", "decode_positions", "position_loss",
    "position_correct", "reader_loader", "train_reader", "read_numbers", "reader_checkpoint", "save_reader",
    "load_reader", "trained_reader",
]
