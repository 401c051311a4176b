"""VGG (Simonyan and Zisserman, 2015): configurations A-E from one table of 3x3 stacks."""

from __future__ import annotations

from torch import Tensor, nn

__all__ = ["VGG", "vgg", "VGG_CONFIGS", "vgg_stages"]

VGG_CONFIGS: dict[str, list[int | str]] = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],  # VGG-11
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],  # VGG-13
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "E": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
          512, 512, 512, 512, "M"],  # VGG-19
}
"""Each configuration: 3x3 convolutions (their channels) and 2x2 max-pools ("M")."""
_DEPTHS = {11: "A", 13: "B", 16: "D", 19: "E"}


def vgg_stages(config: list[int | str], width: float = 1.0, batch_norm: bool = False,
               in_channels: int = 3) -> nn.Sequential:
    """The convolutional part of a VGG: [B, 3, H, W] -> [B, C, H / 2^p, W / 2^p], where
    p is the number of pools ("M") in ``config``."""
    layers: list[nn.Module] = []
    c_in = in_channels
    for v in config:
        if v == "M":
            layers.append(nn.MaxPool2d(2))
            continue
        c_out = max(1, round(v * width))
        layers.append(nn.Conv2d(c_in, c_out, 3, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm2d(c_out))
        layers.append(nn.ReLU(inplace=True))
        c_in = c_out
    return nn.Sequential(*layers)


class VGG(nn.Module):
    """``features`` (:func:`vgg_stages`), an average pool to ``pool_size``, three dense layers.

    Defaults reproduce torchvision's VGGs (VGG-16: 138,357,544 parameters). For 32x32
    inputs use ``pool_size=1`` (five pools leave 1x1 maps), a ``width`` below 1 and a
    smaller ``hidden``.

    Args:
        config: ``"A"``, ``"B"``, ``"D"``, ``"E"`` (VGG-11, 13, 16, 19) or a list.
        width: multiplies every convolution's channels.
        batch_norm: BN after each convolution (torchvision's ``vgg16_bn``).
    """

    def __init__(self, config: str | list[int | str] = "D", num_classes: int = 1000, width: float = 1.0,
                 batch_norm: bool = False, hidden: int = 4096, pool_size: int = 7, dropout: float = 0.5) -> None:
        super().__init__()
        if isinstance(config, str):
            if config not in VGG_CONFIGS:
                raise ValueError(f"config must be one of {sorted(VGG_CONFIGS)} or a list, got {config!r}")
            config = VGG_CONFIGS[config]
        self.features = vgg_stages(config, width, batch_norm)
        c = max(1, round([v for v in config if v != "M"][-1] * width))
        self.avgpool = nn.AdaptiveAvgPool2d(pool_size)
        self.classifier = nn.Sequential(
            nn.Linear(c * pool_size * pool_size, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(hidden, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        """[B, 3, H, W] -> logits [B, num_classes]."""
        return self.classifier(self.avgpool(self.features(x)).flatten(1))


def vgg(depth: int = 16, num_classes: int = 1000, **kwargs) -> VGG:
    """VGG-11, 13, 16 or 19 (``batch_norm=True`` for the ``_bn`` variants)."""
    if depth not in _DEPTHS:
        raise ValueError(f"depth must be one of {sorted(_DEPTHS)}, got {depth}")
    return VGG(_DEPTHS[depth], num_classes, **kwargs)
