"""Neural style transfer: Gram matrices, perceptual losses, pixel optimisation (Gatys et al.)
and a feed-forward transform network (Johnson et al.).

* :func:`vgg_layer_names` names the layers of a VGG ``features`` stack ``conv1_1``,
  ``relu1_1``, ..., ``pool5``, and :class:`FeatureExtractor` returns the chosen ones in one
  forward pass (images in [0, 1], normalised inside).
* :func:`normalize_filters_` rescales every filter so that its mean activation over some
  images is 1, as Gatys et al. did with VGG-19; it also makes a *random-weight* VGG usable
  (He, Wang & Hopcroft, NeurIPS 2016), which is what an offline machine has.
* :func:`gram_matrix`, :func:`content_loss`, :func:`style_loss`, :func:`tv_loss` and
  :func:`perceptual_loss` are the losses; :func:`stylize` optimises the pixels;
  :class:`TransformNet` and :func:`train_transform_net` learn to stylise in one pass.

References: Gatys, Ecker & Bethge, *Image style transfer using convolutional neural
networks*, CVPR 2016; Johnson, Alahi & Fei-Fei, *Perceptual losses for real-time style
transfer and super-resolution*, ECCV 2016; Ulyanov, Vedaldi & Lempitsky, *Instance
normalization*, 2016.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor, nn
from torchvision.transforms import v2
from tqdm.auto import tqdm

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "CONTENT_LAYER",
    "STYLE_LAYERS",
    "image_tensor",
    "vgg_layer_names",
    "FeatureExtractor",
    "normalize_filters_",
    "gram_matrix",
    "content_loss",
    "style_loss",
    "tv_loss",
    "perceptual_loss",
    "StyleResult",
    "stylize",
    "TransformNet",
    "train_transform_net",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CONTENT_LAYER = "relu4_2"
"""Gatys et al.'s content layer."""
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
"""Gatys et al.'s style layers (the first ReLU of each block), weighted equally."""


def image_tensor(img: Image.Image | Tensor, size: int | tuple[int, int]) -> Tensor:
    """A photo as a float image in [0, 1], resized.

    Args:
        img: a PIL image or a uint8/float tensor [3, H, W].
        size: ``(H, W)`` exactly, or an int: the shorter side, the longer one scaled with it
            and rounded to a multiple of 4 (so :class:`TransformNet` can take it).

    Returns:
        Tensor[3, H, W] (float32) in [0, 1].
    """
    x = v2.functional.to_dtype(v2.functional.to_image(img), torch.float32, scale=True)
    if isinstance(size, int):
        if size < 4:
            raise ValueError(f"size must be at least 4, got {size}")
        H, W = x.shape[-2:]
        long = max(4, round(max(H, W) * size / min(H, W) / 4) * 4)
        size = (size, long) if H <= W else (long, size)
    return v2.functional.resize(x, list(size), antialias=True).clamp(0, 1)


# --- features -----------------------------------------------------------------------


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
            raise ValueError(f"layer {i} is a {type(module).__name__}; a VGG stack has only Conv2d, ReLU and pooling")
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
            raise ValueError(f"x must be a batch of RGB images [B, 3, H, W] in [0, 1], got shape {tuple(x.shape)}")
        x = (x - self.mean) / self.std
        out = {}
        for name, module in self.body.named_children():
            x = module(x)
            if name in self.layers:
                out[name] = x
        return out


