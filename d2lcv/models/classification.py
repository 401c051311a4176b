"""Small image classifiers for 32x32 inputs (CIFAR-10), used across the book.

* :class:`SimpleCNN`: three conv blocks and a linear layer; its first convolution is
  ``model.conv1``, so chapters can show the filters it learns.
* :class:`ResNetCIFAR` / :func:`resnet_cifar`: a ResNet for 32x32 images, with named
  children (``stem``, ``stage1`` ... ``stage4``, ``pool``, ``fc``), the stages that
  fine-tuning freezes (:func:`d2lcv.models.freeze`).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

__all__ = ["SimpleCNN", "BasicBlock", "ResNetCIFAR", "resnet_cifar"]


class SimpleCNN(nn.Module):
    """A small VGG-like CNN: three (conv 3x3, [BN], ReLU, max-pool 2x2) blocks, global
    average pooling and a linear classifier.

    Shapes for a 32x32 input and ``width=w``::

        x      [B, 3, 32, 32]
        conv1  [B, w, 32, 32] -> pool [B, w, 16, 16]
        conv2  [B, 2w, 16, 16] -> pool [B, 2w, 8, 8]
        conv3  [B, 4w, 8, 8] -> pool [B, 4w, 4, 4]
        mean   [B, 4w]
        fc     [B, num_classes]

    Thanks to the global average pooling, any input of at least 8x8 works (e.g. 28x28
    MNIST with ``in_channels=1``).

    Parameters (``num_classes=10``, ``in_channels=3``, with BN): 24,346 for ``width=16``,
    94,762 for ``width=32`` (the default), 373,834 for ``width=64``.

    Args:
        num_classes: outputs of ``fc``.
        width: channels of ``conv1``; ``conv2`` and ``conv3`` have 2x and 4x as many.
        in_channels: input channels.
        batch_norm: BatchNorm after each convolution (which then has no bias).
    """

    def __init__(self, num_classes: int = 10, width: int = 32, in_channels: int = 3, batch_norm: bool = True) -> None:
        super().__init__()
        if width < 1 or num_classes < 1 or in_channels < 1:
            raise ValueError(
                f"num_classes, width and in_channels must be positive, got {num_classes}, {width}, {in_channels}"
            )
        w = width
        self.conv1, self.bn1 = _conv_bn(in_channels, w, batch_norm)
        self.conv2, self.bn2 = _conv_bn(w, 2 * w, batch_norm)
        self.conv3, self.bn3 = _conv_bn(2 * w, 4 * w, batch_norm)
        self.relu = nn.ReLU(inplace=True)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(4 * w, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.pool(self.relu(self.bn1(self.conv1(x))))  # [B, w, H/2, W/2]
        x = self.pool(self.relu(self.bn2(self.conv2(x))))  # [B, 2w, H/4, W/4]
        x = self.pool(self.relu(self.bn3(self.conv3(x))))  # [B, 4w, H/8, W/8]
        return self.fc(x.mean(dim=(2, 3)))  # [B, num_classes]


def _conv_bn(c_in: int, c_out: int, batch_norm: bool) -> tuple[nn.Conv2d, nn.Module]:
    conv = nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, bias=not batch_norm)
    return conv, nn.BatchNorm2d(c_out) if batch_norm else nn.Identity()


class BasicBlock(nn.Module):
    """The ResNet basic block: ``relu(x' + bn(conv(relu(bn(conv(x))))))``.

    ``x'`` is ``x``, or a 1x1 strided convolution and BN of ``x`` when the block changes
    the shape. Input [B, c_in, H, W] -> output [B, c_out, H / stride, W / stride].

    Reference: He et al., Deep Residual Learning for Image Recognition, CVPR 2016.
    """

    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class ResNetCIFAR(nn.Module):
    """A ResNet for 32x32 images: a 3x3 stem (no 7x7 conv, no max-pool), stages of
    :class:`BasicBlock`, global average pooling, a linear classifier.

    Submodules, with shapes for a 32x32 input and ``width=w``, four stages::

        stem    conv 3x3, BN, ReLU   [B, w, 32, 32]
        stage1  blocks, stride 1     [B, w, 32, 32]
        stage2  blocks, stride 2     [B, 2w, 16, 16]
        stage3  blocks, stride 2     [B, 4w, 8, 8]
        stage4  blocks, stride 2     [B, 8w, 4, 4]
        pool    global average pool  [B, 8w]
        fc      linear               [B, num_classes]

    ``model.residual_stages`` lists the residual stages' names. Every child that owns
    parameters is a *stage* in the sense of :func:`d2lcv.models.stage_names` (``stem``,
    ``stage1`` ... ``stage4``, ``fc``), the unit that :func:`d2lcv.models.freeze` freezes:
    ``freeze(model, ["stem", "stage1"])``.
    The classifier is called ``fc``, as in torchvision's ResNets.

    With ``width=64`` and ``(2, 2, 2, 2)`` blocks this is the usual CIFAR ResNet-18
    (11,173,962 parameters for 10 classes). Parameters for 10 classes and
    ``(2, 2, 2, 2)``: 176,402 at ``width=8``, 701,466 at ``width=16``, 2,797,610 at
    ``width=32`` (the default). On a CPU, ``width=16`` is about 2.5x faster than 32.

    Reference: He et al., Deep Residual Learning for Image Recognition, CVPR 2016.

    Args:
        num_classes: outputs of ``fc``.
        width: channels of the stem and of stage 1; each later stage doubles them.
        blocks_per_stage: blocks in each stage; its length (1 to 4) is the number of stages.
        zero_init_residual: start each block's last BN scale at zero, so every block
            begins as the identity (Goyal et al., 2017); often trains faster.
    """

    def __init__(
        self,
        num_classes: int = 10,
        width: int = 32,
        blocks_per_stage: Sequence[int] = (2, 2, 2, 2),
        zero_init_residual: bool = False,
    ) -> None:
        super().__init__()
        blocks_per_stage = tuple(blocks_per_stage)
        if not 1 <= len(blocks_per_stage) <= 4 or min(blocks_per_stage) < 1:
            raise ValueError(f"blocks_per_stage must be 1 to 4 positive ints, got {blocks_per_stage}")
        if width < 1 or num_classes < 1:
            raise ValueError(f"width and num_classes must be positive, got {width} and {num_classes}")
        self.stem = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True)
        )
        self.residual_stages: tuple[str, ...] = tuple(f"stage{i + 1}" for i in range(len(blocks_per_stage)))
        c_in = width
        for i, (name, n_blocks) in enumerate(zip(self.residual_stages, blocks_per_stage)):
            c_out, stride = width * 2**i, 1 if i == 0 else 2
            blocks = [BasicBlock(c_in, c_out, stride)]  # the first block changes the shape
            blocks += [BasicBlock(c_out, c_out) for _ in range(n_blocks - 1)]
            self.add_module(name, nn.Sequential(*blocks))
            c_in = c_out
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(c_in, num_classes)
        self._init_weights(zero_init_residual)

    def _init_weights(self, zero_init_residual: bool) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if isinstance(m, BasicBlock) and zero_init_residual:
                nn.init.zeros_(m.bn2.weight)

    def forward_features(self, x: Tensor) -> Tensor:
        """Input [B, 3, H, W] -> pooled features [B, C] (C = ``fc.in_features``)."""
        x = self.stem(x)
        for name in self.residual_stages:
            x = getattr(self, name)(x)
        return self.pool(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.forward_features(x))  # [B, num_classes]


def resnet_cifar(
    num_classes: int = 10, width: int = 32, blocks_per_stage: Sequence[int] = (2, 2, 2, 2), **kwargs: bool
) -> ResNetCIFAR:
    """A :class:`ResNetCIFAR`; ``width=64`` gives the CIFAR ResNet-18 (11.2M parameters)."""
    return ResNetCIFAR(num_classes, width, blocks_per_stage, **kwargs)
