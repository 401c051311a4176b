"""A generative adversarial network's step: two optimizers, discriminator (critic) first."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from d2lcv.losses.gan import critic_generator_loss, critic_loss, gradient_penalty

from .context import Context
from .distributed import is_distributed
from .steps import Step, StepOutput

__all__ = ["GANStep", "GAN_OBJECTIVES"]

GAN_OBJECTIVES = ("nonsaturating", "saturating", "wgan-gp")
"""The games :class:`GANStep` plays: the generator's loss, and for ``"wgan-gp"`` the critic's."""


class GANStep(Step):
    """One GAN iteration per batch (Goodfellow et al., 2014; Gulrajani et al., 2017).

    The model has two submodules, ``model.generator`` (noise ``z`` -> samples) and
    ``model.discriminator`` (samples -> logits, one per sample), e.g. an
    ``nn.ModuleDict(generator=G, discriminator=D)``; :func:`~d2lcv.engine.fit` gets one
    optimizer for each, ``optimizer={"discriminator": ..., "generator": ...}`` (a callable
    there is given that submodule's parameters). For a batch of real samples, split into
    ``n_critic`` equal chunks of B samples:

    1. for each chunk: ``fake = G(z)`` with ``z`` Tensor[B, *latent_shape] from ``noise``,
       and a discriminator step on ``loss(D(real), 1) + loss(D(fake.detach()), 0)``
       (``"wgan-gp"``: ``mean D(fake) - mean D(real) + gp_weight * penalty``);
    2. one generator step on the last chunk's ``fake`` and the updated D:
       ``"nonsaturating"``: ``loss(D(fake), 1)``, i.e. ``-log D(G(z))``;
       ``"saturating"``: ``-loss(D(fake), 0)``, i.e. ``log(1 - D(G(z)))``;
       ``"wgan-gp"``: ``-mean D(fake)``.

    With ``conditional=True`` batches are ``(samples, labels)`` and both networks are called
    with the labels, ``G(z, y)`` and ``D(x, y)``; fakes get the real chunk's labels.
    Reports ``d_loss`` (mean over critic steps) and ``g_loss``. Evaluation computes both
    without updating. Not for process groups.

    Args:
        latent_shape: the shape of one noise vector, e.g. ``100`` or ``(100, 1, 1)``.
        noise: ``noise(B, device) -> z``; default standard normal from ``generator``.
        generator: the ``torch.Generator`` (CPU) the default noise and the penalty's
            interpolation weights are drawn from; ``None``: torch's global generator.
        loss: ``loss(logits, targets)`` with targets of ones or zeros of the logits'
            shape, for the two BCE objectives; default ``binary_cross_entropy_with_logits``.
        objective: one of :data:`GAN_OBJECTIVES`.
        n_critic: discriminator steps per generator step (batches must split evenly).
        gp_weight: the gradient penalty's weight (``"wgan-gp"`` only).
        conditional: batches carry labels for both networks.
    """

    def __init__(
        self,
        latent_shape: int | Sequence[int],
        *,
        noise: Callable[[int, torch.device], Tensor] | None = None,
        generator: torch.Generator | None = None,
        loss: Callable[[Tensor, Tensor], Tensor] = F.binary_cross_entropy_with_logits,
        objective: str = "nonsaturating",
        n_critic: int = 1,
        gp_weight: float = 10.0,
        conditional: bool = False,
    ) -> None:
        shape = (latent_shape,) if isinstance(latent_shape, int) else tuple(latent_shape)
        if not shape or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in shape):
            raise ValueError(f"latent_shape must be a positive int or a tuple of them, got {latent_shape!r}")
        if noise is not None and not callable(noise):
            raise ValueError(f"noise must be callable or None, got {type(noise).__name__}")
        if objective not in GAN_OBJECTIVES:
            raise ValueError(f"objective must be one of {GAN_OBJECTIVES}, got {objective!r}")
        if isinstance(n_critic, bool) or not isinstance(n_critic, int) or n_critic < 1:
            raise ValueError(f"n_critic must be a positive int, got {n_critic!r}")
        if not gp_weight >= 0:
            raise ValueError(f"gp_weight must be >= 0, got {gp_weight!r}")
        self.latent_shape, self.noise, self.generator, self.loss_fn = shape, noise, generator, loss
        self.objective, self.n_critic, self.gp_weight, self.conditional = objective, n_critic, gp_weight, conditional

    def sample_noise(self, n: int, device: torch.device) -> Tensor:
        """``z`` Tensor[n, *latent_shape] on ``device``."""
        if self.noise is not None:
            return self.noise(n, device)
        return torch.randn((n, *self.latent_shape), generator=self.generator).to(device)

    @staticmethod
    def _parts(model: nn.Module) -> tuple[nn.Module, nn.Module]:
        if is_distributed():
            raise ValueError("GANStep does not support a process group; got an initialised torch.distributed")
        missing = [n for n in ("generator", "discriminator") if not isinstance(getattr(model, n, None), nn.Module)]
        if missing:
            raise ValueError(f"a GAN model needs submodules 'generator' and 'discriminator'; "
                             f"{type(model).__name__} lacks {missing}")
        return model.generator, model.discriminator

    def _d_loss(self, D: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor) -> Tensor:
        real_logits, fake_logits = D(real), D(fake)
        if self.objective == "wgan-gp":
            penalty = gradient_penalty(D, real, fake, generator=self.generator) if self.gp_weight else 0.0
            return critic_loss(real_logits, fake_logits) + self.gp_weight * penalty
        return (self.loss_fn(real_logits, torch.ones_like(real_logits))
                + self.loss_fn(fake_logits, torch.zeros_like(fake_logits)))

    def _g_loss(self, D: Callable[[Tensor], Tensor], fake: Tensor) -> Tensor:
        logits = D(fake)
        if self.objective == "wgan-gp":
            return critic_generator_loss(logits)
        if self.objective == "saturating":
            return -self.loss_fn(logits, torch.zeros_like(logits))
        return self.loss_fn(logits, torch.ones_like(logits))

    def _chunks(self, batch: Any, ctx: Context) -> list[tuple[Tensor, Tensor | None]]:
        if self.conditional:
            if not isinstance(batch, (tuple, list)) or len(batch) < 2:
                raise ValueError(f"a conditional GANStep needs (samples, labels) batches, got {type(batch).__name__}")
            real, y = batch[0].to(ctx.device, non_blocking=True), batch[1].to(ctx.device, non_blocking=True)
        else:
            real = batch[0] if isinstance(batch, (tuple, list)) else batch  # (images, labels) or images
            real, y = real.to(ctx.device, non_blocking=True), None
        if len(real) % self.n_critic:
            raise ValueError(f"a batch of {len(real)} does not split into n_critic={self.n_critic} equal chunks; "
                             f"use a batch size divisible by it and drop_last=True")
        reals = real.chunk(self.n_critic)
        ys = y.chunk(self.n_critic) if y is not None else [None] * len(reals)
        return list(zip(reals, ys))

    def _bind(self, G: nn.Module, D: nn.Module, y: Tensor | None) -> tuple[Callable, Callable]:
        if y is None:
            return G, D
        return (lambda z: G(z, y)), (lambda x: D(x, y))

    def update(self, model: nn.Module, batch: Any, ctx: Context) -> StepOutput:
        G, D = self._parts(model)
        d_total = 0.0
        for real, y in self._chunks(batch, ctx):
            g, d = self._bind(G, D, y)
            with ctx.autocast():
                fake = g(self.sample_noise(len(real), ctx.device))
                d_loss = self._d_loss(d, real, fake.detach())
            ctx.optimize(d_loss, name="discriminator")
            d_total += d_loss.item()
        with ctx.autocast():
            g_loss = self._g_loss(d, fake)
        ctx.optimize(g_loss, name="generator")
        B = len(real)
        sums = {"d_loss": d_total / self.n_critic * B, "g_loss": g_loss.item() * B}
        return StepOutput(g_loss, sums, B)

    def evaluate(self, model: nn.Module, batch: Any, ctx: Context) -> StepOutput:
        with torch.enable_grad() if self.objective == "wgan-gp" else torch.no_grad(), ctx.autocast():
            return self.loss(model, batch, ctx)  # the gradient penalty needs gradients

    def loss(self, model: nn.Module, batch: Any, ctx: Context) -> StepOutput:
        G, D = self._parts(model)
        real, y = self._chunks(batch, ctx)[-1]
        g, d = self._bind(G, D, y)
        B = len(real)
        fake = g(self.sample_noise(B, ctx.device))
        d_loss, g_loss = self._d_loss(d, real, fake), self._g_loss(d, fake)
        return StepOutput(g_loss, {"d_loss": d_loss.item() * B, "g_loss": g_loss.item() * B}, B)
