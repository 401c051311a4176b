"""AlexNet (Krizhevsky et al., 2012): ReLU, dropout, local response normalisation and
overlapping max-pooling, in the 2012 layout or torchvision's."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

__all__ = ["AlexNet", "alexnet", "ALEXNET_2012", "ALEXNET_TORCHVISION"]

ALEXNET_2012 = (96, 256, 384, 384, 256)
"""The channels of the five convolutions in the 2012 paper."""
ALEXNET_TORCHVISION = (64, 192, 384, 256, 256)
"""torchvision's channels (from Krizhevsky's 2014 "one weird trick" network)."""


class AlexNet(nn.Module):
    """Five convolutions, three overlapping 3x3/2 max-pools, three dense layers.

    At ImageNet size (``small_input=False``), shapes for a 224x224 input::

        conv1 11x11/4, pad 2, c1   [B, c1, 55, 55] -> [LRN] pool [B, c1, 27, 27]
        conv2 5x5, pad 2, c2       [B, c2, 27, 27] -> [LRN] pool [B, c2, 13, 13]
        conv3..5 3x3, pad 1        [B, c5, 13, 13] -> pool [B, c5, 6, 6]
        fc6, fc7 (hidden, dropout), fc8 (num_classes)

    ``small_input=True`` (32x32 CIFAR images) makes conv1 3x3/1 and the pools 2x2/2:
    [B, c5, 4, 4] before the dense layers.

    Args:
        channels: the five convolutions' channels (:data:`ALEXNET_TORCHVISION` reproduces
            ``torchvision.models.alexnet``: 61,100,840 parameters).
        hidden: units of fc6 and fc7.
        lrn: local response normalisation after conv1 and conv2 (size 5, alpha 1e-4,
            beta 0.75, k 2, as in the paper).
        groups: 2 splits conv2, conv4 and conv5 into two halves as on the paper's two GPUs.
        conv1_padding: 2 (torchvision, 224x224 inputs) or 0 (227x227 inputs).
        batch_norm: BatchNorm before each ReLU of the convolutions (not in the 2012
            network; it shifts the layer indices of ``features``).
    """

    def __init__(self, num_classes: int = 1000,
                 channels: Sequence[int] = ALEXNET_TORCHVISION,
                 hidden: int = 4096, dropout: float = 0.5, lrn: bool = False,
                 groups: int = 1, small_input: bool = False, conv1_padding: int = 2,
                 batch_norm: bool = False) -> None:
        super().__init__()
        c1, c2, c3, c4, c5 = channels
        norm = ((lambda: nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0))
                if lrn else nn.Identity)
        pool = ((lambda: nn.MaxPool2d(2)) if small_input
                else (lambda: nn.MaxPool2d(3, stride=2)))
        act = (lambda c: [nn.BatchNorm2d(c), nn.ReLU(inplace=True)]) if batch_norm else \
            (lambda c: [nn.ReLU(inplace=True)])
        conv1 = nn.Conv2d(3, c1, 3, padding=1) if small_input else \
            nn.Conv2d(3, c1, 11, stride=4, padding=conv1_padding)
        self.features = nn.Sequential(
            conv1, *act(c1), norm(), pool(),
            nn.Conv2d(c1, c2, 5, padding=2, groups=groups), *act(c2), norm(), pool(),
            nn.Conv2d(c2, c3, 3, padding=1), *act(c3),
            nn.Conv2d(c3, c4, 3, padding=1, groups=groups), *act(c4),
            nn.Conv2d(c4, c5, 3, padding=1, groups=groups), *act(c5), pool(),
        )
        side = 4 if small_input else 6
        self.avgpool = nn.AdaptiveAvgPool2d(side)  # a no-op at the intended input size
        self.classifier = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(c5 * side * side, hidden), nn.ReLU(inplace=True),
            nn.Dropout(dropout), nn.Linear(hidden, hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        """[B, 3, H, W] -> logits [B, num_classes]."""
        return self.classifier(self.avgpool(self.features(x)).flatten(1))


def alexnet(num_classes: int = 1000, **kwargs) -> AlexNet:
    """An :class:`AlexNet`; defaults reproduce ``torchvision.models.alexnet``."""
    return AlexNet(num_classes, **kwargs)
