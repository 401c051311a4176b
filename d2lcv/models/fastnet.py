"""A small classifier for 32x32 images that trains fast on a CPU: :class:`FastNet`.

A 3x3 convolution on 32x32 maps costs as many multiply-adds as one with twice the input
and output channels on 16x16 maps, and its BatchNorm, ReLU and pooling, which are bound by
memory traffic, cost twice as much. :class:`FastNet` therefore has one convolution at
full resolution (the stem) and halves the resolution *before* each later convolution,
doubling the channels, in the spirit of the fast CIFAR-10 networks of Page (2018) and
Jordan (2024) but much narrower. At ``width=16`` it trains at a few thousand 32x32 images
per second on one CPU core, about three times as fast as
:func:`~d2lcv.models.resnet_cifar` at ``width=8``.
"""

from __future__ import annotations

from torch import Tensor, nn

__all__ = ["FastNet", "fastnet"]


def _conv_bn_relu(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


class FastNet(nn.Module):
    """A stem and ``num_stages`` stages of (2x2 max-pool, 3x3 conv, BN, ReLU), global max
    pooling and a linear classifier.

    Children, with shapes for a 32x32 input, ``width=w`` and three stages::

        stem    conv 3x3, BN, ReLU                   [B, w, 32, 32]
        stage1  max-pool 2, conv 3x3, BN, ReLU (xd)  [B, 2w, 16, 16]
        stage2  max-pool 2, conv 3x3, BN, ReLU (xd)  [B, 4w, 8, 8]
        stage3  max-pool 2, conv 3x3, BN, ReLU (xd)  [B, 8w, 4, 4]
        pool    global max pool                      [B, 8w]
        fc      linear                               [B, num_classes]

    ``d = convs_per_stage``: the first convolution of a stage doubles the channels, the
    others keep them. Every child with parameters is a stage for
    :func:`d2lcv.models.freeze` (``stem``, ``stage1`` ..., ``fc``), as in
    :class:`~d2lcv.models.ResNetCIFAR`. Any input whose sides are multiples of
    ``2 ** num_stages`` works (the global pool takes any size).

    Parameters for 10 classes and three stages: 98,970 at ``width=16`` (the default),
    221,026 at ``width=24``, 391,466 at ``width=32``; with ``convs_per_stage=2`` and
    ``width=16``, 292,954. The forward pass of a 32x32 image costs about 4.0M
    multiply-adds at ``width=16``, a tenth of them at full resolution (``resnet_cifar`` at
    ``width=8``: about 8.8M, a third at full resolution).

    Args:
        num_classes: outputs of ``fc``.
        width: channels of the stem; each stage doubles them.
        num_stages: stages after the stem (1 to 4).
        convs_per_stage: convolutions in each stage (>= 1).
        in_channels: input channels.
    """

    def __init__(
        self,
        num_classes: int = 10,
        width: int = 16,
        num_stages: int = 3,
        convs_per_stage: int = 1,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        if min(num_classes, width, in_channels, convs_per_stage) < 1:
            raise ValueError(f"num_classes, width, in_channels and convs_per_stage must be positive, got "
                             f"{num_classes}, {width}, {in_channels}, {convs_per_stage}")
        if not 1 <= num_stages <= 4:
            raise ValueError(f"num_stages must be 1 to 4, got {num_stages}")
        self.stem = nn.Sequential(*_conv_bn_relu(in_channels, width))
        self.stages: tuple[str, ...] = tuple(f"stage{i + 1}" for i in range(num_stages))
        c = width
        for name in self.stages:
            layers: list[nn.Module] = [nn.MaxPool2d(2), *_conv_bn_relu(c, 2 * c)]
            for _ in range(convs_per_stage - 1):
                layers += _conv_bn_relu(2 * c, 2 * c)
            self.add_module(name, nn.Sequential(*layers))
            c *= 2
        self.pool = nn.Sequential(nn.AdaptiveMaxPool2d(1), nn.Flatten())
        self.fc = nn.Linear(c, num_classes)

    def forward_features(self, x: Tensor) -> Tensor:
        """Input [B, C, H, W] -> pooled features [B, F] (F = ``fc.in_features``)."""
        x = self.stem(x)
        for name in self.stages:
            x = getattr(self, name)(x)
        return self.pool(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.forward_features(x))  # [B, num_classes]


def fastnet(num_classes: int = 10, width: int = 16, **kwargs: int) -> FastNet:
    """A :class:`FastNet` (``num_stages``, ``convs_per_stage``, ``in_channels`` as keywords)."""
    return FastNet(num_classes, width, **kwargs)
