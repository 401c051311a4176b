"""Losses of neural style transfer: content, style (Gram matrices), total variation, and
their weighted sum, the perceptual loss."""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor

__all__ = [
    "CONTENT_LAYER", "STYLE_LAYERS", "gram_matrix", "content_loss", "style_loss", "tv_loss",
    "perceptual_loss",
]

CONTENT_LAYER = "relu4_2"
"""Gatys et al.'s content layer."""


STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
"""Gatys et al.'s style layers (the first ReLU of each block), weighted equally."""


def gram_matrix(x: Tensor, *, normalize: bool = False) -> Tensor:
    """Gram matrices of feature maps: G = F Fᵀ with F the [C, H*W] matrix of each map.

    Args:
        x (Tensor[B, C, H, W]): feature maps.
        normalize: divide by the number of positions M = H * W (a mean over positions
            instead of a sum), so that images of different sizes can be compared.

    Returns:
        Tensor[B, C, C]: ``G[b, i, j] = sum_p x[b, i, p] * x[b, j, p]`` (divided by M if
        ``normalize``).
    """
    if x.ndim != 4:
        raise ValueError(
            f"x must be feature maps [B, C, H, W], got shape {tuple(x.shape)}"
        )
    f = x.flatten(2)  # [B, C, H*W]
    gram = f @ f.transpose(1, 2)
    return gram / f.shape[-1] if normalize else gram


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
            "features and target must be [B, C, H, W] with the same C, H, W (same "
            "image size), "
            f"got {tuple(features.shape)} and {tuple(target.shape)}"
        )
    return 0.5 * (features - target).pow(2).flatten(1).sum(1).mean()


def _layer_style_loss(x: Tensor, target_gram: Tensor) -> Tensor:
    """E = Σ (G / M − A)² / (4 N²) for one layer: N channels, M = H * W positions, A the
    style image's Gram matrix divided by its own number of positions; batch mean."""
    N = x.shape[1]
    if target_gram.shape[-2:] != (N, N):
        raise ValueError(
            f"a style target Gram matrix must be [{N}, {N}] for {N} channels, got "
            f"{tuple(target_gram.shape)}"
        )
    diff = (gram_matrix(x, normalize=True) - target_gram) / N  # [B, N, N]
    return diff.pow(2).sum(dim=(1, 2)).mean() / 4


def style_loss(
    features: Mapping[str, Tensor],
    target_grams: Mapping[str, Tensor],
    weights: Mapping[str, float] | None = None,
) -> Tensor:
    """L_style = Σ_l w_l E_l, E_l = Σ (G_l / M_l − A_l)² / (4 N_l²) (Gatys et al., 2016).

    For images of equal size this is Gatys et al.'s Σ (G_l − A'_l)² / (4 N_l² M_l²); each
    Gram matrix divided by its own number of positions M_l = H_l W_l lets the style image
    have any size.

    Args:
        features: layer name -> Tensor[B, N_l, H_l, W_l] of the generated image(s).
        target_grams: layer name -> Tensor[N_l, N_l] (or [B, N_l, N_l]): the style image's
            Gram matrices per position, A_l = ``gram_matrix(f, normalize=True)``; its
            layers are the ones summed.
        weights: layer name -> w_l; default 1 / (number of layers) each.

    Returns:
        Tensor[] (scalar).
    """
    if not target_grams:
        raise ValueError("target_grams is empty: give at least one style layer")
    missing = [name for name in target_grams if name not in features]
    if missing:
        raise ValueError(
            f"no features for style layer(s) {missing}; got features for "
            f"{list(features)}"
        )
    if weights is None:
        weights = {name: 1 / len(target_grams) for name in target_grams}
    elif set(weights) != set(target_grams):
        raise ValueError(
            f"weights must name the style layers {list(target_grams)}, got "
            f"{list(weights)}"
        )
    return sum(
        weights[name] * _layer_style_loss(features[name], a)
        for name, a in target_grams.items()
    )


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


def _content_term(features: Mapping[str, Tensor], target: Tensor | Mapping[str, Tensor],
                  layer: str | Mapping[str, float]) -> Tensor:
    """L_content at one layer, or Σ_l w_l L_content at the layers of ``{layer: w_l}``."""
    if isinstance(layer, str):
        if layer not in features:
            raise ValueError(f"no features for the content layer {layer!r}; got {list(features)}")
        return content_loss(features[layer], target)
    layers, targets = dict(layer), target
    missing = [name for name in layers if name not in features]
    if not layers or missing:
        raise ValueError(f"no features for the content layers {missing or layers}; got {list(features)}")
    if not isinstance(targets, Mapping) or set(targets) != set(layers):
        raise ValueError(
            f"content_target must map the content layers {list(layers)} to their features, got "
            f"{list(targets) if isinstance(targets, Mapping) else type(targets).__name__}"
        )
    return sum(w * content_loss(features[name], targets[name]) for name, w in layers.items())


def perceptual_loss(
    image: Tensor,
    features: Mapping[str, Tensor],
    content_target: Tensor | Mapping[str, Tensor],
    target_grams: Mapping[str, Tensor],
    *,
    content_layer: str | Mapping[str, float] = CONTENT_LAYER,
    alpha: float = 1.0,
    beta: float = 1e3,
    tv_weight: float = 0.0,
    style_weights: Mapping[str, float] | None = None,
) -> tuple[Tensor, dict[str, float]]:
    """α L_content + β L_style + γ L_TV, the loss of both
    :func:`d2lcv.recipes.stylize` and :func:`d2lcv.recipes.train_transform_net`.

    Args:
        image (Tensor[B, 3, H, W]): the generated image(s), for the TV term.
        features: their features (:class:`d2lcv.models.style.FeatureExtractor`), with the content and style layers.
        content_target (Tensor[B or 1, C, h, w]): the content image's features at ``content_layer``;
            with several content layers, layer -> such a tensor.
        target_grams: style layer -> the style image's Gram matrix [N_l, N_l].
        content_layer: one layer, or layer -> weight: the content loss is then
            Σ_l w_l L_content at each layer l (e.g. a coarse layer for the layout and a
            fine one, weighted lightly, against gratings the coarse one cannot see).

    Returns:
        ``(total, parts)``: the scalar loss to minimise and the float values of
        ``total``, ``content``, ``style`` and ``tv``, each already multiplied by its weight.
    """
    parts = {
        "content": alpha * _content_term(features, content_target, content_layer),
        "style": beta * style_loss(features, target_grams, style_weights),
        "tv": tv_weight * tv_loss(image),
    }
    total = parts["content"] + parts["style"] + parts["tv"]
    return total, {"total": total.item(), **{k: v.item() for k, v in parts.items()}}
