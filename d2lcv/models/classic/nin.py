"""Network in Network (Lin et al., 2014): mlpconv blocks and global average pooling."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

__all__ = ["NiN", "nin_block"]


def nin_block(c_in: int, c_out: int, kernel_size: int, stride: int = 1,
              padding: int = 0, last_relu: bool = True,
              batch_norm: bool = False) -> nn.Sequential:
    """An mlpconv block: a k x k convolution, then two 1x1 convolutions (a per-pixel
    MLP), each followed by a ReLU (and, with ``batch_norm``, a BatchNorm before it)."""
    norm = (lambda: [nn.BatchNorm2d(c_out)]) if batch_norm else list
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel_size, stride, padding),
        *norm(), nn.ReLU(inplace=True),
        nn.Conv2d(c_out, c_out, 1), *norm(), nn.ReLU(inplace=True),
        nn.Conv2d(c_out, c_out, 1), *([nn.ReLU(inplace=True)] if last_relu else []),
    )


class NiN(nn.Sequential):
    """Three mlpconv blocks with max-pools, a last block with one channel per class, and
    global average pooling instead of dense layers (the class block ends without a
    ReLU, so that logits can be negative).

    ImageNet size (``small_input=False``, d2l's layout): 11x11/4, 5x5, 3x3 blocks with
    channels (96, 256, 384). ``small_input=True``: 3x3 blocks and 2x2 pools for 32x32
    images ([B, C, 4, 4] before the class block). ``batch_norm=True`` adds BatchNorm in
    each block (the 2014 network had none).
    """

    def __init__(self, num_classes: int = 1000, channels: Sequence[int] = (96, 256, 384),
                 small_input: bool = False, dropout: float = 0.5, batch_norm: bool = False) -> None:
        c1, c2, c3 = channels
        bn = dict(batch_norm=batch_norm)
        if small_input:
            blocks = [nin_block(3, c1, 3, 1, 1, **bn), nn.MaxPool2d(2), nin_block(c1, c2, 3, 1, 1, **bn),
                      nn.MaxPool2d(2), nin_block(c2, c3, 3, 1, 1, **bn), nn.MaxPool2d(2)]
        else:
            blocks = [nin_block(3, c1, 11, 4, **bn), nn.MaxPool2d(3, 2), nin_block(c1, c2, 5, 1, 2, **bn),
                      nn.MaxPool2d(3, 2), nin_block(c2, c3, 3, 1, 1, **bn), nn.MaxPool2d(3, 2)]
        super().__init__(*blocks, nn.Dropout(dropout), nin_block(c3, num_classes, 3, 1, 1, last_relu=False),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten())

    def forward(self, x: Tensor) -> Tensor:
        """[B, 3, H, W] -> logits [B, num_classes] (the mean of the last block's maps)."""
        return super().forward(x)
