"""DenseNet (Huang et al., 2017): every layer reads the concatenation of all earlier maps
in its block and adds ``growth_rate`` new ones; 1x1 bottlenecks (B) and compressing
transitions (C)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

__all__ = ["DenseLayer", "DenseBlock", "Transition", "DenseNet", "densenet"]


class DenseLayer(nn.Sequential):
    """BN, ReLU, [1x1 conv to ``bn_size * k``, BN, ReLU,] 3x3 conv to ``k`` channels."""

    def __init__(self, c_in: int, growth_rate: int, bn_size: int | None = 4) -> None:
        layers: list[nn.Module] = [nn.BatchNorm2d(c_in), nn.ReLU(inplace=True)]
        if bn_size:  # DenseNet-B
            layers += [nn.Conv2d(c_in, bn_size * growth_rate, 1, bias=False),
                       nn.BatchNorm2d(bn_size * growth_rate), nn.ReLU(inplace=True)]
            c_in = bn_size * growth_rate
        super().__init__(*layers, nn.Conv2d(c_in, growth_rate, 3, padding=1, bias=False))


class DenseBlock(nn.Module):
    """``n`` dense layers: [B, C, H, W] -> [B, C + n * growth_rate, H, W]."""

    def __init__(self, n: int, c_in: int, growth_rate: int,
                 bn_size: int | None = 4) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            DenseLayer(c_in + i * growth_rate, growth_rate, bn_size) for i in range(n))

    def forward(self, x: Tensor) -> Tensor:
        features = [x]
        for layer in self.layers:
            features.append(layer(torch.cat(features, 1)))
        return torch.cat(features, 1)


class Transition(nn.Sequential):
    """BN, ReLU, 1x1 conv to ``c_out`` channels, 2x2 average pool."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__(nn.BatchNorm2d(c_in), nn.ReLU(inplace=True), nn.Conv2d(c_in, c_out, 1, bias=False),
                         nn.AvgPool2d(2))


class DenseNet(nn.Module):
    """A stem, dense blocks joined by transitions (which keep ``compression`` of the
    channels), BN, ReLU, global average pooling, one linear layer.

    ``densenet(121)`` reproduces ``torchvision.models.densenet121`` (7,978,856 parameters).
    ``small_input=True``: a 3x3 stem for 32x32 images (``stem_pool``: then a 2x2
    max-pool). ``bn_size=None`` drops the 1x1 bottlenecks; ``compression=1`` keeps all
    channels (plain DenseNet, no "B", no "C").
    """

    def __init__(self, block_config: Sequence[int] = (6, 12, 24, 16), growth_rate: int = 32, num_classes: int = 1000,
                 init_features: int = 64, bn_size: int | None = 4, compression: float = 0.5,
                 small_input: bool = False, stem_pool: bool = False) -> None:
        super().__init__()
        if not 0 < compression <= 1:
            raise ValueError(f"compression must be in (0, 1], got {compression}")
        c = init_features
        if small_input:
            stem: list[nn.Module] = [nn.Conv2d(3, c, 3, padding=1, bias=False)]
            stem += [nn.MaxPool2d(2)] if stem_pool else []
        else:
            stem = [nn.Conv2d(3, c, 7, 2, 3, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True),
                    nn.MaxPool2d(3, 2, 1)]
        layers = stem
        for i, n in enumerate(block_config):
            layers.append(DenseBlock(n, c, growth_rate, bn_size))
            c += n * growth_rate
            if i < len(block_config) - 1:
                layers.append(Transition(c, int(c * compression)))
                c = int(c * compression)
        self.features = nn.Sequential(*layers, nn.BatchNorm2d(c), nn.ReLU(inplace=True))
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, num_classes))

    def forward(self, x: Tensor) -> Tensor:
        """[B, 3, H, W] -> logits [B, num_classes]."""
        return self.head(self.features(x))


_CONFIGS = {121: (6, 12, 24, 16), 169: (6, 12, 32, 32), 201: (6, 12, 48, 32)}


def densenet(depth: int = 121, num_classes: int = 1000, **kwargs) -> DenseNet:
    """DenseNet-121, 169 or 201 (growth rate 32), keywords for :class:`DenseNet`."""
    if depth not in _CONFIGS:
        raise ValueError(f"depth must be one of {sorted(_CONFIGS)}, got {depth}")
    return DenseNet(_CONFIGS[depth], num_classes=num_classes, **kwargs)
