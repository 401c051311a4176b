"""The classic classifiers (d2lcv.models.classic): torchvision's parameter counts at
ImageNet size, shapes at CIFAR size, ACNet fusion, the normalisations, kNN."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from d2lcv.models import classic as C


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


OURS = {
    "alexnet": lambda: C.alexnet(),
    **{f"vgg{d}": (lambda d=d: C.vgg(d)) for d in (11, 13, 16, 19)},
    **{f"vgg{d}_bn": (lambda d=d: C.vgg(d, batch_norm=True)) for d in (11, 13, 16, 19)},
    "googlenet": lambda: C.GoogLeNet(aux_logits=True, k5=3),
    "inception_v3": lambda: C.InceptionV3(aux_logits=True),
    **{f"resnet{d}": (lambda d=d: C.resnet(d)) for d in (18, 34, 50)},
    "resnext50_32x4d": lambda: C.resnext(50),
    "densenet121": lambda: C.densenet(121),
}


@pytest.mark.parametrize("name", list(OURS))
def test_imagenet_parameter_counts_match_torchvision(name):
    with torch.device("meta"), warnings.catch_warnings():  # meta: no memory, no init time
        warnings.simplefilter("ignore")
        theirs = n_params(getattr(torchvision.models, name)(weights=None))
        ours = n_params(OURS[name]())
    assert ours == theirs, (name, ours, theirs)


CIFAR = {
    "lenet5": lambda: C.lenet5(10, in_channels=3, image_size=32, modern=True),
    "alexnet": lambda: C.alexnet(10, channels=(16, 32, 48, 48, 32), hidden=64, small_input=True, lrn=True),
    "vgg11": lambda: C.vgg(11, 10, width=0.125, batch_norm=True, hidden=64, pool_size=1),
    "nin": lambda: C.NiN(10, (16, 32, 48), small_input=True),
    "googlenet": lambda: C.GoogLeNet(10, width=0.125, small_input=True),
    "inception_v3": lambda: C.InceptionV3(10, aux_logits=False, width=0.0625, small_input=True),
    "resnet18": lambda: C.resnet(18, 10, width=8, small_input=True),
    "resnet_plain_A": lambda: C.ResNet(C.ResidualBlock, (1, 1, 1), 10, 8, True, shortcut="A", residual=False),
    "resnext": lambda: C.resnext(50, 10, cardinality=4, group_width=2, width=8, small_input=True),
    "densenet": lambda: C.DenseNet((2, 2, 2), 8, 10, 16, small_input=True),
    "densenet_plain": lambda: C.DenseNet((2, 2), 8, 10, 16, bn_size=None, compression=1, small_input=True),
}


@pytest.mark.parametrize("name", list(CIFAR))
def test_cifar_configurations_give_logits(name):
    torch.manual_seed(0)
    model = CIFAR[name]().eval()
    out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 10) and torch.isfinite(out).all()


def test_inception_v3_width_scales_every_module_consistently():
    model = C.InceptionV3(10, aux_logits=False, width=0.5, small_input=True).eval()
    x = model.stem(torch.randn(1, 3, 32, 32))
    assert x.shape[-1] == 16
    for block in [*model.mixed_35, *model.mixed_17, *model.mixed_8]:  # declared channels are the real ones
        x = block(x)
        assert x.shape[1] == block.out_channels
    assert x.shape[-1] == 3


def test_inception_v3_small_input_has_no_auxiliary_head():
    with pytest.raises(ValueError, match="aux_logits=False"):
        C.InceptionV3(10, small_input=True)


def test_lenet5_is_the_classic_size():
    assert n_params(C.lenet5()) == 61_706  # 1x28x28 inputs, 10 classes, as in d2l
    assert C.lenet5()(torch.randn(1, 1, 28, 28)).shape == (1, 10)


def test_googlenet_auxiliary_heads_only_in_training():
    model = C.GoogLeNet(10, aux_logits=True, width=0.125, small_input=True)
    outs = model.train()(torch.randn(2, 3, 32, 32))
    assert len(outs) == 3 and all(o.shape == (2, 10) for o in outs)
    assert model.eval()(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_naive_inception_keeps_the_input_channels():
    out = C.NaiveInception(8, 2, 3, 4)(torch.randn(1, 8, 6, 6))
    assert out.shape == (1, 2 + 3 + 4 + 8, 6, 6)


def test_option_a_shortcut_pads_zeros():
    x = torch.randn(1, 4, 8, 8)
    y = C.PadShortcut(8, 2)(x)
    assert y.shape == (1, 8, 4, 4)
    assert torch.equal(y[:, :4], x[:, :, ::2, ::2]) and not y[:, 4:].any()
    assert n_params(C.PadShortcut(8, 2)) == 0


def test_plain_blocks_have_no_shortcut():
    model = C.resnet(18, 10, width=8, small_input=True, residual=False)
    assert all(m.shortcut is None for m in model.modules() if isinstance(m, C.ResidualBlock))


def test_densenet_block_grows_by_the_growth_rate():
    assert C.DenseBlock(3, 16, 12)(torch.randn(1, 16, 8, 8)).shape == (1, 16 + 3 * 12, 8, 8)


def _randomize_bn(model: nn.Module) -> None:
    g = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g))
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.randn(m.num_features, generator=g))
            m.bias.data.copy_(torch.randn(m.num_features, generator=g))


@pytest.mark.parametrize("stride", [1, 2])
def test_acblock_fuses_exactly(stride):
    torch.manual_seed(0)
    block = C.ACBlock(5, 7, stride)
    _randomize_bn(block)
    block.eval()
    x = torch.randn(3, 5, 9, 10)
    fused = C.fuse_acblock(block)
    assert fused.kernel_size == (3, 3) and fused.stride == (stride, stride)
    torch.testing.assert_close(fused(x), block(x), atol=1e-5, rtol=1e-5)


def test_acnet_conversion_and_fusion_of_a_vgg():
    torch.manual_seed(0)
    vgg = C.vgg(11, 10, width=0.125, batch_norm=True, hidden=32, pool_size=1)
    ac = C.to_acnet(vgg)
    assert sum(isinstance(m, C.ACBlock) for m in ac.modules()) == 8
    _randomize_bn(ac)
    ac.eval()
    fused = C.fuse_acnet(ac)
    assert not any(isinstance(m, C.ACBlock) for m in fused.modules())
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(fused(x), ac(x), atol=1e-5, rtol=1e-4)
    assert n_params(fused) < n_params(ac)


def test_fuse_acnet_keeps_the_memory_format():
    vgg = C.vgg(11, 10, width=0.125, batch_norm=True, hidden=32, pool_size=1)
    plain = C.fuse_acnet(C.to_acnet(vgg))
    assert all(m.weight.is_contiguous() for m in plain.modules() if isinstance(m, nn.Conv2d))
    last = C.fuse_acnet(C.to_acnet(vgg).to(memory_format=torch.channels_last))
    convs = [m for m in last.modules() if isinstance(m, nn.Conv2d)]
    assert convs and all(m.weight.is_contiguous(memory_format=torch.channels_last) for m in convs)


def test_fold_bn_matches_conv_then_bn():
    conv, bn = nn.Conv2d(3, 4, 3, bias=True), nn.BatchNorm2d(4)
    _randomize_bn(bn)
    bn.eval()
    w, b = C.fold_bn(conv, bn)
    x = torch.randn(2, 3, 6, 6)
    torch.testing.assert_close(F.conv2d(x, w, b), bn(conv(x)), atol=1e-5, rtol=1e-5)


def test_normalize_matches_torch():
    x = torch.randn(4, 6, 5, 3)
    torch.testing.assert_close(C.normalize(x, "batch"), F.batch_norm(x, None, None, training=True))
    torch.testing.assert_close(C.normalize(x, "layer"), F.layer_norm(x, x.shape[1:]))
    torch.testing.assert_close(C.normalize(x, "instance"), F.instance_norm(x))
    torch.testing.assert_close(C.normalize(x, "group", groups=3), F.group_norm(x, 3))


def test_normalize_and_norm_layer_reject_bad_input():
    with pytest.raises(ValueError, match="kind"):
        C.normalize(torch.randn(2, 2, 2, 2), "weight")
    with pytest.raises(ValueError, match="divide"):
        C.normalize(torch.randn(2, 3, 2, 2), "group", groups=2)
    with pytest.raises(ValueError, match=r"\[N, C, H, W\]"):
        C.normalize(torch.randn(2, 3), "batch")
    with pytest.raises(ValueError, match="kind"):
        C.norm_layer("layer")
    assert isinstance(C.norm_layer("group", 8)(4), nn.GroupNorm)


def test_knn_by_hand():
    x = torch.tensor([[0.0], [1.0], [2.0], [10.0], [11.0]])
    y = torch.tensor([0, 0, 0, 1, 1])
    knn = C.KNN(x, y)
    assert knn.predict(torch.tensor([[0.4], [9.0], [6.5]]), k=1).tolist() == [0, 1, 1]
    assert knn.predict(torch.tensor([[9.0]]), k=5).tolist() == [0]  # three 0s outvote two 1s
    assert knn.predict(torch.tensor([[6.5]]), k=4, p=1).tolist() == [1]  # 2-2 tie: the nearest wins
    assert knn.predict(torch.empty(0, 1)).shape == (0,)


def test_knn_vote_equals_a_loop():
    g = torch.Generator().manual_seed(0)
    dist, y = torch.rand(30, 40, generator=g), torch.randint(0, 4, (40,), generator=g)
    for k in (1, 3, 7):
        fast = C.vote(dist, y, k)
        for i in range(30):
            order = dist[i].argsort()[:k]
            counts = torch.bincount(y[order], minlength=4).float()
            counts[y[order[0]]] += 0.5
            assert fast[i] == counts.argmax()


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="k must be"):
        C.KNN(torch.randn(3, 2), torch.tensor([0, 1, 0])).predict(torch.randn(1, 2), k=4)
    with pytest.raises(ValueError, match="as many labels"):
        C.KNN(torch.randn(3, 2), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="depth"):
        C.vgg(12)
    with pytest.raises(ValueError, match="config"):
        C.VGG("F")
    with pytest.raises(ValueError, match="depth"):
        C.resnet(20)
    with pytest.raises(ValueError, match="shortcut"):
        C.resnet(18, shortcut="C")
    with pytest.raises(ValueError, match="compression"):
        C.DenseNet(compression=0)
    with pytest.raises(ValueError, match="image_size"):
        C.lenet5(image_size=64)


def test_mlp_has_the_talks_weight_count():
    weights = sum(m.weight.numel() for m in C.mlp().modules() if isinstance(m, nn.Linear))
    assert weights == 29_401_088
    assert n_params(C.linear_classifier()) == 3072 * 10 + 10
