"""Style transfer recipes: optimising the pixels (Gatys et al.) and training a transform
network (Johnson et al.)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from d2lcv.engine import ClosureStep, LossStep, Pixels, Snapshots, StepLog, fit
from d2lcv.losses.style import CONTENT_LAYER, STYLE_LAYERS, gram_matrix, perceptual_loss
from d2lcv.models.style import FeatureExtractor

__all__ = ["StyleResult", "stylize", "train_transform_net"]


def _names(content_layer: str | Mapping[str, float]) -> list[str]:
    return [content_layer] if isinstance(content_layer, str) else list(content_layer)


def _check_layers(extractor: FeatureExtractor, content_layer: str | Mapping[str, float],
                  style_layers: Sequence[str]) -> None:
    if not isinstance(content_layer, str) and not content_layer:
        raise ValueError("content_layer is an empty mapping: give a layer name or {layer: weight}")
    missing = [name for name in (*_names(content_layer), *style_layers) if name not in extractor.layers]
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


def _initial_image(init: str | Tensor, content: Tensor, generator: torch.Generator | None) -> Tensor:
    """x at step 0, [1, 3, H, W]: a copy of ``content``, uniform noise, or the tensor ``init``."""
    if isinstance(init, Tensor):
        x = _as_batch(init, "init").detach().clone()
        if x.shape != content.shape:
            raise ValueError(
                f"init must have the content image's shape {tuple(content.shape[1:])}, got {tuple(init.shape)}"
            )
        return x
    if init == "content":
        return content.detach().clone()
    if init == "noise":
        return torch.rand(content.shape, generator=generator).to(content.device)
    raise ValueError(f"init must be 'content', 'noise' or a tensor, got {init!r}")


def _pixel_optimizer(name: str, pixels: Pixels, lr: float | None, steps: int) -> torch.optim.Optimizer:
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    if name == "adam":
        return torch.optim.Adam(pixels.parameters(), lr=0.02 if lr is None else lr)
    if name == "lbfgs":  # one iteration per step, with a line search: pixel losses are badly conditioned
        return torch.optim.LBFGS(pixels.parameters(), lr=1.0 if lr is None else lr, max_iter=1,
                                 line_search_fn="strong_wolfe")
    raise ValueError(f"optimizer must be 'lbfgs' or 'adam', got {name!r}")


class _Objective:
    """The perceptual loss against one style image, whose Gram matrices are computed once."""

    def __init__(self, extractor: FeatureExtractor, style: Tensor,
                 content_layer: str | Mapping[str, float], style_layers: Sequence[str],
                 weights: dict[str, Any]) -> None:
        _check_layers(extractor, content_layer, style_layers)
        with torch.no_grad():
            features = extractor(_as_batch(style, "style"))
        self.grams = {name: gram_matrix(features[name], normalize=True)[0] for name in style_layers}
        self.extractor, self.content_layer, self.weights = extractor, content_layer, weights

    def content_target(self, images: Tensor) -> Tensor | dict[str, Tensor]:
        with torch.no_grad():
            features = self.extractor(images)
        if isinstance(self.content_layer, str):
            return features[self.content_layer]
        return {name: features[name] for name in self.content_layer}

    def __call__(self, image: Tensor, content_target: Tensor | dict[str, Tensor]
                 ) -> tuple[Tensor, dict[str, float]]:
        return perceptual_loss(image, self.extractor(image), content_target, self.grams,
                               content_layer=self.content_layer, **self.weights)


def _columns(log: StepLog, keys: Sequence[str]) -> dict[str, list[float]]:
    return {key: [record[key] for record in log.records] for key in keys}


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
    extractor: FeatureExtractor, content: Tensor, style: Tensor, *,
    content_layer: str | Mapping[str, float] = CONTENT_LAYER,
    style_layers: Sequence[str] = STYLE_LAYERS,
    style_weights: Mapping[str, float] | None = None,
    alpha: float = 1.0, beta: float = 1e3, tv_weight: float = 0.0,
    steps: int = 200, optimizer: str = "lbfgs", lr: float | None = None,
    init: str | Tensor = "content", generator: torch.Generator | None = None,
    snapshot_every: int = 0, progress: bool = True,
) -> StyleResult:
    """Gatys et al.'s style transfer: optimise the pixels of an image x to minimise
    α L_content(x, content) + β L_style(x, style) + γ L_TV(x).

    Only x is optimised; the network is frozen. After every step x is clamped to [0, 1].

    Args:
        extractor: returns ``content_layer`` and ``style_layers``.
        content_layer: a layer name, or layer -> weight for a content loss summed over
            several layers, e.g. ``{"scale4": 1.0, "scale2": 0.1}``.
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
    content = _as_batch(content, "content")
    x = _initial_image(init, content, generator)
    pixels = Pixels(x)  # the image as the parameter of a "model" that fit trains
    opt = _pixel_optimizer(optimizer, pixels, lr, steps)
    weights = dict(alpha=alpha, beta=beta, tv_weight=tv_weight,
                   style_weights=style_weights)
    objective = _Objective(extractor, style, content_layer, style_layers, weights)
    target = objective.content_target(content)
    # each step logs the loss at its start (the closure's first evaluation)
    step = ClosureStep(lambda model, _: objective(model(), target),
                       project=lambda model: model.image.clamp_(0, 1), loss_name=None)
    log = StepLog()
    snaps = Snapshots(snapshot_every, lambda ctx: pixels.image.detach()[0].clone())
    start = time.perf_counter()
    fit(pixels, range(steps), epochs=1 if steps else 0, step=step, optimizer=opt,
        device=content.device, amp=False, progress=progress, callbacks=[log, snaps])
    history = _columns(log, ("total", "content", "style", "tv", "evals"))
    image = pixels.image.detach()[0].clamp(0, 1)
    return StyleResult(image, history, snaps.snapshots, time.perf_counter() - start)


