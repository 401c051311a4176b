"""Tests for d2lcv.train: the loop learns, checkpoints round-trip, runs are reproducible."""

from __future__ import annotations

import functools
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from d2lcv import config
from d2lcv.train import (
    History,
    evaluate,
    fit,
    load_checkpoint,
    make_loader,
    num_correct,
    predict,
    save_checkpoint,
    train_epoch,
)

N_CLASSES, DIM = 4, 8


def blobs(n: int = 256, seed: int = 0) -> TensorDataset:
    """Four well-separated Gaussian blobs in 8-D: linearly separable."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % N_CLASSES
    centres = 4.0 * torch.eye(N_CLASSES, DIM)  # [4, 8], pairwise distance 5.7
    x = centres[y] + 0.5 * torch.randn(n, DIM, generator=g)
    return TensorDataset(x, y)


def mlp(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(DIM, 16), nn.ReLU(), nn.Linear(16, N_CLASSES))


def loaders(batch_size: int = 32, seed: int = 0) -> tuple[DataLoader, DataLoader]:
    return (
        make_loader(blobs(256, seed=1), batch_size, shuffle=True, seed=seed),
        make_loader(blobs(128, seed=2), 64, shuffle=False),
    )


def sgd(lr: float = 0.1) -> functools.partial:
    return functools.partial(torch.optim.SGD, lr=lr, momentum=0.9)


def run(epochs: int = 3, **kwargs) -> tuple[nn.Module, History]:
    model = mlp()
    train, val = loaders()
    kwargs = {"optimizer": sgd(), "progress": False, **kwargs}
    history = fit(model, train, val, epochs=epochs, device="cpu", **kwargs)
    return model, history


class TestFit:
    def test_learns_separable_data(self):
        _, history = run(epochs=4)
        assert history["train_loss"][-1] < 0.5 * history["train_loss"][0]
        assert history.last["train_acc"] > 0.95
        assert history.last["val_acc"] > 0.95

    def test_history_keys_and_length(self):
        _, history = run(epochs=3)
        assert len(history) == 3
        assert history.keys() == ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "time"]
        assert history["epoch"] == [1.0, 2.0, 3.0]
        assert history["lr"] == [0.1, 0.1, 0.1]
        assert all(type(v) is float for r in history.records for v in r.values())

    def test_without_validation_has_no_val_keys(self):
        train, _ = loaders()
        history = fit(mlp(), train, epochs=1, optimizer=sgd(), device="cpu", progress=False)
        assert "val_loss" not in history and "train_loss" in history

    def test_soft_labels(self):
        # one-hot targets smoothed by 0.1: the loss takes them as they are,
        # accuracy takes their argmax.
        ds = blobs(256, seed=1)
        x, y = ds.tensors
        soft = 0.9 * F.one_hot(y, N_CLASSES).float() + 0.1 / N_CLASSES  # [256, 4], rows sum to 1
        train = make_loader(TensorDataset(x, soft), 32, shuffle=True)
        history = fit(mlp(), train, train, epochs=4, optimizer=sgd(), device="cpu", progress=False)
        assert history.last["train_acc"] > 0.95
        # the smallest possible loss is the targets' entropy, not 0
        entropy = -(soft * soft.log()).sum(1).mean().item()
        assert history.last["val_loss"] > entropy

    def test_same_seed_same_history(self):
        def seeded_run():
            config.seed_everything(3)
            model = nn.Sequential(nn.Linear(DIM, 16), nn.Dropout(0.2), nn.ReLU(), nn.Linear(16, N_CLASSES))
            train, val = loaders(seed=3)
            h = fit(model, train, val, epochs=2, optimizer=sgd(), device="cpu", progress=False)
            return [{k: v for k, v in r.items() if k != "time"} for r in h.records], model

        (h1, m1), (h2, m2) = seeded_run(), seeded_run()
        assert h1 == h2
        for p1, p2 in zip(m1.parameters(), m2.parameters()):
            assert torch.equal(p1, p2)

    def test_optimizer_instance_and_default(self):
        model = mlp()
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        train, _ = loaders()
        fit(model, train, epochs=1, optimizer=opt, device="cpu", progress=False)
        assert opt.state  # the given optimizer was the one stepped
        history = fit(mlp(), train, epochs=1, device="cpu", progress=False)  # default SGD
        assert history["lr"] == [0.05]

    def test_scheduler_per_epoch(self):
        sched = functools.partial(torch.optim.lr_scheduler.StepLR, step_size=1, gamma=0.5)
        _, history = run(epochs=3, scheduler=sched)
        assert history["lr"] == [0.1, 0.05, 0.025]

    def test_scheduler_per_batch(self):
        model = mlp()
        opt = sgd()(model.parameters())
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0)
        train, _ = loaders(batch_size=32)  # 256 / 32 = 8 batches an epoch
        fit(model, train, epochs=2, optimizer=opt, scheduler=sched, scheduler_interval="batch",
            device="cpu", progress=False)
        assert sched.last_epoch == 16

    def test_amp_on_cpu_uses_bfloat16(self):
        _, history = run(epochs=2, amp=True)
        assert math.isfinite(history.last["train_loss"])
        assert history.last["train_acc"] > 0.9

    def test_metric_none_gives_nan(self):
        _, history = run(epochs=1, metric=None)
        assert math.isnan(history.last["train_acc"]) and math.isnan(history.last["val_acc"])

    def test_progress_and_plot_outside_notebook(self):
        _, history = run(epochs=1, progress=True, plot=True)  # bars on stderr; no plot outside Jupyter
        assert len(history) == 1

    @pytest.mark.parametrize(
        "kwargs, match",
        [
            (dict(epochs=-1), r"epochs must be a non-negative int, got -1"),
            (dict(epochs=1.5), r"epochs must be a non-negative int, got 1.5"),
            (dict(epochs=1, scheduler_interval="step"), r"scheduler_interval must be 'epoch' or 'batch', got 'step'"),
            (dict(epochs=1, grad_clip=0.0), r"grad_clip must be positive or None, got 0.0"),
            (dict(epochs=1, resume=True), r"resume=True needs a checkpoint path, got checkpoint=None"),
        ],
    )
    def test_bad_arguments(self, kwargs, match):
        train, _ = loaders()
        with pytest.raises(ValueError, match=match):
            fit(mlp(), train, device="cpu", progress=False, **kwargs)

    def test_bad_optimizer(self):
        train, _ = loaders()
        with pytest.raises(TypeError, match=r"optimizer must be an Optimizer, a callable or None, got float"):
            fit(mlp(), train, epochs=1, optimizer=0.1, device="cpu", progress=False)


class TestGradClip:
    def grad_norms(self, grad_clip):
        """Global gradient norm seen by every optimizer step."""
        model = mlp()
        opt = torch.optim.SGD(model.parameters(), lr=0.5)
        norms = []

        def record(optimizer, args, kwargs):
            grads = [p.grad for group in optimizer.param_groups for p in group["params"]]
            norms.append(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads])).item())

        opt.register_step_pre_hook(record)
        train, _ = loaders()
        fit(model, train, epochs=1, optimizer=opt, grad_clip=grad_clip, device="cpu", progress=False)
        return norms

    def test_clips_to_max_norm(self):
        unclipped = self.grad_norms(None)
        assert max(unclipped) > 0.1  # so that clipping to 0.05 does something
        clipped = self.grad_norms(0.05)
        assert len(clipped) == 8
        assert max(clipped) <= 0.05 + 1e-6

    def test_constructed_case(self):
        # one weight, loss = 10 * w: the gradient is 10; clipped to 1 the SGD step is lr * 1
        w = nn.Linear(1, 1, bias=False)
        nn.init.zeros_(w.weight)
        loader = [(torch.ones(1, 1), torch.zeros(1))]
        opt = torch.optim.SGD(w.parameters(), lr=0.5)
        train_epoch(w, loader, opt, lambda out, y: 10 * out.sum(), device=torch.device("cpu"),
                    metric=None, grad_clip=1.0)
        assert w.weight.item() == pytest.approx(-0.5)


class TestNumCorrect:
    def test_hand_worked(self):
        logits = torch.tensor([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [1.0, 0.0, 5.0], [4.0, 0.0, 0.0]])
        # argmax: 0, 1, 2, 0
        assert num_correct(logits, torch.tensor([0, 1, 1, 2])).item() == 2
        soft = torch.tensor([[0.7, 0.3, 0.0], [0.1, 0.8, 0.1], [0.0, 0.6, 0.4], [0.5, 0.0, 0.5]])
        # soft argmax: 0, 1, 1, 0 (a tie resolves to the first index)
        assert num_correct(logits, soft).item() == 3

    def test_empty(self):
        assert num_correct(torch.zeros(0, 3), torch.zeros(0, dtype=torch.int64)).item() == 0


class TestEvaluate:
    def test_parity_with_functional(self):
        # an identity model: the inputs are the logits, so the answer is F.cross_entropy on all of them
        g = torch.Generator().manual_seed(0)
        logits, y = torch.randn(50, 5, generator=g), torch.randint(0, 5, (50,), generator=g)
        loader = DataLoader(TensorDataset(logits, y), batch_size=16)  # uneven last batch: 2
        out = evaluate(nn.Identity(), loader, device="cpu")
        assert out["n"] == 50
        assert out["loss"] == pytest.approx(F.cross_entropy(logits, y).item(), rel=1e-6)
        assert out["acc"] == pytest.approx((logits.argmax(1) == y).float().mean().item())

    def test_restores_training_mode(self):
        model = mlp()
        model.train()
        evaluate(model, loaders()[1], device="cpu")
        assert model.training

    def test_empty_loader(self):
        with pytest.raises(ValueError, match="the loader yielded no examples"):
            evaluate(mlp(), [], device="cpu")

    def test_predict(self):
        model = mlp()
        ds = blobs(40)
        out = predict(model, DataLoader(ds, batch_size=16), device="cpu")
        assert out.shape == (40, N_CLASSES)
        torch.testing.assert_close(out, model(ds.tensors[0]))
        bare = predict(model, DataLoader(ds.tensors[0], batch_size=16), device="cpu")
        torch.testing.assert_close(bare, out)
        with pytest.raises(ValueError, match="the loader yielded no batches"):
            predict(model, [], device="cpu")


class TestMakeLoader:
    def order(self, loader, epoch):
        loader.sampler.set_epoch(epoch)
        return torch.cat([y for _, y in loader]).tolist()

    def test_order_depends_on_seed_and_epoch(self):
        ds = TensorDataset(torch.zeros(20, 1), torch.arange(20))
        a, b = make_loader(ds, 8, shuffle=True, seed=1), make_loader(ds, 8, shuffle=True, seed=1)
        assert self.order(a, 0) == self.order(b, 0)
        assert sorted(self.order(a, 0)) == list(range(20))  # every example once
        assert self.order(a, 0) != self.order(a, 1)
        assert self.order(a, 0) != self.order(make_loader(ds, 8, shuffle=True, seed=2), 0)
        assert self.order(make_loader(ds, 8, shuffle=False), 0) == list(range(20))

    def test_bad_arguments(self):
        ds = TensorDataset(torch.zeros(4, 1))
        with pytest.raises(ValueError, match=r"batch_size must be a positive int, got 0"):
            make_loader(ds, 0, shuffle=True)
        with pytest.raises(ValueError, match=r"make_loader builds its own sampler; got \['sampler'\]"):
            make_loader(ds, 2, shuffle=True, sampler=None)


class TestHistory:
    def test_access_and_state_dict(self):
        h = History()
        h.append(epoch=1, train_loss=torch.tensor(0.5), lr=0.1)
        h.append(epoch=2, train_loss=0.25, lr=0.1)
        assert h["train_loss"] == [0.5, 0.25] and h.last["epoch"] == 2.0
        assert History.from_state_dict(h.state_dict()).records == h.records
        assert "train_loss" in repr(h)
        with pytest.raises(KeyError, match=r"history has no 'val_acc'; it has \['epoch', 'train_loss', 'lr'\]"):
            h["val_acc"]
        with pytest.raises(IndexError, match="history is empty"):
            History().last


class TestCheckpoint:
    def test_save_load_restores_model_and_optimizer(self, tmp_path):
        path = tmp_path / "run.pt"
        model, history = run(epochs=2, checkpoint=path)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["run.pt"]  # no temporary files left
        fresh = mlp(seed=1)
        opt = sgd()(fresh.parameters())
        state = load_checkpoint(path, fresh, opt)
        assert state["epoch"] == 2
        assert History.from_state_dict(state["history"]).records == history.records
        for p, q in zip(model.parameters(), fresh.parameters()):
            assert torch.equal(p, q)
        momentum = [opt.state[p]["momentum_buffer"] for p in fresh.parameters()]
        assert all(m is not None and m.abs().sum() > 0 for m in momentum)
        raw = torch.load(path, weights_only=True)  # only tensors and plain containers
        assert set(raw) == {"model", "optimizer", "epoch", "history"}

    def test_resume_equals_uninterrupted_run(self, tmp_path):
        path = tmp_path / "run.pt"
        sched = functools.partial(torch.optim.lr_scheduler.StepLR, step_size=1, gamma=0.5)
        run(epochs=2, checkpoint=path, scheduler=sched)
        resumed, h_resumed = run(epochs=4, checkpoint=path, resume=True, scheduler=sched)
        straight, h_straight = run(epochs=4, scheduler=sched)
        assert h_resumed["epoch"] == [1.0, 2.0, 3.0, 4.0]
        assert h_resumed["lr"] == h_straight["lr"] == [0.1, 0.05, 0.025, 0.0125]
        assert h_resumed["train_loss"] == h_straight["train_loss"]
        for p, q in zip(resumed.parameters(), straight.parameters()):
            assert torch.equal(p, q)
        assert torch.load(path, weights_only=True)["epoch"] == 4

    def test_resume_without_file_starts_fresh(self, tmp_path):
        _, history = run(epochs=1, checkpoint=tmp_path / "new.pt", resume=True)
        assert history["epoch"] == [1.0]

    def test_failed_save_keeps_previous_file(self, tmp_path, monkeypatch):
        path = tmp_path / "ckpt.pt"
        model = mlp()
        save_checkpoint(path, model, epoch=1)

        def broken_save(obj, f):
            f.write(b"partial")
            raise OSError("disk full")

        monkeypatch.setattr(torch, "save", broken_save)
        with pytest.raises(OSError, match="disk full"):
            save_checkpoint(path, model, epoch=2)
        monkeypatch.undo()
        assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]
        assert torch.load(path, weights_only=True)["epoch"] == 1

    def test_load_optimizer_missing(self, tmp_path):
        path = save_checkpoint(tmp_path / "m.pt", mlp())
        model = mlp()
        with pytest.raises(ValueError, match=r"checkpoint '.*m.pt' has no optimizer state"):
            load_checkpoint(path, model, sgd()(model.parameters()))


class TestAmp:
    def test_choices(self, monkeypatch):
        from d2lcv.train import _amp_setup

        cpu, cuda = torch.device("cpu"), torch.device("cuda")
        assert _amp_setup(None, cpu) == (None, None)  # auto: off on the CPU
        assert _amp_setup(True, cpu) == (torch.bfloat16, None)
        assert _amp_setup(False, cuda) == (None, None)
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
        assert _amp_setup(None, cuda) == (torch.bfloat16, None)  # auto: on for CUDA

    def test_scaler_path_clips_unscaled_gradients(self):
        # the float16 branch, run on the CPU: a GradScaler scales the loss by 2**16, and the
        # clip must see the unscaled gradient (10), so the SGD step is lr * 1 as without a scaler
        w = nn.Linear(1, 1, bias=False)
        nn.init.zeros_(w.weight)
        loader = [(torch.ones(1, 1), torch.zeros(1))]
        opt = torch.optim.SGD(w.parameters(), lr=0.5)
        scaler = torch.amp.GradScaler("cpu")
        train_epoch(w, loader, opt, lambda out, y: 10 * out.sum(), device=torch.device("cpu"),
                    metric=None, grad_clip=1.0, scaler=scaler)
        assert w.weight.item() == pytest.approx(-0.5)
