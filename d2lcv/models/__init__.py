"""Layer 4, models: classifiers for 32x32 images, SSD, the style-transfer networks, model
surgery for fine-tuning, and torchvision's pretrained weights through the data cache.

``from d2lcv.models import resnet_cifar, SSD, freeze`` works; the submodules are
:mod:`~d2lcv.models.classification`, :mod:`~d2lcv.models.detection.ssd`,
:mod:`~d2lcv.models.style`, :mod:`~d2lcv.models.finetune` and :mod:`~d2lcv.models.weights`.
"""

from __future__ import annotations

from .classification import BasicBlock, ResNetCIFAR, SimpleCNN, resnet_cifar
from .classic import (
    KNN,
    VGG,
    ACBlock,
    AlexNet,
    DenseNet,
    GoogLeNet,
    InceptionV3,
    LeNet5,
    NiN,
    ResNet,
    alexnet,
    densenet,
    fuse_acnet,
    lenet5,
    linear_classifier,
    mlp,
    resnet,
    resnext,
    to_acnet,
    vgg,
)
from .detection.ssd import SSD
from .detection.yolo import TinyYOLOv3, YOLOv1
from .crnn import CRNN, ImageScale, PerPositionCNN, line_features
from .fastnet import FastNet, fastnet
from .lm import RNNLM, Recurrent, copy_torch_weights, generate
from .rnn import CELLS, GRUCell, LSTMCell, RNNCell, make_cell
from .summary import LayerCount, count_layers, count_macs, counts_table, format_count, layer_macs
from .gan import DCGANDiscriminator, DCGANGenerator, dcgan, mlp_discriminator, mlp_generator, toy_gan
from .finetune import (
    check_stages,
    freeze,
    frozen_stages,
    get_head,
    init_head_from_source,
    map_class_rows,
    replace_head,
    stage_names,
    unfreeze,
)
from .style import FeatureExtractor, TransformNet, normalize_filters_, vgg_layer_names
from .random_features import RandomPyramidFeatures, blur_downsample
from .weights import (
    PretrainedWeightsWarning,
    WeightsUnavailableError,
    load_pretrained,
    pretrained_transforms,
    resolve_weights,
    weights_path,
)

__all__ = [
    "SimpleCNN", "BasicBlock", "ResNetCIFAR", "resnet_cifar",
    "KNN", "linear_classifier", "mlp", "LeNet5", "lenet5", "AlexNet", "alexnet", "VGG", "vgg", "NiN",
    "GoogLeNet", "InceptionV3", "ResNet", "resnet", "resnext", "DenseNet", "densenet", "ACBlock", "to_acnet",
    "fuse_acnet",
    "LayerCount", "layer_macs", "count_layers", "count_macs", "format_count", "counts_table",
    "FastNet", "fastnet",
    "RNNCell", "LSTMCell", "GRUCell", "CELLS", "make_cell", "Recurrent", "RNNLM", "generate", "copy_torch_weights",
    "ImageScale", "line_features", "CRNN", "PerPositionCNN",
    "SSD",
    "YOLOv1",
    "TinyYOLOv3",
    "mlp_generator", "mlp_discriminator", "toy_gan", "DCGANGenerator", "DCGANDiscriminator", "dcgan",
    "vgg_layer_names", "FeatureExtractor", "normalize_filters_", "TransformNet",
    "RandomPyramidFeatures", "blur_downsample",
    "stage_names", "check_stages", "freeze", "unfreeze", "frozen_stages", "get_head", "replace_head",
    "map_class_rows", "init_head_from_source",
    "load_pretrained", "pretrained_transforms", "resolve_weights", "weights_path",
    "PretrainedWeightsWarning", "WeightsUnavailableError",
]
