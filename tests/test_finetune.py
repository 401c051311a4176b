"""Tests for d2lcv fine-tuning (models.finetune, recipes.finetune): stages, freezing (gradients, optimizer steps, BatchNorm mode),
heads, discriminative learning rates, classifier-row reuse, the cached source model."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
import torchvision
from torchvision.ops import FrozenBatchNorm2d
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from d2lcv import engine, models, recipes, utils
from d2lcv.models import SimpleCNN, resnet_cifar
from d2lcv.models.weights import PretrainedWeightsWarning

RESNET_STAGES = ["stem", "stage1", "stage2", "stage3", "stage4", "fc"]
TV_STAGES = ["conv1", "bn1", "layer1", "layer2", "layer3", "layer4", "fc"]


def small_resnet(num_classes=5):
    torch.manual_seed(0)
    return resnet_cifar(num_classes, width=4, blocks_per_stage=(1, 1, 1, 1))


def train_step(model, opt, n=8):
    x, y = torch.randn(n, 3, 32, 32), torch.randint(0, get_out(model), (n,))
    loss = nn.functional.cross_entropy(model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()


def get_out(model):
    return models.get_head(model).out_features


class TestStages:
    def test_names(self):
        assert models.stage_names(small_resnet()) == RESNET_STAGES  # pool has no parameters
        assert models.stage_names(torchvision.models.resnet18()) == TV_STAGES
        assert models.stage_names(SimpleCNN(width=4)) == ["conv1", "bn1", "conv2", "bn2", "conv3", "bn3", "fc"]

    @pytest.mark.parametrize("fn", [models.freeze, models.unfreeze])
    def test_missing_stage_names_it_and_the_choices(self, fn):
        with pytest.raises(ValueError, match=r"ResNetCIFAR has no stage 'layer1'; its stages are \['stem', 'stage1'"):
            fn(small_resnet(), ["stem", "layer1"])
        with pytest.raises(ValueError, match=r"ResNet has no stage 'pool'; its stages are \['conv1', 'bn1', 'layer1'"):
            fn(torchvision.models.resnet18(), "pool")


class TestFreeze:
    def test_frozen_get_no_grad_and_do_not_change(self):
        model = models.freeze(small_resnet(), ["stem", "stage1"])
        before = copy.deepcopy(model.state_dict())
        # weight decay and momentum too: SGD must skip parameters without a gradient
        opt = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9, weight_decay=0.1)
        model.train()
        for _ in range(2):
            train_step(model, opt)
        for name, p in model.named_parameters():
            frozen = name.startswith(("stem.", "stage1."))
            assert p.requires_grad is not frozen, name
            assert (p.grad is None) is frozen, name
            assert torch.equal(p, before[name]) is frozen, name
        for name, buf in model.named_buffers():  # BN statistics, scale and shift of frozen stages too
            if name.startswith(("stem.", "stage1.")):
                assert torch.equal(buf, before[name]), name
            elif name.endswith("running_mean"):
                assert not torch.equal(buf, before[name]), name

    def test_frozen_batchnorm_is_torchvision_frozen_bn_with_the_same_values(self):
        model = small_resnet().eval()
        x = torch.randn(4, 4, 8, 8)
        with torch.no_grad():
            model.stage2[0].bn1.running_mean.uniform_(-1, 1)  # statistics that are not the defaults
            model.stage2[0].bn1.running_var.uniform_(0.5, 2)
            model.stage2[0].bn1.weight.uniform_(0.5, 2)
            expected = model.stage2(x)
        models.freeze(model, "stage2")
        kinds = {n: type(m) for n, m in model.named_modules() if isinstance(m, (nn.BatchNorm2d, FrozenBatchNorm2d))}
        assert all(k is FrozenBatchNorm2d for n, k in kinds.items() if n.startswith("stage2."))
        assert all(k is nn.BatchNorm2d for n, k in kinds.items() if not n.startswith("stage2."))
        model.train()  # a frozen BatchNorm uses the stored statistics in train mode too
        with torch.no_grad():
            torch.testing.assert_close(model.stage2(x), expected, rtol=1e-5, atol=1e-5)
            assert torch.allclose(model.stage2(x)[:1], model.stage2(x[:1]), atol=1e-6)  # no batch statistics

    def test_unfreeze_restores(self):
        model = models.freeze(small_resnet(), ["stem", "stage1", "stage2"])
        frozen_bn = model.stage2[0].bn1
        assert models.frozen_stages(model) == ["stem", "stage1", "stage2"]
        models.unfreeze(model, "stage2")
        assert models.frozen_stages(model) == ["stem", "stage1"]
        assert isinstance(model.stage2[0].bn1, nn.BatchNorm2d) and isinstance(model.stem[1], FrozenBatchNorm2d)
        assert torch.equal(model.stage2[0].bn1.running_var, frozen_bn.running_var)
        models.unfreeze(model)
        model.train()
        assert models.frozen_stages(model) == [] and all(m.training for m in model.modules())
        assert not any(isinstance(m, FrozenBatchNorm2d) for m in model.modules())
        assert utils.count_params(model, trainable_only=True) == utils.count_params(model)

    def test_torchvision_resnet(self):
        model = models.freeze(torchvision.models.resnet18(num_classes=3), ["conv1", "bn1", "layer1"])
        assert isinstance(model.bn1, FrozenBatchNorm2d) and isinstance(model.layer1[0].bn2, FrozenBatchNorm2d)
        assert isinstance(model.layer2[0].bn1, nn.BatchNorm2d)
        assert models.frozen_stages(model) == ["conv1", "bn1", "layer1"]
        assert models.stage_names(model)[:2] == ["conv1", "bn1"]  # a frozen BN owns buffers only: still a stage

    def test_count_trainable_by_hand(self):
        model = models.freeze(small_resnet(5), RESNET_STAGES[:-1])  # a linear probe: only fc trains
        assert utils.count_params(model, trainable_only=True) == 32 * 5 + 5  # width 4 -> 32 features after stage4
        model = models.freeze(SimpleCNN(num_classes=10, width=16), ["conv1", "bn1"])
        assert utils.count_params(model, trainable_only=True) == 24_346 - (3 * 3 * 3 * 16) - 2 * 16  # conv1 (no bias), bn1
        assert utils.count_params(model) == 24_346 - 2 * 16  # bn1's scale and shift are buffers now


class TestHead:
    def test_replace(self):
        model = small_resnet(5)
        old = models.get_head(model)
        new = models.replace_head(model, 2)
        assert model.fc is new and new is not old and (new.in_features, new.out_features) == (32, 2)
        assert model(torch.randn(3, 3, 32, 32)).shape == (3, 2)
        assert models.replace_head(torchvision.models.resnet18(), 7).in_features == 512

    def test_bad(self):
        with pytest.raises(ValueError, match="num_classes must be a positive int, got 0"):
            models.replace_head(small_resnet(), 0)
        with pytest.raises(ValueError, match=r"Sequential has no linear classifier named one of \('fc'"):
            models.get_head(nn.Sequential(nn.Linear(2, 2)))


class TestParamGroups:
    def test_rates_are_what_was_asked(self):
        model = models.freeze(small_resnet(), "stem")
        groups = engine.param_groups(model, {"fc": 0.1, "stage4": 0.05, "default": 0.01})
        assert [(g["name"], g["lr"]) for g in groups] == [("stage4", 0.05), ("fc", 0.1), ("default", 0.01)]
        opt = torch.optim.SGD(groups, lr=1.0, momentum=0.9)
        assert [g["lr"] for g in opt.param_groups] == [0.05, 0.1, 0.01]
        ids = lambda ps: {id(p) for p in ps}  # noqa: E731
        assert ids(groups[1]["params"]) == ids(model.fc.parameters())
        default = ids(p for n in ("stage1", "stage2", "stage3") for p in getattr(model, n).parameters())
        assert ids(groups[2]["params"]) == default  # frozen stem left out
        assert sum(len(g["params"]) for g in groups) == sum(p.requires_grad for p in model.parameters())

    def test_frozen_named_stage_is_dropped(self):
        model = models.freeze(small_resnet(), RESNET_STAGES[:-1])
        assert [g["name"] for g in engine.param_groups(model, {"stem": 1.0, "default": 0.1})] == ["default"]

    def test_bad(self):
        with pytest.raises(ValueError, match=r"no stage 'head'; its stages are \['stem'"):
            engine.param_groups(small_resnet(), {"head": 0.1, "default": 0.01})
        with pytest.raises(ValueError, match=r"stages \['stem', 'stage1', 'stage2', 'stage3', 'stage4'\] are trainable"):
            engine.param_groups(small_resnet(), {"fc": 0.1})


class TestRows:
    def test_map_by_hand(self):
        animals = ("bird", "deer", "frog", "horse")
        assert models.map_class_rows(animals, recipes.TARGET_CLASSES) == {2: 1, 3: 3}  # deer, horse
        assert models.map_class_rows(recipes.SOURCE_CLASSES, recipes.TARGET_CLASSES) == {}  # disjoint
        assert models.map_class_rows(["a", "b"], ["x", "y"]) == {}
        assert models.map_class_rows(["hotdog", "taco"], ["not-hotdog", "hot dog"], rename={"hot dog": "hotdog"}) == {1: 0}

    def test_bad_names(self):
        with pytest.raises(ValueError, match=r"target class 'cow', which is not one of \['cat', 'dog', 'deer', 'horse'\]"):
            models.map_class_rows(recipes.SOURCE_CLASSES, recipes.TARGET_CLASSES, rename={"cow": "horse"})
        with pytest.raises(ValueError, match=r"maps 'cat' to 'kitten', which is not a source class; choose one of \['airplane'"):
            models.map_class_rows(recipes.SOURCE_CLASSES, recipes.TARGET_CLASSES, rename={"cat": "kitten"})
        with pytest.raises(ValueError, match=r"target_classes has duplicate names: \['a'\]"):
            models.map_class_rows(["a"], ["a", "b", "a"])

    def test_copies_exactly_the_mapped_rows(self):
        torch.manual_seed(0)
        old, new = nn.Linear(6, 8), nn.Linear(6, 4)
        before = copy.deepcopy(new)
        models.init_head_from_source(new, old, {2: 3, 0: 7})
        for t, s in {2: 3, 0: 7}.items():
            assert torch.equal(new.weight[t], old.weight[s]) and torch.equal(new.bias[t], old.bias[s])
        for t in (1, 3):
            assert torch.equal(new.weight[t], before.weight[t]) and torch.equal(new.bias[t], before.bias[t])
        # the loop a reader would write
        ref = copy.deepcopy(before)
        with torch.no_grad():
            for t, s in {2: 3, 0: 7}.items():
                ref.weight[t], ref.bias[t] = old.weight[s], old.bias[s]
        assert torch.equal(ref.weight, new.weight) and torch.equal(ref.bias, new.bias)
        assert new.weight.requires_grad and new.weight.grad is None

    def test_bad_heads(self):
        with pytest.raises(ValueError, match="different features: new 6, old 5"):
            models.init_head_from_source(nn.Linear(6, 2), nn.Linear(5, 2), {0: 0})
        with pytest.raises(ValueError, match="row mapping 0 -> 9 is out of range"):
            models.init_head_from_source(nn.Linear(6, 2), nn.Linear(6, 8), {0: 9})


class TestSource:
    CONFIG = recipes.SourceConfig(classes=("airplane", "ship"), n_per_class=8, epochs=1, width=4, batch_size=8)

    @pytest.fixture
    def fake_cifar(self, tmp_path, monkeypatch):
        monkeypatch.setenv("D2LCV_DATA", str(tmp_path / "cache"))
        calls = []

        def subset(split, classes, n_per_class=None, *, seed=0, from_end=False):
            calls.append(split)
            g = torch.Generator().manual_seed(seed)
            n = len(classes) * n_per_class
            return torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g), torch.arange(n) % len(classes)

        monkeypatch.setattr("d2lcv.recipes.finetune_source.cifar_subset", subset)
        return calls

    def test_key_and_path(self, tmp_path, monkeypatch):
        monkeypatch.setenv("D2LCV_DATA", str(tmp_path))
        config = recipes.SourceConfig()
        assert config.key() == recipes.SourceConfig().key() != recipes.SourceConfig(epochs=6).key()
        assert recipes.source_cache_path(config, "cpu") == tmp_path / "finetune" / f"source-cpu-{config.key()}.pt"

    def test_pretrain_then_cache(self, fake_cifar, tmp_path):
        first = recipes.pretrain_source(self.CONFIG, profile="smoke", progress=False)
        assert fake_cifar == ["train"] and first.cache.exists()
        assert [p.name for p in first.cache.parent.iterdir()] == [first.cache.name]  # atomic: no part files
        second = recipes.pretrain_source(self.CONFIG, profile="smoke", progress=False)
        assert fake_cifar == ["train"]  # loaded, not trained again
        for (k, a), b in zip(first.model.state_dict().items(), second.model.state_dict().values()):
            assert torch.equal(a, b), k
        assert second.history.records == first.history.records and len(second.history) == 1
        assert second.classes == ("airplane", "ship") and "pretrained by the book on 2 CIFAR-10" in second.description

    def test_pretraining_is_seeded(self, fake_cifar, tmp_path, monkeypatch):
        a = recipes.pretrain_source(self.CONFIG, profile="smoke", progress=False).model.state_dict()
        torch.manual_seed(123)  # the global RNG state must not matter
        monkeypatch.setenv("D2LCV_DATA", str(tmp_path / "other"))
        b = recipes.pretrain_source(self.CONFIG, profile="smoke", progress=False).model.state_dict()
        assert fake_cifar == ["train", "train"]
        assert all(torch.equal(a[k], b[k]) for k in a)

    def test_load_source_falls_back_offline(self, fake_cifar, monkeypatch, tmp_path):
        monkeypatch.setenv("D2LCV_OFFLINE", "1")
        monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
        with pytest.warns(PretrainedWeightsWarning, match="ResNet18_Weights.IMAGENET1K_V1 are unavailable"):
            source = recipes.load_source(self.CONFIG, profile="smoke")
        assert source.image_size == 32 and source.classes == self.CONFIG.classes
        assert source.description == self.CONFIG.describe()
        assert models.stage_names(source.new_model(3)) == RESNET_STAGES and models.get_head(source.new_model(3)).out_features == 3

    def test_load_source_does_not_try_to_download_when_unreachable(self, fake_cifar, monkeypatch, tmp_path):
        monkeypatch.delenv("D2LCV_OFFLINE", raising=False)
        monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
        monkeypatch.setattr("d2lcv.recipes.finetune_source._reachable", lambda url: False)

        def boom(*args, **kwargs):
            raise AssertionError("download attempted")

        monkeypatch.setattr("d2lcv.data.registry.download", boom)
        with pytest.warns(PretrainedWeightsWarning, match="fallback 'book_source'"):
            assert recipes.load_source(self.CONFIG, profile="smoke").image_size == 32

    def test_input_transform(self):
        source = recipes.Source(nn.Identity(), "x", ("a",), (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), 64, nn.Linear)
        img = torch.full((3, 32, 32), 255, dtype=torch.uint8)
        out = recipes.input_transform(source, train=False)(img)
        assert out.shape == (3, 64, 64) and torch.allclose(out, torch.full_like(out, 2.0))
        assert recipes.input_transform(source, train=True)(img).shape == (3, 64, 64)


def test_fit_target_keeps_frozen_stages_and_records_epoch_zero():
    model = small_resnet(2)
    models.freeze(model, RESNET_STAGES[:-1])
    body = copy.deepcopy(model.state_dict())
    x, y = torch.randn(16, 3, 32, 32), torch.arange(16) % 2
    loader = DataLoader(TensorDataset(x, y), batch_size=8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rng = torch.get_rng_state()
        history = recipes.fit_target(model, loader, loader, epochs=2, lrs={"default": 0.1}, eval_first=True, device="cpu")
    assert torch.equal(torch.get_rng_state(), rng)  # seeded inside, the caller's RNG left alone
    assert history["epoch"] == [0, 1, 2] and len(history["train_acc"]) == 2
    assert history.keys() == ["epoch", "val_loss", "val_acc", "time", "train_loss", "train_acc", "lr"]
    for k, v in model.state_dict().items():
        assert torch.equal(v, body[k]) is (not k.startswith("fc.")), k
