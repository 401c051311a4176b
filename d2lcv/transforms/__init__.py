"""Layer 2, transforms: classification pipelines and Cutout, label mixing (mixup, CutMix,
RICAP), box-aware detection pipelines and batch augmentations (mixup with boxes,
multi-scale), test-time augmentation, normalisation statistics.

``from d2lcv.transforms import cifar_pipeline, CutMix, detection_transforms`` works for
every public name.
"""

from __future__ import annotations

from .classification import PIPELINES, Cutout, cifar_pipeline, cutout
from .detection import apply_detection_transform, detection_transforms, ssd_transforms
from .detection_batch import DetectionMixUp, RandomResize, detection_mixup, random_resize
from .functional import image_tensor
from .mixing import cutmix, cutmix_box, mixup, ricap
from .mixing_modules import RICAP, CutMix, MixedBatches, MixUp, MixUpOrCutMix
from .stats import CIFAR10_MEAN, CIFAR10_STD, IMAGENET_MEAN, IMAGENET_STD
from .tta import MODES, predict_tta, ten_crop, tta_views

__all__ = [
    "CIFAR10_MEAN", "CIFAR10_STD", "IMAGENET_MEAN", "IMAGENET_STD",
    "PIPELINES", "cutout", "Cutout", "cifar_pipeline", "image_tensor",
    "mixup", "cutmix", "cutmix_box", "ricap", "MixUp", "CutMix", "RICAP", "MixUpOrCutMix", "MixedBatches",
    "detection_transforms", "ssd_transforms", "apply_detection_transform",
    "detection_mixup", "random_resize", "DetectionMixUp", "RandomResize",
    "MODES", "ten_crop", "tta_views", "predict_tta",
]
