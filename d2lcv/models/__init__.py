"""Layer 4, models: classifiers for 32x32 images, SSD, the style-transfer networks, model
surgery for fine-tuning, and torchvision's pretrained weights through the data cache.

``from d2lcv.models import resnet_cifar, SSD, freeze`` works; the submodules are
:mod:`~d2lcv.models.classification`, :mod:`~d2lcv.models.detection.ssd`,
:mod:`~d2lcv.models.style`, :mod:`~d2lcv.models.finetune` and :mod:`~d2lcv.models.weights`.
"""

from __future__ import annotations

from .classification import BasicBlock, ResNetCIFAR, SimpleCNN, resnet_cifar
from .detection.ssd import SSD
from .fastnet import FastNet, fastnet
from .finetune import (
    check_stages,
    freeze,
    frozen_stages,
    get_head,
    init_head_from_source,
    map_class_rows,
    replace_head,
    stage_names,
    unfreeze,
)
from .style import FeatureExtractor, TransformNet, normalize_filters_, vgg_layer_names
from .weights import (
    PretrainedWeightsWarning,
    WeightsUnavailableError,
    load_pretrained,
    pretrained_transforms,
    resolve_weights,
    weights_path,
)

__all__ = [
    "SimpleCNN", "BasicBlock", "ResNetCIFAR", "resnet_cifar",
    "FastNet", "fastnet",
    "SSD",
    "vgg_layer_names", "FeatureExtractor", "normalize_filters_", "TransformNet",
    "stage_names", "check_stages", "freeze", "unfreeze", "frozen_stages", "get_head", "replace_head",
    "map_class_rows", "init_head_from_source",
    "load_pretrained", "pretrained_transforms", "resolve_weights", "weights_path",
    "PretrainedWeightsWarning", "WeightsUnavailableError",
]