class _RandomBatches:
    """``steps`` batches of ``batch_size`` images drawn with replacement, with ``generator``
    (drawn lazily, batch by batch, so the draws interleave with the training as they always have)."""

    def __init__(self, images: Tensor, batch_size: int, steps: int, generator: torch.Generator | None) -> None:
        if images.ndim != 4 or images.shape[1] != 3 or len(images) == 0:
            raise ValueError(f"images must be a non-empty batch [N, 3, H, W], got shape {tuple(images.shape)}")
        if steps < 0 or batch_size < 1:
            raise ValueError(f"steps must be >= 0 and batch_size >= 1, got {steps} and {batch_size}")
        self.images, self.batch_size, self.steps, self.generator = images, batch_size, steps, generator

    def __len__(self) -> int:
        return self.steps

    def __iter__(self) -> Iterator[Tensor]:
        for _ in range(self.steps):
            yield self.images[torch.randint(len(self.images), (self.batch_size,), generator=self.generator)]


def train_transform_net(
    net: nn.Module, extractor: FeatureExtractor, style: Tensor, images: Tensor, *,
    steps: int, batch_size: int = 4, lr: float = 1e-3,
    content_layer: str | Mapping[str, float] = CONTENT_LAYER,
    style_layers: Sequence[str] = STYLE_LAYERS,
    style_weights: Mapping[str, float] | None = None,
    alpha: float = 1.0, beta: float = 1e3, tv_weight: float = 0.0,
    augment: Callable[[Tensor], Tensor] | None = None,
    generator: torch.Generator | None = None, progress: bool = True,
) -> dict[str, list[float]]:
    """Train ``net`` to stylise any photo in one pass (Johnson et al., 2016): for random
    batches of content photos y, minimise the perceptual loss of net(y) against y's
    features and the style image's Gram matrices, with Adam.

    Args:
        net: maps [B, 3, H, W] in [0, 1] to the same shape in [0, 1] (:class:`TransformNet`).
        style (Tensor[3, h, w]): the one style it learns.
        images (Tensor[N, 3, H, W]): the training photos, in [0, 1].
        content_layer: a layer name, or layer -> weight (as in :func:`stylize`).
        steps: Adam steps, each on ``batch_size`` photos drawn with ``generator``.
        augment: applied to each batch before use (e.g. random crops), optional.

    Returns:
        The history: ``total``, ``content``, ``style``, ``tv`` (weighted) per step.
    """
    weights = dict(alpha=alpha, beta=beta, tv_weight=tv_weight,
                   style_weights=style_weights)
    objective = _Objective(extractor, style, content_layer, style_layers, weights)
    batches = _RandomBatches(images, batch_size, steps, generator)

    def loss(model: nn.Module, y: Tensor) -> tuple[Tensor, dict[str, float]]:
        y = y if augment is None else augment(y)
        return objective(model(y), objective.content_target(y))

    # per-step values (size 1), the loss already among them as "total"
    step = LossStep(loss, move=lambda y, device: y.to(device), size=lambda y: 1,
                    loss_name=None)
    log = StepLog()
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    fit(net, batches, epochs=1 if steps else 0, step=step, optimizer=optimizer,
        device=style.device, amp=False, progress=progress, callbacks=[log])
    net.eval()
    return _columns(log, ("total", "content", "style", "tv"))
