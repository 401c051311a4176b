"""GAN recipes: training a GAN on 2-D points, and the emoji images a DCGAN learns from.

:func:`train_toy_gan` trains :func:`~d2lcv.models.toy_gan` through
:func:`~d2lcv.engine.fit` with a :class:`~d2lcv.engine.GANStep` and records snapshots of the
generator's samples (and of the discriminator's output on a grid) along the way.
:func:`train_gan` does the same for any GAN and data loader (DCGAN on emoji), with a
snapshot function of the caller's choice. The emoji data are in :mod:`d2lcv.recipes.gan_emoji`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from d2lcv.engine import GANStep, History, Snapshots, StepLog, fit
from d2lcv.models.gan import toy_gan

__all__ = ["GANRun", "train_toy_gan", "train_gan", "plane_grid"]


class GANRun(NamedTuple):
    """A trained GAN with its per-step losses and snapshots.

    Attributes:
        model: the ``ModuleDict(generator=..., discriminator=...)``.
        history: :func:`~d2lcv.engine.fit`'s per-epoch record.
        log: ``{"d_loss": [...], "g_loss": [...]}``, one value per generator step.
        snapshots: ``[(generator steps, value), ...]`` from the snapshot function.
    """

    model: nn.Module
    history: History
    log: dict[str, list[float]]
    snapshots: list[tuple[int, Any]]


def plane_grid(lim: float, n: int = 101) -> Tensor:
    """Tensor[n * n, 2]: an ``n x n`` grid over ``[-lim, lim]^2``, row by row (y outer)."""
    ticks = torch.linspace(-lim, lim, n)
    ys, xs = torch.meshgrid(ticks, ticks, indexing="ij")
    return torch.stack([xs.flatten(), ys.flatten()], 1)


def _adam(lr: float, d_lr: float | None, betas: tuple[float, float]) -> dict[str, Callable]:
    return {"discriminator": functools.partial(torch.optim.Adam, lr=lr if d_lr is None else d_lr, betas=betas),
            "generator": functools.partial(torch.optim.Adam, lr=lr, betas=betas)}


def train_gan(
    model: nn.ModuleDict, loader: Any, step: GANStep, *, epochs: int, lr: float = 2e-4,
    d_lr: float | None = None, betas: tuple[float, float] = (0.5, 0.999),
    snapshot: Callable[[nn.Module], Any] | None = None, every: int = 0,
    progress: bool = False, device: torch.device | str | None = "cpu",
) -> GANRun:
    """Train a GAN with Adam (one optimizer per network), logging losses and snapshots.

    Args:
        lr, d_lr: the generator's and the discriminator's learning rates (``d_lr=None``: ``lr``).
        snapshot: ``snapshot(model) -> value`` (under ``torch.no_grad``, model in eval
            mode), recorded before training, every ``every`` generator steps and at the end.
    """
    log = StepLog()

    def take(ctx: Any) -> Any:
        mode = ctx.model.training
        ctx.model.eval()
        with torch.no_grad():
            value = snapshot(ctx.model)
        ctx.model.train(mode)
        return value

    snaps = Snapshots(every, take) if snapshot is not None else None
    history = fit(model, loader, epochs=epochs, step=step,
                  optimizer=_adam(lr, d_lr, betas), device=device, progress=progress,
                  callbacks=[log] + ([snaps] if snaps else []))
    return GANRun(model, history, log.as_dict(), snaps.snapshots if snaps else [])


def train_toy_gan(
    sample: Callable[..., Tensor], *, objective: str = "nonsaturating", spectral_norm: bool = False,
    n_critic: int = 1, gp_weight: float = 10.0, steps: int = 2000, batch_size: int = 256, lr: float = 1e-3,
    d_lr: float | None = None, betas: tuple[float, float] = (0.5, 0.999), latent_dim: int = 2, hidden: int = 128, depth: int = 3,
    seed: int = 0, every: int = 0, n_samples: int = 1000, grid: Tensor | None = None,
) -> GANRun:
    """Train a GAN on fresh points of a 2-D distribution for ``steps`` generator steps.

    Args:
        sample: ``sample(n, generator=g) -> Tensor[n, 2]``, e.g. ``data.ring_of_gaussians``.
        objective, n_critic, gp_weight: see :class:`~d2lcv.engine.GANStep`.
        spectral_norm: spectral normalisation on every layer of the discriminator.
        every: take a snapshot every ``every`` generator steps (0: first and last only):
            ``(samples Tensor[n_samples, 2] from a fixed z, D's logits on grid or None)``.
        grid (Tensor[M, 2] or None): points at which to record the discriminator's logits.
    """
    if steps < 1 or batch_size < 1:
        raise ValueError(f"steps and batch_size must be >= 1, got {steps}, {batch_size}")
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # the networks' initial weights
    model = toy_gan(latent_dim, hidden, depth, spectral_norm=spectral_norm)
    points = sample(steps * n_critic * batch_size, generator=g)  # fresh data for every step
    loader = points.split(n_critic * batch_size)  # batches as views: no per-sample collation
    z = torch.randn(n_samples, latent_dim, generator=g)

    def snapshot(m: nn.Module) -> tuple[Tensor, Tensor | None]:
        return m.generator(z), (m.discriminator(grid) if grid is not None else None)

    step = GANStep(latent_dim, generator=g, objective=objective, n_critic=n_critic, gp_weight=gp_weight)
    return train_gan(model, loader, step, epochs=1, lr=lr, d_lr=d_lr, betas=betas, snapshot=snapshot, every=every)
