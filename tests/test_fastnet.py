"""d2lcv.models.fastnet: shapes, parameter counts worked by hand, named stages, validation, training."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from d2lcv.models import FastNet, fastnet, freeze, stage_names


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


class TestFastNet:
    def test_stage_shapes(self):
        model = fastnet(width=8).eval()
        x = model.stem(torch.randn(2, 3, 32, 32))
        assert x.shape == (2, 8, 32, 32)  # the only full-resolution convolution
        for name, shape in zip(model.stages, [(2, 16, 16, 16), (2, 32, 8, 8), (2, 64, 4, 4)]):
            x = getattr(model, name)(x)
            assert x.shape == shape, name
        assert model.pool(x).shape == (2, 64)
        assert model.forward_features(torch.randn(2, 3, 32, 32)).shape == (2, 64)
        assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)

    def test_pool_comes_before_each_stage_convolution(self):
        model = fastnet(width=4, convs_per_stage=2)
        kinds = [type(m).__name__ for m in model.stage1]
        assert kinds == ["MaxPool2d", "Conv2d", "BatchNorm2d", "ReLU", "Conv2d", "BatchNorm2d", "ReLU"]

    def test_named_children_and_stages(self):
        model = fastnet(num_stages=2)
        assert [name for name, _ in model.named_children()] == ["stem", "stage1", "stage2", "pool", "fc"]
        assert stage_names(model) == ["stem", "stage1", "stage2", "fc"]  # pool owns nothing
        freeze(model, ["stem"])
        assert not any(p.requires_grad for p in model.stem.parameters())
        assert all(p.requires_grad for p in model.fc.parameters())

    @pytest.mark.parametrize("kwargs, expected", [
        # width 16: stem 3*16*9 + 2*16 = 464; stage1 16*32*9 + 64 = 4,672; stage2 32*64*9 + 128 = 18,560;
        # stage3 64*128*9 + 256 = 73,984; fc 128*10 + 10 = 1,290; total 98,970
        (dict(width=16), 98_970),
        (dict(width=24), 221_026),
        (dict(width=32), 391_466),
        # + a 32->32, a 64->64 and a 128->128 convolution with BN: 9,280 + 36,992 + 147,712
        (dict(width=16, convs_per_stage=2), 292_954),
        (dict(width=16, num_stages=1, num_classes=2), 464 + 4_672 + 32 * 2 + 2),
    ])
    def test_parameter_count(self, kwargs, expected):
        assert n_params(fastnet(**kwargs)) == expected

    def test_class_and_factory_agree(self):
        torch.manual_seed(0)
        a = FastNet(7, 8, num_stages=2, in_channels=1)
        torch.manual_seed(0)
        b = fastnet(7, 8, num_stages=2, in_channels=1)
        x = torch.randn(3, 1, 28, 28)  # MNIST-sized: 28 -> 14 -> 7, then the global pool
        torch.testing.assert_close(a(x), b(x))
        assert a(x).shape == (3, 7)

    def test_bad_arguments(self):
        with pytest.raises(ValueError, match="must be positive, got 10, 0, 3, 1"):
            FastNet(width=0)
        with pytest.raises(ValueError, match="must be positive, got 10, 16, 3, 0"):
            FastNet(convs_per_stage=0)
        with pytest.raises(ValueError, match="num_stages must be 1 to 4, got 5"):
            FastNet(num_stages=5)

    def test_channels_last_gives_the_same_logits(self):
        torch.manual_seed(0)
        model = fastnet(width=8).eval()
        x = torch.randn(4, 3, 32, 32)
        expected = model(x)
        model = model.to(memory_format=torch.channels_last)
        torch.testing.assert_close(model(x.contiguous(memory_format=torch.channels_last)), expected,
                                   rtol=1e-4, atol=1e-5)

    def test_fits_a_small_batch(self):
        torch.manual_seed(0)
        model = fastnet(width=8)
        x, y = torch.randn(16, 3, 32, 32), torch.arange(16) % 10
        optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        for _ in range(40):
            optimizer.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
        assert (model(x).argmax(1) == y).all()  # memorised, in train mode
