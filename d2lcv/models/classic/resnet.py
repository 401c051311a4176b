"""ResNet (He et al., 2016) and ResNeXt (Xie et al., 2017): basic and bottleneck blocks,
option A (zero-padded identity) or B (1x1 projection) shortcuts, and a plain twin
without shortcuts for the degradation experiment."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["ResidualBlock", "Bottleneck", "PadShortcut", "ResNet", "resnet", "resnext"]

Norm = Callable[[int], nn.Module]

class PadShortcut(nn.Module):
    """Option A: subsample by ``stride`` and append zero channels; no parameters."""

    def __init__(self, c_out: int, stride: int) -> None:
        super().__init__()
        self.c_out, self.stride = c_out, stride

    def forward(self, x: Tensor) -> Tensor:
        x = x[:, :, ::self.stride, ::self.stride]
        return F.pad(x, (0, 0, 0, 0, 0, self.c_out - x.shape[1]))

def _shortcut(c_in: int, c_out: int, stride: int, kind: str, norm: Norm) -> nn.Module:
    if stride == 1 and c_in == c_out:
        return nn.Identity()
    if kind == "A":
        return PadShortcut(c_out, stride)
    return nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), norm(c_out))

class ResidualBlock(nn.Module):
    """The basic block: ``relu(shortcut(x) + bn(conv3x3(relu(bn(conv3x3(x))))))``.
    ``residual=False`` drops the shortcut (a plain block)."""

    expansion = 1

    def __init__(self, c_in: int, planes: int, stride: int = 1, shortcut: str = "B",
                 residual: bool = True, norm: Norm = nn.BatchNorm2d, groups: int = 1,
                 base_width: int = 64) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, planes, 3, stride, 1, bias=False)
        self.bn1 = norm(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = norm(planes)
        self.shortcut = (_shortcut(c_in, planes, stride, shortcut, norm)
                         if residual else None)

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out if self.shortcut is None else out + self.shortcut(x))

class Bottleneck(nn.Module):
    """1x1 (reduce to ``width``), 3x3 (stride, ``groups``), 1x1 (expand to 4 x planes).

    ``width = planes * base_width / 64 * groups``: ResNet-50 has ``groups=1,
    base_width=64``; ResNeXt-50 (32x4d) has ``groups=32, base_width=4``, a grouped 3x3 of
    cardinality 32 with 4 channels per group."""

    expansion = 4

    def __init__(self, c_in: int, planes: int, stride: int = 1, shortcut: str = "B", residual: bool = True,
                 norm: Norm = nn.BatchNorm2d, groups: int = 1, base_width: float = 64) -> None:
        super().__init__()
        width = int(planes * base_width / 64) * groups
        self.conv1, self.bn1 = nn.Conv2d(c_in, width, 1, bias=False), norm(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, groups=groups, bias=False)
        self.bn2 = norm(width)
        self.conv3, self.bn3 = nn.Conv2d(width, planes * 4, 1, bias=False), norm(planes * 4)
        self.shortcut = _shortcut(c_in, planes * 4, stride, shortcut, norm) if residual else None

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out if self.shortcut is None else out + self.shortcut(x))

class ResNet(nn.Module):
    """A stem, stages of blocks (the first block of stages 2.. halves the resolution and
    the channels double), global average pooling, one linear layer.

    ImageNet stem: 7x7/2 conv, BN, ReLU, 3x3/2 max-pool (``resnet(18)`` ... reproduce
    torchvision's parameter counts). ``small_input=True``: a 3x3 conv stem for 32x32
    images (``stem_pool=True`` adds a 2x2 max-pool after it, so that the blocks start at
16x16). ``residual=False`` builds the plain twin of the same depth.

    Args:
        block: :class:`ResidualBlock` or :class:`Bottleneck`.
        layers: blocks per stage, e.g. (2, 2, 2, 2) for ResNet-18.
        width: channels of the first stage's planes (64 in the paper).
        norm: a ``channels -> module`` normalisation (BatchNorm by default; a GroupNorm
            factory works as well).
    """

    def __init__(self, block: type[nn.Module], layers: Sequence[int], num_classes: int = 1000, width: int = 64,
                 small_input: bool = False, shortcut: str = "B", residual: bool = True,
                 norm: Norm = nn.BatchNorm2d, groups: int = 1, base_width: int = 64,
                 stem_pool: bool = False) -> None:
        super().__init__()
        if shortcut not in ("A", "B"):
            raise ValueError(f"shortcut must be 'A' or 'B', got {shortcut!r}")
        if small_input:
            self.stem = nn.Sequential(nn.Conv2d(3, width, 3, 1, 1, bias=False), norm(width), nn.ReLU(inplace=True),
                                      *([nn.MaxPool2d(2)] if stem_pool else []))
        else:
            self.stem = nn.Sequential(nn.Conv2d(3, width, 7, 2, 3, bias=False), norm(width), nn.ReLU(inplace=True),
                                      nn.MaxPool2d(3, 2, 1))
        stages, c = [], width
        for i, n in enumerate(layers):
            planes, stride = width * 2**i, 1 if i == 0 else 2
            blocks = []
            for j in range(n):
                blocks.append(block(c, planes, stride if j == 0 else 1, shortcut, residual, norm, groups,
                                    base_width * 64 / width))  # group width at stage 1: base_width
                c = planes * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, num_classes))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: Tensor) -> Tensor:
        """[B, 3, H, W] -> logits [B, num_classes]."""
        return self.head(self.stages(self.stem(x)))

_DEPTHS = {18: (ResidualBlock, (2, 2, 2, 2)), 34: (ResidualBlock, (3, 4, 6, 3)),
           50: (Bottleneck, (3, 4, 6, 3)), 101: (Bottleneck, (3, 4, 23, 3)), 152: (Bottleneck, (3, 8, 36, 3))}

def resnet(depth: int = 18, num_classes: int = 1000, **kwargs) -> ResNet:
    """ResNet-18, 34, 50, 101 or 152 (keywords for :class:`ResNet`)."""
    if depth not in _DEPTHS:
        raise ValueError(f"depth must be one of {sorted(_DEPTHS)}, got {depth}")
    block, layers = _DEPTHS[depth]
    return ResNet(block, layers, num_classes, **kwargs)

def resnext(depth: int = 50, num_classes: int = 1000, cardinality: int = 32, group_width: int = 4,
            **kwargs) -> ResNet:
    """ResNeXt-50 (32x4d) and friends: bottleneck ResNets with grouped 3x3 convolutions."""
    if depth not in (50, 101, 152):
        raise ValueError(f"depth must be 50, 101 or 152, got {depth}")
    return resnet(depth, num_classes, groups=cardinality, base_width=group_width, **kwargs)