@torch.no_grad()
def normalize_filters_(extractor: FeatureExtractor, images: Tensor, *, per: str = "filter") -> FeatureExtractor:
    """Rescale each convolution filter (and bias) in place so that, over ``images``, the
    mean activation of its ReLU is 1 (Gatys et al., 2016), or that of its layer.

    A ReLU network is positively homogeneous, so this changes no layer's pattern of
    activity, only its scale: every layer then contributes on an equal footing to the
    losses. Layers are rescaled in order, each seeing the rescaled layers before it.

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
        raise ValueError(f"images must be [B, 3, H, W] in [0, 1], got shape {tuple(images.shape)}")
    if per not in ("filter", "layer"):
        raise ValueError(f"per must be 'filter' or 'layer', got {per!r}")
    x = (images - extractor.mean) / extractor.std
    for module in extractor.body:
        if isinstance(module, nn.Conv2d):
            mean_act = F.relu(module(x)).mean(dim=(0, 2, 3))  # [C_out]
            if per == "layer":
                mean_act = mean_act.mean().expand_as(mean_act)
            scale = torch.where(mean_act > 0, 1 / mean_act, torch.ones_like(mean_act))  # dead filters stay
            module.weight.mul_(scale.view(-1, 1, 1, 1))
            if module.bias is not None:
                module.bias.mul_(scale)
        x = module(x)
    return extractor


# --- losses -------------------------------------------------------------------------


def gram_matrix(x: Tensor) -> Tensor:
    """Gram matrices of feature maps: G = F Fᵀ with F the [C, H*W] matrix of each map.

    Args:
        x (Tensor[B, C, H, W]): feature maps.

    Returns:
        Tensor[B, C, C]: ``G[b, i, j] = sum_p x[b, i, p] * x[b, j, p]`` (not normalised).
    """
    if x.ndim != 4:
        raise ValueError(f"x must be feature maps [B, C, H, W], got shape {tuple(x.shape)}")
    f = x.flatten(2)  # [B, C, H*W]
    return f @ f.transpose(1, 2)


def content_loss(features: Tensor, target: Tensor) -> Tensor:
    """L_content = ½ Σ (F − P)², per image, averaged over the batch.

    Args:
        features (Tensor[B, C, H, W]): the generated image's features F at the content layer.
        target (Tensor[B, C, H, W]): the content image's features P (or [1, C, H, W], broadcast).

    Returns:
        Tensor[] (scalar).
    """
    if features.ndim != 4 or target.ndim != 4 or target.shape[1:] != features.shape[1:]:
        raise ValueError(
            f"features and target must be [B, C, H, W] with the same C, H, W (same image size), "
            f"got {tuple(features.shape)} and {tuple(target.shape)}"
        )
    return 0.5 * (features - target).pow(2).flatten(1).sum(1).mean()


def _layer_style_loss(x: Tensor, target_gram: Tensor) -> Tensor:
    """E = Σ (G − A)² / (4 N² M²) for one layer: N channels, M = H * W positions; batch mean."""
    B, N, H, W = x.shape
    if target_gram.shape[-2:] != (N, N):
        raise ValueError(
            f"a style target Gram matrix must be [{N}, {N}] for {N} channels, got {tuple(target_gram.shape)}"
        )
    M = H * W
    diff = (gram_matrix(x) - target_gram) / (N * M)  # [B, N, N]
    return diff.pow(2).sum(dim=(1, 2)).mean() / 4


def style_loss(
    features: Mapping[str, Tensor], target_grams: Mapping[str, Tensor], weights: Mapping[str, float] | None = None
) -> Tensor:
    """L_style = Σ_l w_l E_l, E_l = Σ (G_l − A_l)² / (4 N_l² M_l²) (Gatys et al., 2016).

    Args:
        features: layer name -> Tensor[B, N_l, H_l, W_l] of the generated image(s).
        target_grams: layer name -> Tensor[N_l, N_l] (or [B, N_l, N_l]): the style image's
            Gram matrices A_l (:func:`gram_matrix`); its layers are the ones summed.
        weights: layer name -> w_l; default 1 / (number of layers) each.

    Returns:
        Tensor[] (scalar).
    """
    if not target_grams:
        raise ValueError("target_grams is empty: give at least one style layer")
    missing = [name for name in target_grams if name not in features]
    if missing:
        raise ValueError(f"no features for style layer(s) {missing}; got features for {list(features)}")
    if weights is None:
        weights = {name: 1 / len(target_grams) for name in target_grams}
    elif set(weights) != set(target_grams):
        raise ValueError(f"weights must name the style layers {list(target_grams)}, got {list(weights)}")
    return sum(weights[name] * _layer_style_loss(features[name], a) for name, a in target_grams.items())


def tv_loss(x: Tensor) -> Tensor:
    """Total variation: Σ of squared differences between neighbouring pixels, per image,
    averaged over the batch (Mahendran & Vedaldi's TV with β = 2).

    Args:
        x (Tensor[B, C, H, W]): images.

    Returns:
        Tensor[] (scalar); 0 for a constant image.
    """
    if x.ndim != 4:
        raise ValueError(f"x must be images [B, C, H, W], got shape {tuple(x.shape)}")
    dh = (x[:, :, 1:, :] - x[:, :, :-1, :]).pow(2).flatten(1).sum(1)
    dw = (x[:, :, :, 1:] - x[:, :, :, :-1]).pow(2).flatten(1).sum(1)
    return (dh + dw).mean()


def perceptual_loss(
    image: Tensor,
    features: Mapping[str, Tensor],
    content_target: Tensor,
    target_grams: Mapping[str, Tensor],
    *,
    content_layer: str = CONTENT_LAYER,
    alpha: float = 1.0,
    beta: float = 1e3,
    tv_weight: float = 0.0,
    style_weights: Mapping[str, float] | None = None,
) -> tuple[Tensor, dict[str, float]]:
    """α L_content + β L_style + γ L_TV, the loss of both :func:`stylize` and :func:`train_transform_net`.

    Args:
        image (Tensor[B, 3, H, W]): the generated image(s), for the TV term.
        features: their features (:class:`FeatureExtractor`), with the content and style layers.
        content_target (Tensor[B or 1, C, h, w]): the content image's features at ``content_layer``.
        target_grams: style layer -> the style image's Gram matrix [N_l, N_l].

    Returns:
        ``(total, parts)``: the scalar loss to minimise and the float values of
        ``total``, ``content``, ``style`` and ``tv``, each already multiplied by its weight.
    """
    if content_layer not in features:
        raise ValueError(f"no features for the content layer {content_layer!r}; got {list(features)}")
    parts = {
        "content": alpha * content_loss(features[content_layer], content_target),
        "style": beta * style_loss(features, target_grams, style_weights),
        "tv": tv_weight * tv_loss(image),
    }
    total = parts["content"] + parts["style"] + parts["tv"]
    return total, {"total": total.item(), **{k: v.item() for k, v in parts.items()}}


def _check_layers(extractor: FeatureExtractor, content_layer: str, style_layers: Sequence[str]) -> None:
    missing = [name for name in (content_layer, *style_layers) if name not in extractor.layers]
    if missing:
        raise ValueError(
            f"the extractor does not return layer(s) {missing}; it returns {list(extractor.layers)}: "
            f"build it with FeatureExtractor(features, layers=[content_layer, *style_layers])"
        )


def _as_batch(img: Tensor, name: str) -> Tensor:
    if img.ndim == 3:
        img = img.unsqueeze(0)
    if img.ndim != 4 or img.shape[:2] != (1, 3):
        raise ValueError(f"{name} must be one RGB image [3, H, W] in [0, 1], got shape {tuple(img.shape)}")
    return img


# --- optimising the pixels ----------------------------------------------------------


@dataclass
class StyleResult:
    """What :func:`stylize` returns.

    Attributes:
        image (Tensor[3, H, W]): the stylised image, clamped to [0, 1].
        history: per step, ``total``, ``content``, ``style``, ``tv`` (weighted) at the start
            of the step, and ``evals``, the forward-backward passes the step took.
        snapshots: ``(step, Tensor[3, H, W])`` pairs, the first the initial image.
        seconds: wall time of the optimisation.
    """

    image: Tensor
    history: dict[str, list[float]] = field(default_factory=dict)
    snapshots: list[tuple[int, Tensor]] = field(default_factory=list)
    seconds: float = 0.0


def stylize(
    extractor: FeatureExtractor,
    content: Tensor,
    style: Tensor,
    *,
    content_layer: str = CONTENT_LAYER,
    style_layers: Sequence[str] = STYLE_LAYERS,
    style_weights: Mapping[str, float] | None = None,
    alpha: float = 1.0,
    beta: float = 1e3,
    tv_weight: float = 0.0,
    steps: int = 200,
    optimizer: str = "lbfgs",
    lr: float | None = None,
    init: str | Tensor = "content",
    generator: torch.Generator | None = None,
    snapshot_every: int = 0,
    progress: bool = True,
) -> StyleResult:
    """Gatys et al.'s style transfer: optimise the pixels of an image x to minimise
    α L_content(x, content) + β L_style(x, style) + γ L_TV(x).

    Only x is optimised; the network is frozen. After every step x is clamped to [0, 1].

    Args:
        extractor: returns ``content_layer`` and ``style_layers``.
        content (Tensor[3, H, W]): in [0, 1]; x has its size.
        style (Tensor[3, h, w]): in [0, 1]; any size (Gram matrices are N_l x N_l).
        alpha, beta, tv_weight: the loss weights α, β, γ.
        steps: optimiser steps: one forward-backward pass for Adam, one or more for L-BFGS.
        optimizer: ``"lbfgs"`` (one L-BFGS iteration per step, with a strong-Wolfe line
            search from step size ``lr``, default 1) or ``"adam"`` (default ``lr=0.02``,
            in pixel units).
        init: ``"content"``, ``"noise"`` (uniform in [0, 1], from ``generator``) or a tensor [3, H, W].
        snapshot_every: keep a copy of x every this many steps (0: only the first and last).

    Returns:
        :class:`StyleResult`.
    """
    _check_layers(extractor, content_layer, style_layers)
    content, style = _as_batch(content, "content"), _as_batch(style, "style")
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    if optimizer not in ("lbfgs", "adam"):
        raise ValueError(f"optimizer must be 'lbfgs' or 'adam', got {optimizer!r}")
    if isinstance(init, Tensor):
        x = _as_batch(init, "init").detach().clone()
        if x.shape != content.shape:
            raise ValueError(
                f"init must have the content image's shape {tuple(content.shape[1:])}, got {tuple(init.shape)}"
            )
    elif init == "content":
        x = content.detach().clone()
    elif init == "noise":
        x = torch.rand(content.shape, generator=generator).to(content.device)
    else:
        raise ValueError(f"init must be 'content', 'noise' or a tensor, got {init!r}")
    with torch.no_grad():
        content_target = extractor(content)[content_layer]
        style_features = extractor(style)
        target_grams = {name: gram_matrix(style_features[name])[0] for name in style_layers}
    x = x.contiguous().requires_grad_(True)
    if optimizer == "adam":
        opt = torch.optim.Adam([x], lr=0.02 if lr is None else lr)
    else:  # one iteration per step, with a line search: pixel losses are badly conditioned
        opt = torch.optim.LBFGS([x], lr=1.0 if lr is None else lr, max_iter=1, line_search_fn="strong_wolfe")
    history: dict[str, list[float]] = {"total": [], "content": [], "style": [], "tv": [], "evals": []}
    snapshots = [(0, x.detach()[0].clone())]
    evaluations: list[dict[str, float]] = []

    def closure() -> Tensor:
        opt.zero_grad()
        total, parts = perceptual_loss(
            x, extractor(x), content_target, target_grams, content_layer=content_layer,
            alpha=alpha, beta=beta, tv_weight=tv_weight, style_weights=style_weights,
        )
        total.backward()
        evaluations.append(parts)
        return total

    start = time.perf_counter()
    for step in tqdm(range(1, steps + 1), desc=f"stylize ({optimizer})", disable=None if progress else True):
        evaluations.clear()
        opt.step(closure)
        with torch.no_grad():
            x.clamp_(0, 1)
        for key, value in evaluations[0].items():  # the loss at the start of the step
            history[key].append(value)
        history["evals"].append(float(len(evaluations)))
        if (snapshot_every and step % snapshot_every == 0) or step == steps:
            snapshots.append((step, x.detach()[0].clone()))
    seconds = time.perf_counter() - start
    return StyleResult(image=x.detach()[0].clamp(0, 1), history=history, snapshots=snapshots, seconds=seconds)


# --- a feed-forward transform network -----------------------------------------------


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
        out    sigmoid(logit(x) + up): an image in [0, 1]

    Johnson et al. use ``width=32`` and 5 residual blocks (1.7 M parameters). One change of
    ours: the network predicts a change to the photo (in logit space) and its last
    convolution starts at zero, so the untrained network is the identity and even a short
    training run keeps the photo's content.

    Args:
        width: channels after the first convolution.
        n_residual: residual blocks.
    """

    def __init__(self, width: int = 32, n_residual: int = 5) -> None:
        super().__init__()
        if width < 1 or n_residual < 0:
            raise ValueError(f"width must be >= 1 and n_residual >= 0, got {width} and {n_residual}")
        w = width
        self.down = nn.Sequential(_ConvLayer(3, w, 9), _ConvLayer(w, 2 * w, 3, 2), _ConvLayer(2 * w, 4 * w, 3, 2))
        self.res = nn.Sequential(*[_ResidualBlock(4 * w) for _ in range(n_residual)])
        self.up = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="nearest"), _ConvLayer(4 * w, 2 * w, 3),
            nn.Upsample(scale_factor=2, mode="nearest"), _ConvLayer(2 * w, w, 3),
            _ConvLayer(w, 3, 9, last=True),
        )
        last = self.up[-1][-1]  # the final Conv2d
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1] != 3 or x.shape[2] % 4 or x.shape[3] % 4:
            raise ValueError(
                f"x must be RGB images [B, 3, H, W] with H and W multiples of 4, got shape {tuple(x.shape)} "
                f"(resize with d2lcv.style.image_tensor)"
            )
        change = self.up(self.res(self.down(x)))  # [B, 3, H, W], in logit space
        return torch.sigmoid(torch.logit(x.clamp(1e-3, 1 - 1e-3)) + change)


