"""Tests for d2lcv.models.weights: resolution, hash-prefix checks, the load path from a temp mirror,
cache or file:// download, and the announced fallback when no weights can be had."""

from __future__ import annotations

import functools
import hashlib
import io

import pytest
import torch
import torchvision
from torch import nn
from torchvision.models import Weights, WeightsEnum
from torchvision.transforms._presets import ImageClassification

from d2lcv.models.weights import FALLBACKS, PretrainedWeightsWarning, WeightsUnavailableError, load_pretrained, pretrained_transforms, resolve_weights, weights_checksum, weights_path


@pytest.fixture(autouse=True)
def env(data_env):
    """Empty d2lcv and torch.hub caches, no mirror, downloads off."""
    return data_env(mirror=False, offline=True, torch_home=True)


def tiny_weights(tmp_path, *, wrong_hash: bool = False):
    """A squeezenet1_1 state dict saved as ``squeezenet1_1-<sha256[:8]>.pth`` (torchvision's
    naming) and a WeightsEnum whose URL is that file; returns (enum member, file, state)."""
    torch.manual_seed(0)
    state = torchvision.models.squeezenet1_1(num_classes=1000).state_dict()
    buf = io.BytesIO()
    torch.save(state, buf)
    data = buf.getvalue()
    prefix = "0" * 8 if wrong_hash else hashlib.sha256(data).hexdigest()[:8]
    path = tmp_path / "host" / f"squeezenet1_1-{prefix}.pth"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    enum = WeightsEnum("TinyWeights", {"V1": Weights(
        url=path.as_uri(), transforms=functools.partial(ImageClassification, crop_size=224),
        meta={"categories": [str(i) for i in range(1000)]},
    )})
    return enum.V1, path, state


class TestResolve:
    def test_names(self):
        V = torchvision.models.ResNet18_Weights
        assert resolve_weights("resnet18") is V.IMAGENET1K_V1
        assert resolve_weights("resnet18", "IMAGENET1K_V1") is V.IMAGENET1K_V1
        assert resolve_weights("resnet18", "ResNet18_Weights.IMAGENET1K_V1") is V.IMAGENET1K_V1
        assert resolve_weights("resnet18", V.IMAGENET1K_V1) is V.IMAGENET1K_V1

    def test_errors(self):
        with pytest.raises(ValueError, match=r"weights for 'resnet18' must be one of \['DEFAULT', 'IMAGENET1K_V1'\], got 'V2'"):
            resolve_weights("resnet18", "V2")
        with pytest.raises(ValueError, match="arch must be a torchvision model name .* got 'resnet7'"):
            resolve_weights("resnet7")
        with pytest.raises(ValueError, match="fallback must be one of \\['random'\\], a callable or None, got 'zeros'"):
            load_pretrained("resnet18", fallback="zeros")
        with pytest.raises(ValueError, match="quantized models are not supported"):
            load_pretrained("quantized_resnet18")

    def test_checksum_from_filename(self):
        # torch.hub's rule: the hex digits after the last '-' are a sha256 prefix
        assert weights_checksum("resnet18-f37072fd.pth") == "sha256:f37072fd"
        assert weights_checksum("fasterrcnn_resnet50_fpn_coco-258fb6c6.pth") == "sha256:258fb6c6"
        assert weights_checksum("model.pth") is None

    def test_transforms_need_no_file(self):
        t = pretrained_transforms("resnet18")
        assert isinstance(t, ImageClassification) and list(t.crop_size) == [224]


