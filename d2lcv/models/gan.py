"""Generators and discriminators: small MLPs for 2-D toys, and DCGAN (Radford et al., 2016).

Every discriminator returns one logit (or critic score) per sample, Tensor[B]. A GAN is an
``nn.ModuleDict(generator=G, discriminator=D)`` (see :func:`toy_gan`), the form
:class:`~d2lcv.engine.GANStep` trains. Conditional models take class labels ``y`` Tensor[B]
(int64) as a second argument: the generator concatenates a learned class embedding to the
noise, the discriminator adds a *projection* term ``<embed(y), features>`` to its logit
(Miyato & Koyama, 2018).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm as sn

__all__ = ["mlp_generator", "mlp_discriminator", "toy_gan", "DCGANGenerator", "DCGANDiscriminator", "dcgan"]


def mlp_generator(latent_dim: int = 2, hidden: int = 128, depth: int = 3, out_dim: int = 2) -> nn.Sequential:
    """``z`` Tensor[B, latent_dim] -> points Tensor[B, out_dim]: ``depth`` ReLU layers, then linear."""
    layers: list[nn.Module] = []
    for i in range(depth):
        layers += [nn.Linear(latent_dim if i == 0 else hidden, hidden), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(hidden if depth else latent_dim, out_dim))


def mlp_discriminator(in_dim: int = 2, hidden: int = 128, depth: int = 3, *, spectral_norm: bool = False) -> nn.Sequential:
    """points Tensor[B, in_dim] -> logits Tensor[B]: ``depth`` LeakyReLU(0.2) layers, then linear.

    ``spectral_norm=True`` divides every weight matrix by its largest singular value
    (``torch.nn.utils.parametrizations.spectral_norm``), making each layer 1-Lipschitz.
    """
    wrap = sn if spectral_norm else (lambda m: m)
    layers: list[nn.Module] = []
    for i in range(depth):
        layers += [wrap(nn.Linear(in_dim if i == 0 else hidden, hidden)), nn.LeakyReLU(0.2)]
    return nn.Sequential(*layers, wrap(nn.Linear(hidden if depth else in_dim, 1)), nn.Flatten(0))


def toy_gan(latent_dim: int = 2, hidden: int = 128, depth: int = 3, *, spectral_norm: bool = False) -> nn.ModuleDict:
    """A GAN for 2-D points: ``ModuleDict(generator=mlp_generator(...), discriminator=mlp_discriminator(...))``."""
    return nn.ModuleDict(dict(generator=mlp_generator(latent_dim, hidden, depth),
                              discriminator=mlp_discriminator(2, hidden, depth, spectral_norm=spectral_norm)))


def _levels(size: int) -> int:
    n = int(round(math.log2(size / 4))) if size >= 8 else 0
    if n < 1 or 4 * 2**n != size:
        raise ValueError(f"size must be 4 times a power of two (8, 16, 32, 64, ...), got {size}")
    return n


class DCGANGenerator(nn.Module):
    """DCGAN's generator: ``z`` Tensor[B, latent_dim] -> images Tensor[B, channels, size, size] in (-1, 1).

    A 4x4 transposed convolution makes a 4x4 map of ``width * 2**(L-1)`` channels from the
    noise; then ``L - 1`` stride-2 transposed convolutions (BatchNorm, ReLU) double the size
    and halve the channels, and a last one (tanh) outputs the image; ``size = 4 * 2**L``.

    Args:
        num_classes: > 0 makes it conditional: ``forward(z, y)`` with labels Tensor[B].
    """

    def __init__(self, latent_dim: int = 64, width: int = 32, channels: int = 3,
                 size: int = 32, num_classes: int = 0) -> None:
        super().__init__()
        levels = _levels(size)
        self.latent_dim, self.num_classes = latent_dim, num_classes
        self.embed = nn.Embedding(num_classes, latent_dim) if num_classes else None
        c = width * 2 ** (levels - 1)
        c_in = latent_dim * (2 if num_classes else 1)  # noise (and the class embedding)
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(c_in, c, 4, 1, 0, bias=False),  # 1 -> 4
            nn.BatchNorm2d(c), nn.ReLU()]
        for _ in range(levels - 1):  # double the size, halve the channels
            layers += [nn.ConvTranspose2d(c, c // 2, 4, 2, 1, bias=False),
                       nn.BatchNorm2d(c // 2), nn.ReLU()]
            c //= 2
        layers += [nn.ConvTranspose2d(c, channels, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        if self.embed is not None:
            if y is None:
                raise ValueError("a conditional generator needs labels y Tensor[B], got None")
            z = torch.cat([z, self.embed(y)], 1)
        return self.net(z[:, :, None, None])


class DCGANDiscriminator(nn.Module):
    """DCGAN's discriminator: images Tensor[B, channels, size, size] -> logits Tensor[B].

    ``L`` stride-2 convolutions (LeakyReLU 0.2; BatchNorm on all but the first) halve the
    size and double the channels down to 4x4, and a 4x4 convolution gives the logit.

    Args:
        num_classes: > 0 makes it conditional: ``forward(x, y)`` adds ``<embed(y), h>``, with
            ``h`` the 4x4 features summed over positions.
    """

    def __init__(self, width: int = 32, channels: int = 3, size: int = 32, num_classes: int = 0) -> None:
        super().__init__()
        levels = _levels(size)
        layers: list[nn.Module] = [nn.Conv2d(channels, width, 4, 2, 1), nn.LeakyReLU(0.2)]
        c = width
        for _ in range(levels - 1):
            layers += [nn.Conv2d(c, 2 * c, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * c), nn.LeakyReLU(0.2)]
            c *= 2
        self.features = nn.Sequential(*layers)
        self.head = nn.Conv2d(c, 1, 4, 1, 0)
        self.embed = nn.Embedding(num_classes, c) if num_classes else None

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        h = self.features(x)  # [B, C, 4, 4]
        logits = self.head(h).flatten()
        if self.embed is not None:
            if y is None:
                raise ValueError("a conditional discriminator needs labels y, got None")
            logits = logits + (self.embed(y) * h.sum((2, 3))).sum(1)
        return logits


def _init_dcgan(m: nn.Module) -> None:
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


def dcgan(latent_dim: int = 64, width: int = 32, channels: int = 3, size: int = 32, num_classes: int = 0) -> nn.ModuleDict:
    """A DCGAN as ``ModuleDict(generator=..., discriminator=...)``, with DCGAN's initialisation
    (convolution weights N(0, 0.02), BatchNorm scales N(1, 0.02))."""
    model = nn.ModuleDict(dict(generator=DCGANGenerator(latent_dim, width, channels, size, num_classes),
                               discriminator=DCGANDiscriminator(width, channels, size, num_classes)))
    model.apply(_init_dcgan)
    return model