def train_transform_net(
    net: nn.Module,
    extractor: FeatureExtractor,
    style: Tensor,
    images: Tensor,
    *,
    steps: int,
    batch_size: int = 4,
    lr: float = 1e-3,
    content_layer: str = CONTENT_LAYER,
    style_layers: Sequence[str] = STYLE_LAYERS,
    style_weights: Mapping[str, float] | None = None,
    alpha: float = 1.0,
    beta: float = 1e3,
    tv_weight: float = 0.0,
    augment: Callable[[Tensor], Tensor] | None = None,
    generator: torch.Generator | None = None,
    progress: bool = True,
) -> dict[str, list[float]]:
    """Train ``net`` to stylise any photo in one pass (Johnson et al., 2016): for random
    batches of content photos y, minimise the perceptual loss of net(y) against y's
    features and the style image's Gram matrices, with Adam.

    Args:
        net: maps [B, 3, H, W] in [0, 1] to the same shape in [0, 1] (:class:`TransformNet`).
        style (Tensor[3, h, w]): the one style it learns.
        images (Tensor[N, 3, H, W]): the training photos, in [0, 1].
        steps: Adam steps, each on ``batch_size`` photos drawn with ``generator``.
        augment: applied to each batch before use (e.g. random crops), optional.

    Returns:
        The history: ``total``, ``content``, ``style``, ``tv`` (weighted) per step.
    """
    _check_layers(extractor, content_layer, style_layers)
    style = _as_batch(style, "style")
    if images.ndim != 4 or images.shape[1] != 3 or len(images) == 0:
        raise ValueError(f"images must be a non-empty batch [N, 3, H, W], got shape {tuple(images.shape)}")
    if steps < 0 or batch_size < 1:
        raise ValueError(f"steps must be >= 0 and batch_size >= 1, got {steps} and {batch_size}")
    with torch.no_grad():
        style_features = extractor(style)
        target_grams = {name: gram_matrix(style_features[name])[0] for name in style_layers}
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    history: dict[str, list[float]] = {"total": [], "content": [], "style": [], "tv": []}
    net.train()
    for _ in tqdm(range(steps), desc="train transform net", disable=None if progress else True):
        idx = torch.randint(len(images), (batch_size,), generator=generator)
        y = images[idx].to(style.device)
        if augment is not None:
            y = augment(y)
        with torch.no_grad():
            content_target = extractor(y)[content_layer]
        out = net(y)
        total, parts = perceptual_loss(
            out, extractor(out), content_target, target_grams, content_layer=content_layer,
            alpha=alpha, beta=beta, tv_weight=tv_weight, style_weights=style_weights,
        )
        opt.zero_grad()
        total.backward()
        opt.step()
        for key, value in parts.items():
            history[key].append(value)
    net.eval()
    return history
