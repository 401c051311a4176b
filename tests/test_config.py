import pytest
import torch

from d2lcv import config


class TestProfile:
    def test_env_selects_profile(self, monkeypatch):
        for name in config.PROFILES:
            monkeypatch.setenv("D2LCV_PROFILE", name.upper())
            assert config.get_profile() == name

    def test_default_depends_on_cuda(self, monkeypatch):
        monkeypatch.delenv("D2LCV_PROFILE", raising=False)
        monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
        assert config.get_profile() == "cpu"
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        assert config.get_profile() == "full"

    def test_bad_profile(self, monkeypatch):
        monkeypatch.setenv("D2LCV_PROFILE", "fast")
        with pytest.raises(ValueError, match="D2LCV_PROFILE='fast' is not a profile; set it to one of smoke, cpu, full"):
            config.get_profile()

    def test_by_profile(self, monkeypatch):
        monkeypatch.setenv("D2LCV_PROFILE", "smoke")
        cfg = config.by_profile(smoke=dict(epochs=1), cpu=dict(epochs=5), full=dict(epochs=30))
        assert (cfg.profile, cfg.epochs) == ("smoke", 1)
        assert config.by_profile(smoke=dict(e=1), cpu=dict(e=5), full=dict(e=30), profile="full").e == 30
        assert "Run profile: `smoke`" in cfg._repr_markdown_()

    def test_by_profile_needs_same_keys(self):
        with pytest.raises(ValueError, match=r"missing: \{'full': \['lr'\]\}"):
            config.by_profile(smoke=dict(epochs=1, lr=0.1), cpu=dict(epochs=5, lr=0.1), full=dict(epochs=30))
        with pytest.raises(ValueError, match="profile must be one of"):
            config.by_profile(smoke={}, cpu={}, full={}, profile="gpu")


class TestDeviceAndSeed:
    def test_try_device(self, monkeypatch):
        monkeypatch.delenv("D2LCV_DEVICE", raising=False)
        monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
        assert config.try_device() == torch.device("cpu")
        assert config.try_device("cpu") == torch.device("cpu")
        with pytest.raises(ValueError, match="CUDA is not available"):
            config.try_device("cuda")

    def test_seed_reproduces(self):
        g = config.seed_everything(3)
        a = torch.rand(3), torch.rand(3, generator=g)
        g = config.seed_everything(3)
        b = torch.rand(3), torch.rand(3, generator=g)
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])

    def test_deterministic_switch(self):
        try:
            config.seed_everything(0, deterministic=True)
            assert torch.are_deterministic_algorithms_enabled()
        finally:
            config.seed_everything(0, deterministic=False)
        assert not torch.are_deterministic_algorithms_enabled()
