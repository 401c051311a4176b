"""LeNet-5 (LeCun et al., 1998): two convolutions with subsampling, then three dense layers."""

from __future__ import annotations

from torch import nn

__all__ = ["LeNet5", "lenet5"]


class LeNet5(nn.Sequential):
    """LeNet-5 as d2l teaches it: conv 5x5 (6), pool, conv 5x5 (16), pool, 120, 84, classes.

    Shapes for a 32x32 input (28x28 inputs are padded by 2 in the first convolution)::

        conv 5x5, 6      [B, 6, 28, 28]  -> pool 2x2  [B, 6, 14, 14]
        conv 5x5, 16     [B, 16, 10, 10] -> pool 2x2  [B, 16, 5, 5]
        dense 120, 84, num_classes

    Args:
        num_classes: outputs.
        in_channels: 1 for MNIST, 3 for CIFAR-10.
        image_size: 28 or 32.
        modern: ReLU and max-pooling instead of the sigmoid and average pooling of 1998.
        width: multiplies the channels and hidden units (1 is LeNet-5: 61,706 parameters
            for 10 classes and 1x28x28 inputs).
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1,
                 image_size: int = 28, modern: bool = False, width: int = 1) -> None:
        if image_size not in (28, 32):
            raise ValueError(f"image_size must be 28 or 32, got {image_size}")
        if min(num_classes, in_channels, width) < 1:
            raise ValueError(f"num_classes, in_channels, width must be positive, got "
                             f"{num_classes}, {in_channels}, {width}")
        act, pool = (nn.ReLU, nn.MaxPool2d) if modern else (nn.Sigmoid, nn.AvgPool2d)
        c1, c2, h1, h2 = 6 * width, 16 * width, 120 * width, 84 * width
        super().__init__(
            nn.Conv2d(in_channels, c1, 5, padding=(32 - image_size) // 2),
            act(), pool(2),
            nn.Conv2d(c1, c2, 5), act(), pool(2), nn.Flatten(),
            nn.Linear(c2 * 5 * 5, h1), act(),
            nn.Linear(h1, h2), act(),
            nn.Linear(h2, num_classes),
        )


def lenet5(num_classes: int = 10, **kwargs) -> LeNet5:
    """A :class:`LeNet5` (keywords as there)."""
    return LeNet5(num_classes, **kwargs)
