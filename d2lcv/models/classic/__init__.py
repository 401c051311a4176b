"""The classic image classifiers, from k nearest neighbours to DenseNet, each configurable
for 32x32 CIFAR images and, at ImageNet size, with torchvision's parameter count."""

from __future__ import annotations

from .acnet import ACBlock, fold_bn, fuse_acblock, fuse_acnet, to_acnet
from .alexnet import ALEXNET_2012, ALEXNET_TORCHVISION, AlexNet, alexnet
from .baselines import KNN, linear_classifier, mlp, vote
from .densenet import DenseBlock, DenseLayer, DenseNet, Transition, densenet
from .googlenet import ConvBNReLU, GoogLeNet, Inception, InceptionAux, NaiveInception
from .inception import (
    InceptionA,
    InceptionB,
    InceptionC,
    InceptionD,
    InceptionE,
    InceptionV3,
)
from .lenet import LeNet5, lenet5
from .nin import NiN, nin_block
from .norms import NORM_KINDS, norm_layer, normalize
from .resnet import Bottleneck, PadShortcut, ResidualBlock, ResNet, resnet, resnext
from .vgg import VGG, VGG_CONFIGS, vgg, vgg_stages

__all__ = [
    "KNN", "vote", "linear_classifier", "mlp",
    "LeNet5", "lenet5",
    "AlexNet", "alexnet", "ALEXNET_2012", "ALEXNET_TORCHVISION",
    "VGG", "vgg", "VGG_CONFIGS", "vgg_stages",
    "NiN", "nin_block",
    "ConvBNReLU", "NaiveInception", "Inception", "InceptionAux", "GoogLeNet",
    "InceptionA", "InceptionB", "InceptionC", "InceptionD", "InceptionE", "InceptionV3",
    "ResidualBlock", "Bottleneck", "PadShortcut", "ResNet", "resnet", "resnext",
    "DenseLayer", "DenseBlock", "Transition", "DenseNet", "densenet",
    "ACBlock", "fold_bn", "fuse_acblock", "to_acnet", "fuse_acnet",
    "NORM_KINDS", "normalize", "norm_layer",
]