class TestUnavailable:
    def test_error_names_url_and_target(self, env):
        target = env / "cache" / "weights" / "resnet18-f37072fd.pth"
        with pytest.raises(WeightsUnavailableError) as info:
            load_pretrained("resnet18")
        msg = str(info.value)
        assert "https://download.pytorch.org/models/resnet18-f37072fd.pth: not tried ($D2LCV_OFFLINE is set)" in msg
        assert f"put a copy of one of these files at {target}" in msg
        assert str(env / "torch" / "hub" / "checkpoints" / "resnet18-f37072fd.pth") in msg

    def test_random_fallback(self):
        with pytest.warns(PretrainedWeightsWarning, match=r"resnet18: pretrained weights ResNet18_Weights\.IMAGENET1K_V1 are unavailable, so this model uses fallback 'random'"):
            model = load_pretrained("resnet18", fallback="random")
        assert model.d2lcv_weights.startswith("fallback 'random': torchvision's default initialisation")
        assert "ResNet18_Weights.IMAGENET1K_V1 unavailable" in model.d2lcv_weights
        assert model.eval()(torch.zeros(1, 3, 64, 64)).shape == (1, 1000)

    def test_detection_fallback_fetches_no_backbone(self):
        # builders default to downloading an ImageNet backbone; the fallback must not
        with pytest.warns(PretrainedWeightsWarning):
            model = load_pretrained("fasterrcnn_mobilenet_v3_large_320_fpn", fallback="random")
        assert model.roi_heads.box_predictor.cls_score.out_features == 91

    def test_callable_fallback(self):
        def tiny(arch, kwargs):
            return nn.Linear(2, kwargs["num_classes"])

        with pytest.warns(PretrainedWeightsWarning, match="fallback 'tiny'"):
            model = load_pretrained("resnet18", fallback=tiny)
        assert model.out_features == 1000 and model.d2lcv_weights.startswith("fallback 'tiny': user-supplied")
        assert set(FALLBACKS) == {"random"}


class TestLoad:
    def test_from_mirror(self, env, monkeypatch):
        w, path, state = tiny_weights(env)
        mirror = env / "mirror"
        (mirror / "weights").mkdir(parents=True)
        (mirror / "weights" / path.name).write_bytes(path.read_bytes())
        monkeypatch.setenv("D2LCV_MIRROR", str(mirror))
        model = load_pretrained("squeezenet1_1", w)
        assert model.d2lcv_weights == "torchvision TinyWeights.V1"
        for k, v in model.state_dict().items():
            assert torch.equal(v, state[k]), k
        assert weights_path("squeezenet1_1", w) == mirror / "weights" / path.name

    def test_download_then_cache(self, env, monkeypatch):
        w, path, state = tiny_weights(env)
        monkeypatch.setenv("D2LCV_OFFLINE", "0")
        model = load_pretrained("squeezenet1_1", w, progress=False)
        cached = env / "cache" / "weights" / path.name
        assert cached.read_bytes() == path.read_bytes()
        path.unlink()  # the "server" is gone: the cache is enough now
        assert weights_path("squeezenet1_1", w) == cached
        assert torch.equal(model.classifier[1].weight, state["classifier.1.weight"])

    def test_torch_hub_cache_is_used(self, env):
        w, path, _ = tiny_weights(env)
        hub = env / "torch" / "hub" / "checkpoints"
        hub.mkdir(parents=True)
        (hub / path.name).write_bytes(path.read_bytes())
        assert weights_path("squeezenet1_1", w) == hub / path.name

    def test_hash_prefix_mismatch(self, env, monkeypatch):
        w, path, _ = tiny_weights(env, wrong_hash=True)
        monkeypatch.setenv("D2LCV_OFFLINE", "0")
        with pytest.raises(WeightsUnavailableError, match=r"checksum mismatch .*expected sha256:00000000, got sha256:"):
            load_pretrained("squeezenet1_1", w, progress=False)
        assert not (env / "cache" / "weights" / path.name).exists()
        # a fallback still works, and says so
        with pytest.warns(PretrainedWeightsWarning):
            model = load_pretrained("squeezenet1_1", w, fallback="random", progress=False)
        assert model.d2lcv_weights.startswith("fallback 'random'")

    def test_num_classes_must_match(self, env, monkeypatch):
        w, path, _ = tiny_weights(env)
        monkeypatch.setenv("D2LCV_OFFLINE", "0")
        with pytest.raises(ValueError, match="num_classes=10 does not match the 1000 categories of TinyWeights.V1"):
            load_pretrained("squeezenet1_1", w, num_classes=10, progress=False)
