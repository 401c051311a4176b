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


class _Concat(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([b(x) for b in self.branches], 1)


class InceptionA(_Concat):
    """35x35 module: 1x1; 1x1 -> 5x5; 1x1 -> 3x3 -> 3x3 (a factorised 5x5); pool -> 1x1."""

    def __init__(self, c_in: int, pool: int) -> None:
        super().__init__()
        self.branches = nn.ModuleList([
            ConvBNReLU(c_in, 64, 1), _seq((c_in, 48, 1), (48, 64, 5, 1, 2)),
            _seq((c_in, 64, 1), (64, 96, 3, 1, 1), (96, 96, 3, 1, 1)), _pool_branch(c_in, pool)])


class InceptionB(_Concat):
    """Grid reduction 35 -> 17: a strided 3x3, a strided double 3x3 and a max-pool in parallel."""

    def __init__(self, c_in: int) -> None:
        super().__init__()
        self.branches = nn.ModuleList([
            ConvBNReLU(c_in, 384, 3, 2), _seq((c_in, 64, 1), (64, 96, 3, 1, 1), (96, 96, 3, 2)),
            nn.MaxPool2d(3, 2)])


class InceptionC(_Concat):
    """17x17 module with 7x7 convolutions factorised into 1x7 and 7x1 (``c7`` channels)."""

    def __init__(self, c_in: int, c7: int) -> None:
        super().__init__()
        row, col = ((1, 7), 1, (0, 3)), ((7, 1), 1, (3, 0))
        self.branches = nn.ModuleList([
            ConvBNReLU(c_in, 192, 1),
            _seq((c_in, c7, 1), (c7, c7, *row), (c7, 192, *col)),
            _seq((c_in, c7, 1), (c7, c7, *col), (c7, c7, *row), (c7, c7, *col), (c7, 192, *row)),
            _pool_branch(c_in, 192)])


class InceptionD(_Concat):
    """Grid reduction 17 -> 8."""

    def __init__(self, c_in: int) -> None:
        super().__init__()
        self.branches = nn.ModuleList([
            _seq((c_in, 192, 1), (192, 320, 3, 2)),
            _seq((c_in, 192, 1), (192, 192, (1, 7), 1, (0, 3)), (192, 192, (7, 1), 1, (3, 0)), (192, 192, 3, 2)),
            nn.MaxPool2d(3, 2)])


class _Split(nn.Module):
    """A trunk, then 1x3 and 3x1 convolutions side by side, concatenated."""

    def __init__(self, trunk: nn.Module, c: int) -> None:
        super().__init__()
        self.trunk = trunk
        self.row, self.col = ConvBNReLU(c, 384, (1, 3), 1, (0, 1)), ConvBNReLU(c, 384, (3, 1), 1, (1, 0))

    def forward(self, x: Tensor) -> Tensor:
        x = self.trunk(x)
        return torch.cat([self.row(x), self.col(x)], 1)


class InceptionE(_Concat):
    """8x8 module with expanded filter banks: 3x3 split into parallel 1x3 and 3x1."""

    def __init__(self, c_in: int) -> None:
        super().__init__()
        self.branches = nn.ModuleList([
            ConvBNReLU(c_in, 320, 1), _Split(ConvBNReLU(c_in, 384, 1), 384),
            _Split(_seq((c_in, 448, 1), (448, 384, 3, 1, 1)), 384), _pool_branch(c_in, 192)])


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
    """

    def __init__(self, num_classes: int = 1000, aux_logits: bool = True, dropout: float = 0.5) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            ConvBNReLU(3, 32, 3, 2), ConvBNReLU(32, 32, 3), ConvBNReLU(32, 64, 3, 1, 1), nn.MaxPool2d(3, 2),
            ConvBNReLU(64, 80, 1), ConvBNReLU(80, 192, 3), nn.MaxPool2d(3, 2))
        self.mixed_35 = nn.Sequential(InceptionA(192, 32), InceptionA(256, 64), InceptionA(288, 64),
                                      InceptionB(288))
        self.mixed_17 = nn.Sequential(InceptionC(768, 128), InceptionC(768, 160), InceptionC(768, 160),
                                      InceptionC(768, 192))
        self.aux = _AuxV3(768, num_classes) if aux_logits else None
        self.mixed_8 = nn.Sequential(InceptionD(768), InceptionE(1280), InceptionE(2048))
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout),
                                  nn.Linear(2048, num_classes))

    def forward(self, x: Tensor) -> Tensor | tuple[Tensor, Tensor]:
        x = self.mixed_17(self.mixed_35(self.stem(x)))
        aux = self.aux(x) if self.aux is not None and self.training else None
        logits = self.head(self.mixed_8(x))
        return logits if aux is None else (logits, aux)
