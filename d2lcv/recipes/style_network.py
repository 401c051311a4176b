"""The loss network both style-transfer chapters use: VGG-19 features, calibrated."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from d2lcv.losses.style import CONTENT_LAYER, STYLE_LAYERS
from d2lcv.models.style import FeatureExtractor, normalize_filters_
from d2lcv.models.weights import load_pretrained

__all__ = ["RANDOM_STYLE_LAYERS", "StyleNetwork", "style_network"]

RANDOM_STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
"""The style layers with random weights: ``relu5_1``'s maps are a few pixels wide at the
book's image sizes, and zero padding dominates them."""


@dataclass
class StyleNetwork:
    """A calibrated feature network and what it was built from.

    Attributes:
        extractor: returns ``content_layer`` and ``style_layers``.
        content_layer, style_layers: the layers the losses use.
        description: which weights (torchvision's ImageNet weights, or a named fallback).
        pretrained: whether the weights are ImageNet's.
    """

    extractor: FeatureExtractor
    content_layer: str
    style_layers: tuple[str, ...]
    description: str
    pretrained: bool


def style_network(
    calibration: Tensor, *, vgg: nn.Module | None = None, pool: str = "avg"
) -> StyleNetwork:
    """VGG-19 as Gatys et al. use it, on any machine.

    With ImageNet weights (torchvision's, where they can be had): Gatys et al.'s layers,
    every filter rescaled to a mean activation of 1 over ``calibration``. Without (offline,
    a warning says so): random weights (He, Wang & Hopcroft, 2016), each *layer* rescaled
    as a whole (per-filter factors of random filters span orders of magnitude) and
    :data:`RANDOM_STYLE_LAYERS`.

    Args:
        calibration (Tensor[B, 3, H, W]): images in [0, 1] to rescale the filters on.
        vgg: a VGG-19 already loaded with :func:`d2lcv.models.load_pretrained` (its
            features are rescaled in place); None loads one.
        pool: ``"avg"`` (Gatys et al.) or ``"max"``.
    """
    if vgg is None:
        vgg = load_pretrained("vgg19", fallback="random")
    description = getattr(vgg, "d2lcv_weights", "unknown weights")
    pretrained = not description.startswith("fallback")
    style_layers = STYLE_LAYERS if pretrained else RANDOM_STYLE_LAYERS
    extractor = FeatureExtractor(
        vgg.features, [CONTENT_LAYER, *style_layers], pool=pool
    )
    normalize_filters_(extractor, calibration, per="filter" if pretrained else "layer")
    return StyleNetwork(
        extractor, CONTENT_LAYER, tuple(style_layers), description, pretrained
    )
