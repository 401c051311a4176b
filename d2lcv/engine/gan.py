"""A generative adversarial network's step: two optimizers, discriminator first."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .context import Context
from .distributed import is_distributed
from .steps import Step, StepOutput

__all__ = ["GANStep"]


class GANStep(Step):
    """One GAN iteration per batch (Goodfellow et al., 2014; the non-saturating loss).

    The model has two submodules, ``model.generator`` (noise ``z`` -> samples) and
    ``model.discriminator`` (samples -> logits, one per sample), e.g. an
    ``nn.ModuleDict(generator=G, discriminator=D)``; :func:`~d2lcv.engine.fit` gets one
    optimizer for each, ``optimizer={"discriminator": ..., "generator": ...}`` (a callable
    there is given that submodule's parameters). For a batch of B real samples:

    1. ``fake = G(z)`` with ``z`` Tensor[B, *latent_shape] from ``noise``;
    2. discriminator step on ``loss(D(real), 1) + loss(D(fake.detach()), 0)``;
    3. generator step on ``loss(D(fake), 1)`` (the updated D; the same ``fake``).

    Reports ``d_loss`` and ``g_loss`` (means over samples). Evaluation computes both
    without updating. Not for process groups (the two networks would need their own
    ``DistributedDataParallel`` wrappers).

    Args:
        latent_shape: the shape of one noise vector, e.g. ``100`` or ``(100, 1, 1)``.
        noise: ``noise(B, device) -> z``; default standard normal from ``generator``.
        generator: the ``torch.Generator`` (CPU) the default noise is drawn from; ``None``:
            torch's global generator.
        loss: ``loss(logits, targets)`` with targets of ones or zeros of the logits'
            shape; default ``binary_cross_entropy_with_logits``.
    """

    def __init__(
        self,
        latent_shape: int | Sequence[int],
        *,
        noise: Callable[[int, torch.device], Tensor] | None = None,
        generator: torch.Generator | None = None,
        loss: Callable[[Tensor, Tensor], Tensor] = F.binary_cross_entropy_with_logits,
    ) -> None:
        shape = (latent_shape,) if isinstance(latent_shape, int) else tuple(latent_shape)
        if not shape or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in shape):
            raise ValueError(f"latent_shape must be a positive int or a tuple of them, got {latent_shape!r}")
        if noise is not None and not callable(noise):
            raise ValueError(f"noise must be callable or None, got {type(noise).__name__}")
        self.latent_shape, self.noise, self.generator, self.loss_fn = shape, noise, generator, loss

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

    def _d_loss(self, D: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
        real_logits, fake_logits = D(real), D(fake)
        return (self.loss_fn(real_logits, torch.ones_like(real_logits))
                + self.loss_fn(fake_logits, torch.zeros_like(fake_logits)))

    def _g_loss(self, D: nn.Module, fake: Tensor) -> Tensor:
        logits = D(fake)
        return self.loss_fn(logits, torch.ones_like(logits))

    @staticmethod
    def _real(batch: Any, ctx: Context) -> Tensor:
        real = batch[0] if isinstance(batch, (tuple, list)) else batch  # (images, labels) or images
        return real.to(ctx.device, non_blocking=True)

    def update(self, model: nn.Module, batch: Any, ctx: Context) -> StepOutput:
        G, D = self._parts(model)
        real = self._real(batch, ctx)
        B = len(real)
        z = self.sample_noise(B, ctx.device)
        with ctx.autocast():
            fake = G(z)
            d_loss = self._d_loss(D, real, fake.detach())
        ctx.optimize(d_loss, name="discriminator")
        with ctx.autocast():
            g_loss = self._g_loss(D, fake)
        ctx.optimize(g_loss, name="generator")
        return StepOutput(g_loss, {"d_loss": d_loss.item() * B, "g_loss": g_loss.item() * B}, B)

    def loss(self, model: nn.Module, batch: Any, ctx: Context) -> StepOutput:
        G, D = self._parts(model)
        real = self._real(batch, ctx)
        B = len(real)
        fake = G(self.sample_noise(B, ctx.device))
        d_loss, g_loss = self._d_loss(D, real, fake), self._g_loss(D, fake)
        return StepOutput(g_loss, {"d_loss": d_loss.item() * B, "g_loss": g_loss.item() * B}, B)
