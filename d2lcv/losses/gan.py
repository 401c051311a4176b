"""The losses of generative adversarial networks, on the discriminator's logits or scores.

With ``D(x) = sigmoid(logit)`` (Goodfellow et al., 2014):

* :func:`discriminator_loss`: ``-log D(real) - log(1 - D(fake))``, averaged;
* :func:`generator_loss`: non-saturating ``-log D(fake)`` (the default), or the saturating
  ``log(1 - D(fake))`` of the minimax game;
* :func:`critic_loss`, :func:`critic_generator_loss` and :func:`gradient_penalty`: the
  Wasserstein GAN with gradient penalty (Arjovsky et al., 2017; Gulrajani et al., 2017),
  on a critic's unbounded scores.

All inputs are 1-D (one logit or score per sample) or any shape; the losses are means.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["discriminator_loss", "generator_loss", "critic_loss", "critic_generator_loss", "gradient_penalty"]


def discriminator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """``mean(-log D(real)) + mean(-log(1 - D(fake)))`` from logits, computed stably.

    Args:
        real_logits (Tensor[B]): the discriminator's logits on real samples.
        fake_logits (Tensor[B']): its logits on generated samples.

    Returns:
        Tensor[]: the binary cross-entropy of real against fake (``2 log 2`` at ``D = 1/2``).
    """
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def generator_loss(fake_logits: Tensor, *, saturating: bool = False) -> Tensor:
    """The generator's loss on the logits of its samples.

    ``saturating=False`` (the default): ``mean(-log D(G(z)))``, whose gradient is large when
    the discriminator rejects the samples. ``saturating=True``: ``mean(log(1 - D(G(z))))``,
    the minimax objective's own term, whose gradient vanishes exactly then.

    Args:
        fake_logits (Tensor[B]): the discriminator's logits on generated samples.
    """
    if saturating:
        return -F.softplus(fake_logits).mean()  # log(1 - sigmoid(l)) = -softplus(l)
    return F.softplus(-fake_logits).mean()  # -log sigmoid(l) = softplus(-l)


def critic_loss(real_scores: Tensor, fake_scores: Tensor) -> Tensor:
    """The Wasserstein critic's loss ``mean(f(fake)) - mean(f(real))`` (the negative of the
    estimate of the Wasserstein-1 distance that the critic maximises).

    Args:
        real_scores (Tensor[B]), fake_scores (Tensor[B']): the critic's unbounded scores.
    """
    return fake_scores.mean() - real_scores.mean()


def critic_generator_loss(fake_scores: Tensor) -> Tensor:
    """The Wasserstein generator's loss ``-mean(f(G(z)))``."""
    return -fake_scores.mean()


def gradient_penalty(
    critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor, *,
    generator: torch.Generator | None = None,
) -> Tensor:
    """WGAN-GP's penalty ``mean((||grad f(x_hat)|| - 1)^2)`` at random points between samples.

    ``x_hat = eps * real + (1 - eps) * fake`` with one ``eps ~ U(0, 1)`` per pair. The graph
    is kept (``create_graph=True``), so the penalty can be back-propagated into the critic.

    Args:
        critic: ``critic(x) -> Tensor[B]`` scores.
        real (Tensor[B, ...]), fake (Tensor[B, ...]): paired samples of the same shape.
        generator: the CPU ``torch.Generator`` for ``eps``; ``None``: torch's global one.

    Returns:
        Tensor[]: the penalty (0 for an empty batch).
    """
    if real.shape != fake.shape:
        raise ValueError(f"real and fake must have the same shape, got "
                         f"{tuple(real.shape)} and {tuple(fake.shape)}")
    if len(real) == 0:
        return real.new_zeros(())
    shape = (len(real),) + (1,) * (real.dim() - 1)  # one eps per sample
    eps = torch.rand(shape, generator=generator).to(real)
    x_hat = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return (grad.flatten(1).norm(dim=1) - 1).pow(2).mean()
