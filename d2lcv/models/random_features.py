"""A style-transfer feature network that needs no training: random filters on an image
pyramid.

Ustyuzhaninov et al. (ICLR 2017) found that a *single* layer of random convolution
filters synthesises natural textures, provided its receptive fields span several scales
(they used filters from 3x3 up to 55x55 pixels). :class:`RandomPyramidFeatures` gets the
same range of scales cheaply: small random filters applied to every level of a Gaussian
pyramid (the image, then blurred and halved again and again; Burt & Adelson, 1983), so a
5x5 filter at the level halved three times sees 40x40 pixels of the image.

It is a drop-in for :class:`d2lcv.models.style.FeatureExtractor` in
:func:`d2lcv.recipes.stylize`: it has ``layers`` and returns ``{name: feature map}``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from d2lcv.transforms.stats import IMAGENET_MEAN, IMAGENET_STD

__all__ = ["blur_downsample", "RandomPyramidFeatures"]

_BINOMIAL = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16  # a 5-tap Gaussian


def _check_maps(x: Tensor) -> None:
    if x.ndim != 4 or min(x.shape[-2:]) < 3:
        raise ValueError(
            f"x must be [B, C, H, W] with H, W >= 3, got shape {tuple(x.shape)}"
        )


def blur_downsample(x: Tensor) -> Tensor:
    """One Gaussian-pyramid step: blur with the 5x5 binomial kernel, keep every other pixel.

    Args:
        x (Tensor[B, C, H, W]): H, W >= 3 (reflection padding).

    Returns:
        Tensor[B, C, ceil(H/2), ceil(W/2)].
    """
    _check_maps(x)
    kernel = (_BINOMIAL[:, None] * _BINOMIAL[None]).to(x)  # [5, 5], sums to 1
    kernel = kernel.expand(x.shape[1], 1, 5, 5)  # one per channel
    x = F.pad(x, (2, 2, 2, 2), mode="reflect")
    return F.conv2d(x, kernel, stride=2, groups=x.shape[1])


class RandomPyramidFeatures(nn.Module):
    """Random ReLU features at several scales of a Gaussian pyramid, by name.

    Level ``l`` (layer ``"scale{2**l}"``) blurs and halves the normalised image ``l``
    times and applies ``width`` random ``kernel x kernel`` filters and a ReLU. Every filter
    is zero-mean on each colour channel, so it answers to contrast, not to flat colour;
    layer ``"rgb"`` returns the normalised pixels themselves, for colour.

    Args:
        levels: pyramid levels, 1 to 6.
        width: random filters per level.
        kernel: their size (odd).
        center: subtract from each feature map its mean over positions (``"rgb"``
            excepted), so that a Gram matrix of it is a covariance: the means of ReLU
            features dominate an uncentred Gram matrix and drown the texture in it.
        seed: the filters are drawn from ``torch.Generator().manual_seed(seed)``.
        mean, std: input normalisation.

    Shapes: ``forward(x)`` takes x [B, 3, H, W] in [0, 1] with H, W >= ``min_size`` =
    max(4, kernel // 2 + 1) * 2**(levels-1) and returns ``{"rgb": [B, 3, H, W],
    "scale1": [B, width, H, W], "scale2": [B, width, H/2, W/2], ...}`` (halved sizes
    rounded up).
    """

    def __init__(
        self, levels: int = 4, width: int = 64, kernel: int = 5, *, center: bool = True,
        seed: int = 0, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD,
    ) -> None:
        super().__init__()
        if not 1 <= levels <= 6 or width < 1 or kernel < 1 or kernel % 2 == 0:
            raise ValueError(
                "need 1 <= levels <= 6, width >= 1 and an odd kernel >= 1, got "
                f"levels={levels}, width={width}, kernel={kernel}"
            )
        g = torch.Generator().manual_seed(seed)
        w = torch.randn(levels, width, 3, kernel, kernel, generator=g)
        if kernel > 1:
            w = w - w.mean(dim=(3, 4), keepdim=True)  # zero-mean per colour channel
        self.register_buffer("weight", w / (3 * kernel * kernel) ** 0.5)
        self.register_buffer("scale", torch.ones(levels))  # set by calibrate_
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))
        self.center = center
        self.layers = ("rgb", *(f"scale{2 ** level}" for level in range(levels)))
        self.min_size = max(4, kernel // 2 + 1) * 2 ** (levels - 1)

    def _check(self, x: Tensor) -> None:
        if x.ndim != 4 or x.shape[1] != 3 or min(x.shape[-2:]) < self.min_size:
            raise ValueError(
                f"x must be RGB images [B, 3, H, W] in [0, 1] with H, W >= {self.min_size} "
                f"for {len(self.layers) - 1} levels, got shape {tuple(x.shape)}"
            )

    def _relu_maps(self, x: Tensor) -> list[Tensor]:
        """The ReLU responses of every level, [B, width, h, w] each, before centring."""
        x = (x - self.mean) / self.std
        pad = self.weight.shape[-1] // 2
        maps = []
        for level, w in enumerate(self.weight):
            if level:
                x = blur_downsample(x)
            f = F.conv2d(F.pad(x, (pad,) * 4, mode="reflect"), w)
            maps.append(F.relu(f) * self.scale[level])
        return maps

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        self._check(x)
        out = {"rgb": (x - self.mean) / self.std}
        for name, f in zip(self.layers[1:], self._relu_maps(x)):
            out[name] = f - f.mean(dim=(2, 3), keepdim=True) if self.center else f
        return out

    @torch.no_grad()
    def calibrate_(self, images: Tensor) -> RandomPyramidFeatures:
        """Rescale each level so that its mean ReLU activation over ``images`` is 1 (one
        factor per level, like ``normalize_filters_(..., per="layer")``), so that every
        scale weighs about equally in the style loss.

        Args:
            images (Tensor[B, 3, H, W]): in [0, 1]; e.g. the photo and the painting.

        Returns:
            ``self``.
        """
        self._check(images)
        self.scale.fill_(1.0)
        for level, f in enumerate(self._relu_maps(images)):
            m = f.mean()
            self.scale[level] = 1 / m if m > 0 else 1.0
        return self
