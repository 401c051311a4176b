"""Inception v3 (Szegedy et al., 2016): factorised convolutions (5x5 -> two 3x3,
n x n -> 1 x n then n x 1), grid reductions, an auxiliary classifier; torchvision's layout."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .googlenet import ConvBNReLU

__all__ = ["InceptionA", "InceptionB", "InceptionC", "InceptionD", "InceptionE", "InceptionV3"]


def _seq(*convs: tuple) -> nn.Sequential:
    """ConvBNReLU layers from ``(c_in, c_out, kernel, stride, padding)`` tuples."""
    return nn.Sequential(*(ConvBNReLU(*c) for c in convs))


def _pool_branch(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.AvgPool2d(3, 1, 1), ConvBNReLU(c_in, c_out, 1))


def _scaled(c: int, width: float) -> int:
    """``c`` channels scaled by ``width`` (at least 8; exactly ``c`` at width 1)."""
    return c if width == 1 else max(8, round(c * width))


class _Concat(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([b(x) for b in self.branches], 1)


class InceptionA(_Concat):
    """35x35 module: 1x1; 1x1 -> 5x5; 1x1 -> 3x3 -> 3x3 (a factorised 5x5); pool -> 1x1."""

    def __init__(self, c_in: int, pool: int, width: float = 1.0) -> None:
        super().__init__()
        c48, c64, c96, pool = (_scaled(c, width) for c in (48, 64, 96, pool))
        self.branches = nn.ModuleList([
            ConvBNReLU(c_in, c64, 1), _seq((c_in, c48, 1), (c48, c64, 5, 1, 2)),
            _seq((c_in, c64, 1), (c64, c96, 3, 1, 1), (c96, c96, 3, 1, 1)), _pool_branch(c_in, pool)])
        self.out_channels = 2 * c64 + c96 + pool


class InceptionB(_Concat):
    """Grid reduction 35 -> 17: a strided 3x3, a strided double 3x3 and a max-pool in parallel."""

    def __init__(self, c_in: int, width: float = 1.0) -> None:
        super().__init__()
        c64, c96, c384 = (_scaled(c, width) for c in (64, 96, 384))
        self.branches = nn.ModuleList([
            ConvBNReLU(c_in, c384, 3, 2), _seq((c_in, c64, 1), (c64, c96, 3, 1, 1), (c96, c96, 3, 2)),
            nn.MaxPool2d(3, 2)])
        self.out_channels = c384 + c96 + c_in


class InceptionC(_Concat):
    """17x17 module with 7x7 convolutions factorised into 1x7 and 7x1 (``c7`` channels)."""

    def __init__(self, c_in: int, c7: int, width: float = 1.0) -> None:
        super().__init__()
        row, col = ((1, 7), 1, (0, 3)), ((7, 1), 1, (3, 0))
        c7, c = _scaled(c7, width), _scaled(192, width)
        self.branches = nn.ModuleList([
            ConvBNReLU(c_in, c, 1),
            _seq((c_in, c7, 1), (c7, c7, *row), (c7, c, *col)),
            _seq((c_in, c7, 1), (c7, c7, *col), (c7, c7, *row),
                 (c7, c7, *col), (c7, c, *row)),
            _pool_branch(c_in, c)])
        self.out_channels = 4 * c


class InceptionD(_Concat):
    """Grid reduction 17 -> 8."""

    def __init__(self, c_in: int, width: float = 1.0) -> None:
        super().__init__()
        c192, c320 = _scaled(192, width), _scaled(320, width)
        self.branches = nn.ModuleList([
            _seq((c_in, c192, 1), (c192, c320, 3, 2)),
            _seq((c_in, c192, 1), (c192, c192, (1, 7), 1, (0, 3)), (c192, c192, (7, 1), 1, (3, 0)),
                 (c192, c192, 3, 2)),
            nn.MaxPool2d(3, 2)])
        self.out_channels = c320 + c192 + c_in


class _Split(nn.Module):
    """A trunk, then 1x3 and 3x1 convolutions side by side, concatenated."""

    def __init__(self, trunk: nn.Module, c: int, c_out: int = 384) -> None:
        super().__init__()
        self.trunk = trunk
        self.row, self.col = ConvBNReLU(c, c_out, (1, 3), 1, (0, 1)), ConvBNReLU(c, c_out, (3, 1), 1, (1, 0))

    def forward(self, x: Tensor) -> Tensor:
        x = self.trunk(x)
        return torch.cat([self.row(x), self.col(x)], 1)


class InceptionE(_Concat):
    """8x8 module with expanded filter banks: 3x3 split into parallel 1x3 and 3x1."""

    def __init__(self, c_in: int, width: float = 1.0) -> None:
        super().__init__()
        c192, c320, c384, c448 = (_scaled(c, width) for c in (192, 320, 384, 448))
        self.branches = nn.ModuleList([
            ConvBNReLU(c_in, c320, 1), _Split(ConvBNReLU(c_in, c384, 1), c384, c384),
            _Split(_seq((c_in, c448, 1), (c448, c384, 3, 1, 1)), c384, c384), _pool_branch(c_in, c192)])
        self.out_channels = c320 + 4 * c384 + c192


class _AuxV3(nn.Sequential):
    def __init__(self, c_in: int, num_classes: int) -> None:
        super().__init__(nn.AvgPool2d(5, 3), ConvBNReLU(c_in, 128, 1), ConvBNReLU(128, 768, 5),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(768, num_classes))


class InceptionV3(nn.Module):
    """Inception v3 for 299x299 inputs: [B, 3, 299, 299] -> logits [B, num_classes].

    Stem (five convolutions, two max-pools) -> 3 x InceptionA (35x35) -> InceptionB ->
    4 x InceptionC (17x17) -> InceptionD -> 2 x InceptionE (8x8) -> average pool,
    dropout, linear. With ``aux_logits`` (torchvision's default) an auxiliary classifier
    reads the 17x17 maps and training mode returns ``(logits, aux)``; 27,161,264
    parameters, as ``torchvision.models.inception_v3()``.

    ``width`` scales every layer's channels (at least 8 each); ``small_input=True``
    replaces the stem by four stride-1 convolutions (3x3, 3x3, 1x1, 3x3) and one 2x2
    max-pool for 32x32 images, whose grid then goes 16 -> 7 -> 3 (no auxiliary head:
    its 5x5 convolution needs the 17x17 grid).
    """

    def __init__(self, num_classes: int = 1000, aux_logits: bool = True, dropout: float = 0.5,
                 width: float = 1.0, small_input: bool = False) -> None:
        super().__init__()
        if small_input and aux_logits:
            raise ValueError("small_input=True has no auxiliary classifier; pass aux_logits=False")
        c32, c64, c80, c192 = (_scaled(c, width) for c in (32, 64, 80, 192))
        if small_input:
            self.stem = nn.Sequential(ConvBNReLU(3, c32, 3, 1, 1), ConvBNReLU(c32, c64, 3, 1, 1),
                                      ConvBNReLU(c64, c80, 1), ConvBNReLU(c80, c192, 3, 1, 1), nn.MaxPool2d(2))
        else:
            self.stem = nn.Sequential(
                ConvBNReLU(3, c32, 3, 2), ConvBNReLU(c32, c32, 3), ConvBNReLU(c32, c64, 3, 1, 1), nn.MaxPool2d(3, 2),
                ConvBNReLU(c64, c80, 1), ConvBNReLU(c80, c192, 3), nn.MaxPool2d(3, 2))
        blocks = [InceptionA(c192, 32, width)]
        for make in (lambda c: InceptionA(c, 64, width), lambda c: InceptionA(c, 64, width),
                     lambda c: InceptionB(c, width)):
            blocks.append(make(blocks[-1].out_channels))
        self.mixed_35 = nn.Sequential(*blocks)
        for c7 in (128, 160, 160, 192):
            blocks.append(InceptionC(blocks[-1].out_channels, c7, width))
        self.mixed_17 = nn.Sequential(*blocks[4:])
        c = blocks[-1].out_channels
        self.aux = _AuxV3(c, num_classes) if aux_logits else None
        for make in (InceptionD, InceptionE, InceptionE):
            blocks.append(make(blocks[-1].out_channels, width))
        self.mixed_8 = nn.Sequential(*blocks[8:])
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout),
                                  nn.Linear(blocks[-1].out_channels, num_classes))

    def forward(self, x: Tensor) -> Tensor | tuple[Tensor, Tensor]:
        x = self.mixed_17(self.mixed_35(self.stem(x)))
        aux = self.aux(x) if self.aux is not None and self.training else None
        logits = self.head(self.mixed_8(x))
        return logits if aux is None else (logits, aux)
