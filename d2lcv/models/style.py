"""Networks for neural style transfer: VGG features by layer name, and a feed-forward
transform network.

* :func:`vgg_layer_names` names the layers of a VGG ``features`` stack ``conv1_1``,
  ``relu1_1``, ..., ``pool5``, and :class:`FeatureExtractor` returns the chosen ones in one
  forward pass (images in [0, 1], normalised inside).
* :func:`normalize_filters_` rescales every filter so that its mean activation over some
  images is 1, as Gatys et al. did with VGG-19; it also makes a *random-weight* VGG usable
  (He, Wang & Hopcroft, NeurIPS 2016), which is what an offline machine has.
* :class:`TransformNet` learns to stylise in one pass (Johnson et al.).

The losses are in :mod:`d2lcv.losses.style`, the optimisation loops in :mod:`d2lcv.recipes.style`.

References: Gatys, Ecker & Bethge, *Image style transfer using convolutional neural
networks*, CVPR 2016; Johnson, Alahi & Fei-Fei, *Perceptual losses for real-time style
transfer and super-resolution*, ECCV 2016; Ulyanov, Vedaldi & Lempitsky, *Instance
normalization*, 2016.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from d2lcv.transforms.stats import IMAGENET_MEAN, IMAGENET_STD

__all__ = ["vgg_layer_names", "FeatureExtractor", "normalize_filters_", "TransformNet"]


def vgg_layer_names(features: nn.Sequential) -> list[str]:
    """Names for the layers of a VGG ``features`` stack, as in the VGG papers' tables.

    Block ``b`` holds convolutions ``conv{b}_1, conv{b}_2, ...``, each followed by
    ``relu{b}_k``, and ends with ``pool{b}``. For VGG-19: ``conv1_1, relu1_1, conv1_2,
    relu1_2, pool1, conv2_1, ..., relu5_4, pool5`` (37 names).

    Raises:
        ValueError: a layer that is not a convolution, ReLU or pooling layer.
    """
    names, block, conv = [], 1, 0
    for i, module in enumerate(features):
        if isinstance(module, nn.Conv2d):
            conv += 1
            names.append(f"conv{block}_{conv}")
        elif isinstance(module, nn.ReLU):
            names.append(f"relu{block}_{conv}")
        elif isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
            names.append(f"pool{block}")
            block, conv = block + 1, 0
        else:
            raise ValueError(
                f"layer {i} is a {type(module).__name__}; a VGG stack has only "
                "Conv2d, ReLU and pooling"
            )
    return names


class FeatureExtractor(nn.Module):
    """The activations of chosen layers of a VGG ``features`` stack, in one forward pass.

    The stack is cut after the deepest chosen layer and frozen (its parameters are shared
    with ``features`` and stop requiring gradients); ReLUs are made out-of-place so that a
    ``conv`` output can be returned too.

    Args:
        features: e.g. ``torchvision.models.vgg19().features``.
        layers: names from :func:`vgg_layer_names`, e.g. ``("relu1_1", "relu4_2")``.
        pool: ``"max"`` keeps the network's pooling; ``"avg"`` replaces it by 2x2 average
            pooling, which Gatys et al. found gives smoother images.
        mean, std: input normalisation (the network's training statistics).

    Shapes: ``forward(x)`` takes x [B, 3, H, W] in [0, 1] and returns ``{name: Tensor[B, C, h, w]}``.
    """

    def __init__(
        self,
        features: nn.Sequential,
        layers: Sequence[str],
        *,
        pool: str = "max",
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
    ) -> None:
        super().__init__()
        names = vgg_layer_names(features)
        layers = list(dict.fromkeys(layers))
        if not layers:
            raise ValueError("layers is empty: name at least one layer, e.g. 'relu4_2'")
        missing = [name for name in layers if name not in names]
        if missing:
            raise ValueError(f"unknown layer(s) {missing}; this network has {', '.join(names)}")
        if pool not in ("max", "avg"):
            raise ValueError(f"pool must be 'max' or 'avg', got {pool!r}")
        last = max(names.index(name) for name in layers)
        body = nn.Sequential()
        for name, module in zip(names[: last + 1], features):
            if isinstance(module, nn.ReLU):
                module = nn.ReLU()
            elif name.startswith("pool") and pool == "avg":
                module = nn.AvgPool2d(2, 2)
            body.add_module(name, module)
        self.body = body.requires_grad_(False).eval()
        self.layers = tuple(layers)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(
                "x must be a batch of RGB images [B, 3, H, W] in [0, 1], got shape "
                f"{tuple(x.shape)}"
            )
        x = (x - self.mean) / self.std
        out = {}
        for name, module in self.body.named_children():
            x = module(x)
            if name in self.layers:
                out[name] = x
        return out


@torch.no_grad()
def normalize_filters_(
    extractor: FeatureExtractor, images: Tensor, *, per: str = "filter"
) -> FeatureExtractor:
    """Rescale each convolution filter (and bias) in place so that, over ``images``, the
    mean activation of its ReLU is 1 (Gatys et al., 2016), or that of its layer.

    Multiplying filter ``i`` of a layer by ``s_i > 0`` multiplies its ReLU's output by
    ``s_i``; dividing the next convolution's input channel ``i`` by ``s_i`` undoes that for
    the layers above. So every layer keeps the original network's pattern of activity,
    only rescaled channel by channel (ReLU and pooling commute with positive per-channel
    factors), and every layer then contributes on an equal footing to the losses.

    Args:
        extractor: its ``body`` is modified (and so is the network it shares weights with).
        images (Tensor[B, 3, H, W]): in [0, 1]; a few photos or paintings.
        per: ``"filter"``, one factor per filter (Gatys et al., for trained filters), or
            ``"layer"``, one factor per layer so that the layer's mean activation is 1. Use
            ``"layer"`` for random filters: many barely respond to natural images, and
            per-filter factors would then span orders of magnitude and make the network
            oversensitive to pixel noise.

    Returns:
        ``extractor``.
    """
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(
            f"images must be [B, 3, H, W] in [0, 1], got shape {tuple(images.shape)}"
        )
    if per not in ("filter", "layer"):
        raise ValueError(f"per must be 'filter' or 'layer', got {per!r}")
    x = (images - extractor.mean) / extractor.std
    previous = None  # the factors of the last convolution's output channels
    for module in extractor.body:
        if isinstance(module, nn.Conv2d):
            if previous is not None:  # compensate: this layer sees what it saw before
                module.weight.div_(previous.view(1, -1, 1, 1))
            mean_act = F.relu(module(x)).mean(dim=(0, 2, 3))  # [C_out]
            if per == "layer":
                mean_act = mean_act.mean().expand_as(mean_act)
            # dead filters stay
            scale = torch.where(mean_act > 0, 1 / mean_act, torch.ones_like(mean_act))
            module.weight.mul_(scale.view(-1, 1, 1, 1))
            if module.bias is not None:
                module.bias.mul_(scale)
            previous = scale
        x = module(x)
    return extractor


class _ConvLayer(nn.Sequential):
    """Reflection padding, convolution, and (unless last) instance norm and ReLU."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1, last: bool = False) -> None:
        layers: list[nn.Module] = [nn.ReflectionPad2d(kernel // 2), nn.Conv2d(c_in, c_out, kernel, stride)]
        if not last:
            layers += [nn.InstanceNorm2d(c_out, affine=True), nn.ReLU(inplace=True)]
        super().__init__(*layers)


class _ResidualBlock(nn.Module):
    """x + (conv 3x3, IN, ReLU, conv 3x3, IN)(x), as in Johnson et al.'s network."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _ConvLayer(c, c, 3),
            nn.ReflectionPad2d(1), nn.Conv2d(c, c, 3), nn.InstanceNorm2d(c, affine=True),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class TransformNet(nn.Module):
    """Johnson et al.'s image transformation network, with instance normalisation
    (Ulyanov et al.) and upsample-then-convolve in place of transposed convolutions.

    Shapes for x [B, 3, H, W] and ``width=w`` (H and W multiples of 4)::

        down   conv 9x9 -> [B, w, H, W]; conv 3x3 /2 -> [B, 2w, H/2, W/2]; /2 -> [B, 4w, H/4, W/4]
        res    n_residual blocks of two 3x3 convs at [B, 4w, H/4, W/4]
        up     upsample x2, conv 3x3 -> [B, 2w, H/2, W/2]; x2 -> [B, w, H, W]; conv 9x9 -> [B, 3, H, W]
        out    sigmoid(logit(x) + up), or sigmoid(up) if not residual: an image in [0, 1]

    Johnson et al. use ``width=32`` and 5 residual blocks (1.7 M parameters). One option
    of ours, ``residual=True`` (the default): the network predicts a change to the photo
    (in logit space) and its last convolution starts at zero, so the untrained network is
    the identity and even a short training run keeps the photo's content. With
    ``residual=False`` the output is ``sigmoid(up)``, a new image as in Johnson et al.
    (who squash with a tanh): the network must learn the content, but it can also repaint
    every pixel, which the residual form makes hard (it has to cancel the photo).

    Args:
        width: channels after the first convolution.
        n_residual: residual blocks.
        residual: add the output to the photo (in logit space) or not.
    """

    def __init__(
        self, width: int = 32, n_residual: int = 5, *, residual: bool = True
    ) -> None:
        super().__init__()
        if width < 1 or n_residual < 0:
            raise ValueError(
                f"width must be >= 1 and n_residual >= 0, got {width} and {n_residual}"
            )
        w = width
        self.down = nn.Sequential(
            _ConvLayer(3, w, 9),
            _ConvLayer(w, 2 * w, 3, 2),
            _ConvLayer(2 * w, 4 * w, 3, 2),
        )
        self.res = nn.Sequential(*[_ResidualBlock(4 * w) for _ in range(n_residual)])
        self.up = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="nearest"),
            _ConvLayer(4 * w, 2 * w, 3),
            nn.Upsample(scale_factor=2, mode="nearest"),
            _ConvLayer(2 * w, w, 3),
            _ConvLayer(w, 3, 9, last=True),
        )
        self.residual = residual
        if residual:  # start as the identity
            last = self.up[-1][-1]  # the final Conv2d
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1] != 3 or x.shape[2] % 4 or x.shape[3] % 4:
            raise ValueError(
                "x must be RGB images [B, 3, H, W] with H and W multiples of 4, got "
                f"shape {tuple(x.shape)} "
                f"(resize with d2lcv.transforms.image_tensor)"
            )
        out = self.up(self.res(self.down(x)))  # [B, 3, H, W], in logit space
        if not self.residual:
            return torch.sigmoid(out)
        return torch.sigmoid(torch.logit(x.clamp(1e-3, 1 - 1e-3)) + out)
