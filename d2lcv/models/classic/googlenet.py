"""GoogLeNet (Szegedy et al., 2015): Inception modules, naive and with 1x1 reductions,
and auxiliary classifiers; with BatchNorm in every convolution as in torchvision."""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["ConvBNReLU", "NaiveInception", "Inception", "InceptionAux", "GoogLeNet"]


class ConvBNReLU(nn.Sequential):
    """conv (no bias), BatchNorm (eps 1e-3, as in torchvision's Inception nets), ReLU."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int | tuple[int, int], stride: int = 1,
                 padding: int | tuple[int, int] = 0) -> None:
        super().__init__(nn.Conv2d(c_in, c_out, kernel_size, stride, padding, bias=False),
                         nn.BatchNorm2d(c_out, eps=1e-3), nn.ReLU(inplace=True))


class NaiveInception(nn.Module):
    """1x1, 3x3 and 5x5 convolutions and a 3x3 max-pool side by side, concatenated:
    [B, C, H, W] -> [B, c1 + c3 + c5 + C, H, W]. The pool keeps all C channels, so
    channels grow from module to module."""

    def __init__(self, c_in: int, c1: int, c3: int, c5: int) -> None:
        super().__init__()
        self.branches = nn.ModuleList([ConvBNReLU(c_in, c1, 1), ConvBNReLU(c_in, c3, 3, padding=1),
                                       ConvBNReLU(c_in, c5, 5, padding=2), nn.MaxPool2d(3, 1, 1)])

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([branch(x) for branch in self.branches], 1)


class Inception(nn.Module):
    """The Inception module with dimension reduction: 1x1 convolutions before the 3x3 and
    5x5 ones and after the pool. [B, c_in, H, W] -> [B, c1 + c3 + c5 + pool, H, W].

    ``k5`` is the kernel of the "5x5" branch: 5 in the paper, 3 in torchvision.
    """

    def __init__(self, c_in: int, c1: int, c3r: int, c3: int, c5r: int, c5: int,
                 pool: int, k5: int = 5) -> None:
        super().__init__()
        self.branch1 = ConvBNReLU(c_in, c1, 1)
        self.branch2 = nn.Sequential(ConvBNReLU(c_in, c3r, 1),
                                     ConvBNReLU(c3r, c3, 3, padding=1))
        self.branch3 = nn.Sequential(ConvBNReLU(c_in, c5r, 1),
                                     ConvBNReLU(c5r, c5, k5, padding=k5 // 2))
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, 1, 1, ceil_mode=True),
                                     ConvBNReLU(c_in, pool, 1))

    def forward(self, x: Tensor) -> Tensor:
        branches = [self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)]
        return torch.cat(branches, 1)


class InceptionAux(nn.Sequential):
    """An auxiliary classifier: 4x4 average pool, 1x1 conv (128), 1024 units, classes."""

    def __init__(self, c_in: int, num_classes: int, hidden: int = 1024, dropout: float = 0.7) -> None:
        super().__init__(nn.AdaptiveAvgPool2d(4), ConvBNReLU(c_in, 128, 1), nn.Flatten(),
                         nn.Linear(128 * 16, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout),
                         nn.Linear(hidden, num_classes))


# (c1, c3 reduce, c3, c5 reduce, c5, pool) of the nine modules, "M": a 3x3/2 max-pool
_MODULES = [(64, 96, 128, 16, 32, 32), (128, 128, 192, 32, 96, 64), "M",
            (192, 96, 208, 16, 48, 64), (160, 112, 224, 24, 64, 64), (128, 128, 256, 24, 64, 64),
            (112, 144, 288, 32, 64, 64), (256, 160, 320, 32, 128, 128), "M",
            (256, 160, 320, 32, 128, 128), (384, 192, 384, 48, 128, 128)]


class GoogLeNet(nn.Module):
    """A stem, nine Inception modules (3a-b, 4a-e, 5a-b), global average pooling, dropout,
    one linear layer; auxiliary classifiers on 4a and 4d while training.

    In training mode with ``aux_logits`` the forward returns ``(logits, aux1, aux2)``, else
    the logits [B, num_classes]. ``k5=3`` and ``aux_logits=True`` reproduce
    ``torchvision.models.googlenet()`` (13,004,888 parameters). ``small_input=True``: a
    3x3 conv, a max-pool and a 3x3 conv as the stem, for 32x32 images (3a at 16x16, 5b at 4x4);
    ``width`` multiplies every channel count.
    """

    def __init__(self, num_classes: int = 1000, aux_logits: bool = False, k5: int = 5, width: float = 1.0,
                 small_input: bool = False, dropout: float = 0.2) -> None:
        super().__init__()
        w = lambda c: max(1, round(c * width))
        if small_input:
            self.stem = nn.Sequential(ConvBNReLU(3, w(64), 3, padding=1), nn.MaxPool2d(2),
                                      ConvBNReLU(w(64), w(192), 3, padding=1))
        else:
            self.stem = nn.Sequential(ConvBNReLU(3, 64, 7, 2, 3), nn.MaxPool2d(3, 2, ceil_mode=True),
                                      ConvBNReLU(64, 64, 1), ConvBNReLU(64, w(192), 3, padding=1),
                                      nn.MaxPool2d(3, 2, ceil_mode=True))
        self.blocks, c = nn.ModuleList(), w(192)
        self.aux_after = (4, 7)  # the outputs of 4a and 4d (the inputs of blocks 4 and 7)
        for spec in _MODULES:
            if spec == "M":
                self.blocks.append(nn.MaxPool2d(2) if small_input else nn.MaxPool2d(3, 2, ceil_mode=True))
                continue
            c1, c3r, c3, c5r, c5, pool = (w(v) for v in spec)
            self.blocks.append(Inception(c, c1, c3r, c3, c5r, c5, pool, k5))
            c = c1 + c3 + c5 + pool
        self.aux1 = InceptionAux(self.blocks[4].branch1[0].in_channels, num_classes) if aux_logits else None
        self.aux2 = InceptionAux(self.blocks[7].branch1[0].in_channels, num_classes) if aux_logits else None
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(c, num_classes))

    def forward(self, x: Tensor) -> Tensor | tuple[Tensor, Tensor, Tensor]:
        x, aux = self.stem(x), []
        for i, block in enumerate(self.blocks):
            if i in self.aux_after and self.aux1 is not None and self.training:
                aux.append((self.aux1 if i == 4 else self.aux2)(x))
            x = block(x)
        logits = self.head(x)
        return (logits, *aux) if aux else logits
