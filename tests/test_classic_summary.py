"""d2lcv.models.summary: per-layer counts from the formulas, against FlopCounterMode,
parameter counts and the AlexNet table of the deep-learning notes."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from d2lcv.models import classic as C
from d2lcv.models.summary import count_layers, count_macs, counts_table, format_count, layer_macs


def flop_counter_macs(model: nn.Module, x: torch.Tensor) -> int:
    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    return counter.get_total_flops() // 2


MODELS = {
    "alexnet_imagenet": (lambda: C.alexnet(), (1, 3, 224, 224)),
    "resnext_cifar": (lambda: C.resnext(50, 10, cardinality=4, group_width=4, width=8, small_input=True),
                      (2, 3, 32, 32)),
    "googlenet_cifar": (lambda: C.GoogLeNet(10, width=0.25, small_input=True), (2, 3, 32, 32)),
    "densenet_cifar": (lambda: C.DenseNet((3, 3, 3), 12, 10, 24, small_input=True), (2, 3, 32, 32)),
    "vgg_acnet_cifar": (lambda: C.to_acnet(C.vgg(11, 10, width=0.25, batch_norm=True, hidden=64, pool_size=1)),
                        (1, 3, 32, 32)),
    "lenet": (lambda: C.lenet5(), (3, 1, 28, 28)),
    "nin": (lambda: C.NiN(10, (16, 32, 48), small_input=True), (1, 3, 32, 32)),
}


@pytest.mark.parametrize("name", list(MODELS))
def test_macs_match_flop_counter_and_params_match(name):
    make, shape = MODELS[name]
    torch.manual_seed(0)
    model, x = make(), torch.randn(shape)
    rows = count_layers(model, x)
    assert sum(r.macs for r in rows) == flop_counter_macs(model, x)
    assert sum(r.params for r in rows) == sum(p.numel() for p in model.parameters())


def test_inception_v3_macs_match_flop_counter():
    model, x = C.InceptionV3(aux_logits=False), torch.randn(1, 3, 139, 139)  # the smallest size is 75
    assert count_macs(model, x) == flop_counter_macs(model, x)


def test_the_alexnet_table_of_the_notes():
    # the 2012 network: 227x227 input, conv1 11x11/4 without padding, one GPU (no groups)
    model = C.alexnet(channels=C.ALEXNET_2012, conv1_padding=0)
    rows = {r.name: r for r in count_layers(model, torch.randn(1, 3, 227, 227))}
    conv1 = rows["features.0"]
    assert conv1.shape == (1, 96, 55, 55)
    assert conv1.params == (11 * 11 * 3 + 1) * 96 == 34_944  # "35K"
    assert conv1.macs == 55 * 55 * 96 * 11 * 11 * 3  # "105M"
    assert format_count(conv1.macs) == "105.4M"
    assert rows["features.4"].params == (5 * 5 * 96 + 1) * 256  # the notes formula; their "307K" is two-GPU
    assert rows["features.8"].params == (3 * 3 * 256 + 1) * 384  # conv3 "884K"
    assert rows["features.8"].macs == 13 * 13 * 384 * 3 * 3 * 256  # "149M"
    assert rows["classifier.1"].params == (9216 + 1) * 4096  # fc6 "37M"
    assert rows["classifier.4"].params == (4096 + 1) * 4096  # fc7 "16M"
    # the notes' multiply-adds for conv4 and conv5 are those of the two-GPU network (groups=2)
    grouped = {r.name: r for r in count_layers(C.alexnet(channels=C.ALEXNET_2012, conv1_padding=0, groups=2),
                                               torch.randn(1, 3, 227, 227))}
    assert format_count(grouped["features.10"].macs) == "112.1M"  # conv4
    assert format_count(grouped["features.12"].macs) == "74.8M"  # conv5


def test_vgg_three_3x3_against_one_7x7():
    c = 64
    stack = nn.Sequential(*[nn.Conv2d(c, c, 3, padding=1, bias=False) for _ in range(3)])
    big = nn.Conv2d(c, c, 7, padding=3, bias=False)
    x = torch.randn(1, c, 14, 14)
    assert sum(r.params for r in count_layers(stack, x)) == 3 * 3**2 * c**2
    assert sum(r.params for r in count_layers(big, x)) == 7**2 * c**2
    assert count_macs(stack, x) == 14 * 14 * 3 * 3**2 * c**2


def test_inception_one_by_one_arithmetic():
    # 28x28x256 input: the naive module (1x1 128, 3x3 192, 5x5 96) costs 854M multiply-adds
    naive = C.NaiveInception(256, 128, 192, 96)
    assert format_count(count_macs(naive, torch.randn(1, 256, 28, 28))) == "854.2M"
    reduced = C.Inception(256, 128, 64, 192, 64, 96, 64)
    # the notes (after the CS231n slide) add these up to 358M; the terms they list sum to 271M
    assert format_count(count_macs(reduced, torch.randn(1, 256, 28, 28))) == "271.4M"


def test_shared_modules_count_params_once_and_table_prints():
    relu_twice = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
    lin = nn.Linear(3, 3)
    shared = nn.Sequential(lin, lin)
    rows = count_layers(shared, torch.randn(5, 3))
    assert [r.params for r in rows] == [12, 0] and [r.macs for r in rows] == [45, 45]
    text = counts_table(count_layers(relu_twice, torch.randn(1, 4)))
    assert "total" in text and "Linear" in text and "ReLU" not in text


def test_layer_macs_of_other_layers_is_zero_and_mode_restored():
    assert layer_macs(nn.ReLU(), torch.randn(3, 4)) == 0
    model = nn.Sequential(nn.Linear(2, 2), nn.Dropout()).train()
    count_layers(model, torch.randn(1, 2))
    assert model.training


def test_format_count():
    assert format_count(999) == "999"
    assert format_count(34_944) == "34.9K"
    assert format_count(1.5e9) == "1.5G"
