"""Tests for d2lcv.models: shapes, parameter counts, named stages, parity with torchvision."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from d2lcv.models import BasicBlock, ResNetCIFAR, SimpleCNN, resnet_cifar


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


class TestSimpleCNN:
    @pytest.mark.parametrize("batch_norm", [True, False])
    def test_output_shape(self, batch_norm):
        model = SimpleCNN(num_classes=7, width=8, batch_norm=batch_norm)
        assert model(torch.randn(2, 3, 32, 32)).shape == (2, 7)

    def test_other_sizes_and_channels(self):
        model = SimpleCNN(in_channels=1, width=8)
        assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)  # MNIST-sized

    def test_first_conv_is_named(self):
        model = SimpleCNN(width=16)
        assert model.conv1.weight.shape == (16, 3, 3, 3)  # 16 filters to visualise

    @pytest.mark.parametrize("width, expected", [(16, 24_346), (32, 94_762), (64, 373_834)])
    def test_parameter_count(self, width, expected):
        # width 16, BN: conv 3->16 (432) + BN (32) + conv 16->32 (4,608) + BN (64)
        # + conv 32->64 (18,432) + BN (128) + fc 64->10 (650) = 24,346
        assert n_params(SimpleCNN(width=width)) == expected

    def test_bad_width(self):
        with pytest.raises(ValueError, match=r"must be positive, got 10, 0, 3"):
            SimpleCNN(width=0)


class TestResNetCIFAR:
    def test_output_shape_and_stage_shapes(self):
        model = resnet_cifar(num_classes=10, width=8).eval()
        x = torch.randn(2, 3, 32, 32)
        x = model.stem(x)
        assert x.shape == (2, 8, 32, 32)  # no stride, no max-pool
        expected = [(2, 8, 32, 32), (2, 16, 16, 16), (2, 32, 8, 8), (2, 64, 4, 4)]
        for name, shape in zip(model.residual_stages, expected):
            x = getattr(model, name)(x)
            assert x.shape == shape, name
        assert model.forward_features(torch.randn(2, 3, 32, 32)).shape == (2, 64)
        assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)

    def test_named_stages(self):
        model = resnet_cifar(width=8)
        assert model.residual_stages == ("stage1", "stage2", "stage3", "stage4")
        top = [name for name, _ in model.named_children()]
        assert top == ["stem", "stage1", "stage2", "stage3", "stage4", "pool", "fc"]
        assert isinstance(model.fc, nn.Linear) and model.fc.in_features == 64

    @pytest.mark.parametrize("width, expected", [(8, 176_402), (16, 701_466), (32, 2_797_610)])
    def test_parameter_count(self, width, expected):
        assert n_params(resnet_cifar(width=width)) == expected

    def test_parity_with_torchvision_resnet18(self):
        # the CIFAR ResNet-18 is torchvision's resnet18 with a 3x3 stride-1 stem and no max-pool
        ref = torchvision.models.resnet18(num_classes=10)
        ref.conv1 = nn.Conv2d(3, 64, 3, padding=1, bias=False)
        ref.maxpool = nn.Identity()
        ours = resnet_cifar(width=64)
        assert n_params(ours) == n_params(ref) == 11_173_962
        # same layers in the same order: copy the weights over and compare the outputs
        ref_tensors = list(ref.state_dict().values())
        ours_keys = list(ours.state_dict())
        assert len(ref_tensors) == len(ours_keys)
        ours.load_state_dict(dict(zip(ours_keys, ref_tensors)))
        x = torch.randn(2, 3, 32, 32)
        torch.testing.assert_close(ours.eval()(x), ref.eval()(x), rtol=1e-4, atol=1e-5)

    def test_fewer_stages(self):
        model = ResNetCIFAR(width=8, blocks_per_stage=(1, 1))
        assert model.residual_stages == ("stage1", "stage2") and not hasattr(model, "stage3")
        assert model(torch.randn(1, 3, 32, 32)).shape == (1, 10)

    def test_zero_init_residual_makes_blocks_identity_plus_relu(self):
        model = resnet_cifar(width=8, zero_init_residual=True)
        block = model.stage1[1]  # same shape in and out: shortcut is the identity
        x = torch.randn(2, 8, 8, 8)
        torch.testing.assert_close(block.eval()(x), torch.relu(x))

    def test_stages_are_the_units_of_freezing(self):
        from d2lcv.models import freeze, stage_names

        model = resnet_cifar(width=8)
        assert stage_names(model) == ["stem", *model.residual_stages, "fc"]
        freeze(model, ["stem", *model.residual_stages[:2]])
        model(torch.randn(2, 3, 32, 32)).sum().backward()
        assert model.stage1[0].conv1.weight.grad is None
        assert model.stage3[0].conv1.weight.grad is not None

    @pytest.mark.parametrize("blocks", [(), (2, 2, 2, 2, 2), (2, 0)])
    def test_bad_blocks(self, blocks):
        with pytest.raises(ValueError, match=r"blocks_per_stage must be 1 to 4 positive ints, got"):
            resnet_cifar(blocks_per_stage=blocks)


class TestBasicBlock:
    def test_downsampling_shape(self):
        block = BasicBlock(8, 16, stride=2)
        assert block(torch.randn(2, 8, 32, 32)).shape == (2, 16, 16, 16)
        assert isinstance(BasicBlock(8, 8).shortcut, nn.Identity)


class TestTraining:
    def test_simple_cnn_learns_bright_vs_dark(self):
        from d2lcv.engine import fit, make_loader

        g = torch.Generator().manual_seed(0)
        y = torch.arange(128) % 2
        x = 0.3 * torch.rand(128, 3, 16, 16, generator=g) + 0.5 * y.view(-1, 1, 1, 1)  # class 1 is brighter
        loader = make_loader(torch.utils.data.TensorDataset(x, y), 16, shuffle=True)
        torch.manual_seed(0)
        history = fit(SimpleCNN(num_classes=2, width=4), loader, loader, epochs=3, device="cpu", progress=False)
        assert history.last["val_acc"] == 1.0
