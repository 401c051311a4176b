"""Per-channel statistics that inputs are normalised with."""

from __future__ import annotations

__all__ = ["CIFAR10_MEAN", "CIFAR10_STD", "IMAGENET_MEAN", "IMAGENET_STD"]

# Per-channel mean and standard deviation of the CIFAR-10 training images, scaled to [0, 1].
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)


CIFAR10_STD = (0.2470, 0.2435, 0.2616)

# ImageNet's, which torchvision's pretrained weights expect.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
