"""Tests for d2lcv.engine: one loop, many steps.

The classification tests are those of the old ``d2lcv.train`` (whose numbers must not
change: :class:`TestBitIdentical` compares with the old loop, written out by hand); the
others check each step (detection, GAN, TBPTT language model, pixel optimisation),
callbacks, checkpoints and argument errors on tiny models in seconds.
"""

from __future__ import annotations

import functools
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from d2lcv import config
from d2lcv.engine import (
    Callback,
    ClosureStep,
    Context,
    GANStep,
    History,
    LossStep,
    Pixels,
    Snapshots,
    StepLog,
    SupervisedStep,
    TBPTTStep,
    amp_setup,
    eval_mode,
    evaluate,
    fit,
    load_checkpoint,
    make_loader,
    param_groups,
    predict,
    save_checkpoint,
)
from d2lcv.metrics.classification import num_correct

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


def without_time(history: History) -> list[dict[str, float]]:
    return [{k: v for k, v in r.items() if k != "time"} for r in history.records]


# ---------------------------------------------------------------------------- classification


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
        # one-hot targets smoothed by 0.1: the loss takes them as they are, accuracy their argmax
        x, y = blobs(256, seed=1).tensors
        soft = 0.9 * F.one_hot(y, N_CLASSES).float() + 0.1 / N_CLASSES  # [256, 4], rows sum to 1
        train = make_loader(TensorDataset(x, soft), 32, shuffle=True)
        history = fit(mlp(), train, train, epochs=4, optimizer=sgd(), device="cpu", progress=False)
        assert history.last["train_acc"] > 0.95
        entropy = -(soft * soft.log()).sum(1).mean().item()  # the smallest possible loss, not 0
        assert history.last["val_loss"] > entropy

    def test_same_seed_same_history(self):
        def seeded_run():
            config.seed_everything(3)
            model = nn.Sequential(nn.Linear(DIM, 16), nn.Dropout(0.2), nn.ReLU(), nn.Linear(16, N_CLASSES))
            train, val = loaders(seed=3)
            h = fit(model, train, val, epochs=2, optimizer=sgd(), device="cpu", progress=False)
            return without_time(h), model

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
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 0.5 ** step)
        train, _ = loaders(batch_size=32)  # 256 / 32 = 8 batches an epoch
        history = fit(model, train, epochs=2, optimizer=opt, scheduler=sched, scheduler_interval="batch",
                      device="cpu", progress=False)
        assert sched.last_epoch == 16
        assert history["lr"] == [0.1, 0.1 * 0.5 ** 8]

    def test_metric_none_gives_nan(self):
        _, history = run(epochs=1, metric=None)
        assert math.isnan(history.last["train_acc"]) and math.isnan(history.last["val_acc"])

    def test_progress_and_plot_outside_notebook(self, monkeypatch):
        import d2lcv.engine.loop as loop

        bars = []  # (desc, show) of every bar fit asks for (tqdm itself may be silenced by TQDM_DISABLE)
        real = loop.progress_bar
        monkeypatch.setattr(loop, "progress_bar", lambda it, show, **kw: bars.append((kw["desc"], show)) or real(it, show, **kw))
        _, history = run(epochs=1, progress=True, plot=True)  # no plot outside Jupyter
        assert history["epoch"] == [1.0]
        assert bars == [("epochs", True), ("train", True)]

    def test_without_bar_the_loader_is_iterated_once_per_epoch(self):
        # a seeded DataLoader draws a seed from its generator at every iter(): fit must not add any
        ds = TensorDataset(torch.arange(16.0).reshape(16, 1), torch.zeros(16, dtype=torch.int64))

        def loader():
            return DataLoader(ds, batch_size=8, shuffle=True, generator=torch.Generator().manual_seed(5))

        reference = loader()
        expected = [x.flatten().tolist() for _ in range(2) for x, _ in reference]
        seen = []
        model = nn.Linear(1, 2)
        model.register_forward_hook(lambda m, i, o: seen.append(i[0].flatten().tolist()) if m.training else None)
        fit(model, loader(), epochs=2, device="cpu", progress=False)
        assert seen == expected

    def test_continue_history_equals_one_run(self):
        # a second call with the first call's history and optimizer numbers its epochs on
        # and, with make_loader's per-epoch order, trains exactly as one call would
        model, train = mlp(), loaders()[0]
        opt = sgd()(model.parameters())
        history = fit(model, train, epochs=2, optimizer=opt, device="cpu", progress=False)
        same = fit(model, train, epochs=4, optimizer=opt, device="cpu", progress=False, history=history)
        assert same is history and history["epoch"] == [1.0, 2.0, 3.0, 4.0]
        assert train.sampler.epoch == 3  # each epoch had its own order (set_epoch)
        straight_model = mlp()
        straight = fit(straight_model, train, epochs=4, optimizer=sgd(), device="cpu", progress=False)
        assert history["train_loss"] == straight["train_loss"]
        for p, q in zip(model.parameters(), straight_model.parameters()):
            assert torch.equal(p, q)


def reference_fit(model, train, val, *, epochs, optimizer, scheduler=None, interval="epoch", grad_clip=None,
                  amp_dtype=None, loss_fn=F.cross_entropy):
    """The old d2lcv.train loop (train_epoch + evaluate), written out: the numbers to keep."""
    records = []
    autocast = functools.partial(torch.autocast, "cpu", dtype=amp_dtype, enabled=amp_dtype is not None)
    for epoch in range(epochs):
        train.sampler.set_epoch(epoch)
        lr = optimizer.param_groups[0]["lr"]
        model.train()
        loss_sum, correct, n = 0.0, 0.0, 0
        for x, y in train:
            with autocast():
                logits = model(x)
                loss = loss_fn(logits, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if grad_clip is not None:
                nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            optimizer.step()
            if scheduler is not None and interval == "batch":
                scheduler.step()
            loss_sum += loss.item() * len(y)
            correct += num_correct(logits, y).item()
            n += len(y)
        if scheduler is not None and interval == "epoch":
            scheduler.step()
        record = {"epoch": float(epoch + 1), "train_loss": loss_sum / float(n), "train_acc": correct / float(n)}
        model.eval()
        loss_sum, correct, n = 0.0, 0.0, 0
        with torch.no_grad():
            for x, y in val:
                with autocast():
                    logits = model(x)
                    loss = loss_fn(logits, y)
                loss_sum += loss.item() * len(y)
                correct += num_correct(logits, y).item()
                n += len(y)
        model.train()
        record.update(val_loss=loss_sum / float(n), val_acc=correct / float(n), lr=float(lr))
        records.append(record)
    return records


class TestBitIdentical:
    """fit reproduces the old loop to the last bit: the proof that no number changes."""

    @pytest.mark.parametrize("amp", [False, True], ids=["fp32", "bf16"])
    @pytest.mark.parametrize("grad_clip", [None, 0.5], ids=["noclip", "clip"])
    def test_against_reference_loop(self, amp, grad_clip):
        def setup():
            model = nn.Sequential(nn.Linear(DIM, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, N_CLASSES))
            torch.manual_seed(0)
            for p in model.parameters():
                nn.init.normal_(p, std=0.3)
            opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
            sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.2, total_steps=3 * 8)
            return model, opt, sched

        train, val = loaders()
        ref_model, ref_opt, ref_sched = setup()
        expected = reference_fit(ref_model, train, val, epochs=3, optimizer=ref_opt, scheduler=ref_sched,
                                 interval="batch", grad_clip=grad_clip, amp_dtype=torch.bfloat16 if amp else None)
        model, opt, sched = setup()
        history = fit(model, train, val, epochs=3, optimizer=opt, scheduler=sched, scheduler_interval="batch",
                      grad_clip=grad_clip, amp=amp, device="cpu", progress=False)
        assert without_time(history) == expected
        for (name, p), q in zip(model.state_dict().items(), ref_model.state_dict().values()):
            assert torch.equal(p, q), name

    def test_soft_labels_against_reference(self):
        x, y = blobs(96, seed=4).tensors
        soft = 0.8 * F.one_hot(y, N_CLASSES).float() + 0.05
        train = make_loader(TensorDataset(x, soft), 16, shuffle=True, seed=2)
        val = make_loader(TensorDataset(x, soft), 40, shuffle=False)
        ref_model, model = mlp(5), mlp(5)
        expected = reference_fit(ref_model, train, val, epochs=2, optimizer=sgd()(ref_model.parameters()))
        history = fit(model, train, val, epochs=2, optimizer=sgd(), device="cpu", progress=False)
        assert without_time(history) == expected


class TestAmp:
    @pytest.mark.filterwarnings("ignore:torch.cuda.amp.GradScaler is enabled, but CUDA is not available")
    def test_choices(self, monkeypatch):
        cpu, cuda = torch.device("cpu"), torch.device("cuda")
        assert amp_setup(None, cpu) == (None, None)  # auto: off on the CPU
        assert amp_setup(True, cpu) == (torch.bfloat16, None)
        assert amp_setup(False, cuda) == (None, None)
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
        assert amp_setup(None, cuda) == (torch.bfloat16, None)  # auto: on for CUDA
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
        dtype, scaler = amp_setup(None, cuda)
        assert dtype == torch.float16 and isinstance(scaler, torch.amp.GradScaler)

    @pytest.mark.parametrize("amp, dtype", [(True, torch.bfloat16), (False, torch.float32)])
    def test_autocasts_on_cpu(self, amp, dtype):
        model = mlp()
        seen = {"train": set(), "eval": set()}
        model[0].register_forward_hook(
            lambda m, i, out: seen["train" if m.training else "eval"].add(out.dtype))
        train, val = loaders()
        history = fit(model, train, val, epochs=1, optimizer=sgd(), amp=amp, device="cpu", progress=False)
        assert seen == {"train": {dtype}, "eval": {dtype}}
        assert math.isfinite(history.last["train_loss"])
        assert all(p.dtype == torch.float32 for p in model.parameters())  # weights stay float32

    def test_scaler_path_clips_unscaled_gradients(self):
        # the float16 branch, run on the CPU: a GradScaler scales the loss by 2**16, and the
        # clip must see the unscaled gradient (10), so the SGD step is lr * 1 as without a scaler
        w = nn.Linear(1, 1, bias=False)
        nn.init.zeros_(w.weight)
        opt = torch.optim.SGD(w.parameters(), lr=0.5)
        scaler = torch.amp.GradScaler("cpu")
        ctx = Context(w, torch.device("cpu"), {"default": opt}, scaler=scaler, grad_clip=1.0)
        step = SupervisedStep(lambda out, y: 10 * out.sum(), metric=None)
        step.update(w, (torch.ones(1, 1), torch.zeros(1)), ctx)
        assert scaler.get_scale() == 2.0 ** 16  # the scaler did take part
        assert w.weight.item() == pytest.approx(-0.5)


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
        assert max(clipped) == pytest.approx(0.05, rel=1e-5)  # every step was clipped to the norm

    def test_constructed_case(self):
        # one weight, loss = 10 * w: the gradient is 10; clipped to 1 the SGD step is lr * 1
        w = nn.Linear(1, 1, bias=False)
        nn.init.zeros_(w.weight)
        loader = [(torch.ones(1, 1), torch.zeros(1))]
        fit(w, loader, epochs=1, optimizer=torch.optim.SGD(w.parameters(), lr=0.5),
            loss_fn=lambda out, y: 10 * out.sum(), metric=None, grad_clip=1.0, device="cpu", progress=False)
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

    @pytest.mark.parametrize("mode", [True, False])
    def test_restores_mode(self, mode):
        model = nn.Sequential(nn.Linear(DIM, 16), nn.Dropout(0.5), nn.Linear(16, N_CLASSES)).train(mode)
        seen = []
        model[1].register_forward_hook(lambda m, i, o: seen.append(m.training))
        evaluate(model, loaders()[1], device="cpu")
        predict(model, loaders()[1], device="cpu")
        assert seen and not any(seen)  # evaluated in eval mode
        assert all(m.training == mode for m in model.modules())

    def test_restores_mixed_modes_and_after_errors(self):
        model = mlp().train()
        model[0].eval()  # e.g. a frozen part
        with pytest.raises(RuntimeError):
            with eval_mode(model):
                assert not any(m.training for m in model.modules())
                raise RuntimeError("boom")
        assert [m.training for m in model] == [False, True, True]
        bad = DataLoader(TensorDataset(torch.zeros(4, DIM + 1), torch.zeros(4, dtype=torch.int64)), batch_size=2)
        with pytest.raises(RuntimeError):
            evaluate(model, bad, device="cpu")  # wrong input size: fails inside
        assert [m.training for m in model] == [False, True, True]

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
        assert h.epochs_done == 2 and History().epochs_done == 0
        assert History.from_state_dict(h.state_dict()).records == h.records
        assert repr(h).splitlines() == [
            "     epoch  train_loss          lr",
            "         1      0.5000         0.1",
            "         2      0.2500         0.1",
        ]
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
        assert (tmp_path / "new.pt").exists()

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

    def test_named_optimizers_round_trip(self, tmp_path):
        gan = tiny_gan()
        opts = {"generator": torch.optim.Adam(gan.generator.parameters()),
                "discriminator": torch.optim.Adam(gan.discriminator.parameters())}
        path = save_checkpoint(tmp_path / "gan.pt", gan, opts, epoch=3)
        fresh = tiny_gan(seed=1)
        new = {k: torch.optim.Adam(getattr(fresh, k).parameters(), lr=0.5) for k in opts}
        assert load_checkpoint(path, fresh, new)["epoch"] == 3
        assert new["generator"].param_groups[0]["lr"] == 0.001  # the saved state replaced lr=0.5
        with pytest.raises(ValueError, match=r"no optimizer state for \['critic'\]"):
            load_checkpoint(path, fresh, {"critic": new["generator"]})


# ---------------------------------------------------------------------------- other steps


class TinyDetector(nn.Module):
    """One box and class scores per image, from the mean colour: [B, 3, H, W] -> ([B, 4], [B, C])."""

    def __init__(self, num_classes: int = 3) -> None:
        super().__init__()
        self.box, self.cls = nn.Linear(3, 4), nn.Linear(3, num_classes)

    def forward(self, images):
        feats = images.mean(dim=(2, 3))
        return self.box(feats), self.cls(feats)


def detection_loss(model, batch):
    images, targets = batch
    assert isinstance(targets, list) and all(t["boxes"].device == images.device for t in targets)
    boxes, logits = model(images)
    first_box = torch.stack([t["boxes"][0] for t in targets])  # each image's first object
    first_label = torch.stack([t["labels"][0] for t in targets])
    cls_loss, box_loss = F.cross_entropy(logits, first_label), F.l1_loss(boxes, first_box)
    return cls_loss + box_loss, {"cls_loss": cls_loss, "box_loss": box_loss}


def detection_batches(n_batches: int = 3, batch: int = 4):
    g = torch.Generator().manual_seed(0)
    out = []
    for _ in range(n_batches):
        images = torch.rand(batch, 3, 8, 8, generator=g)
        counts = torch.randint(1, 4, (batch,), generator=g).tolist()
        targets = [{"boxes": torch.rand(k, 4, generator=g), "labels": torch.randint(0, 3, (k,), generator=g)}
                   for k in counts]
        out.append((images, targets))
    return out


class TestLossStep:
    def test_detection_with_dict_targets(self):
        torch.manual_seed(0)
        model = TinyDetector()
        data = detection_batches()
        history = fit(model, data, data, epochs=3, step=LossStep(detection_loss), device="cpu", progress=False,
                      optimizer=functools.partial(torch.optim.Adam, lr=0.05))
        assert history.keys() == ["epoch", "train_loss", "train_cls_loss", "train_box_loss",
                                  "val_loss", "val_cls_loss", "val_box_loss", "lr", "time"]
        # val numbers are means over the images of the per-batch means, computed here by hand
        with torch.no_grad():
            parts = [detection_loss(model.eval(), b) for b in data]
        assert history.last["val_box_loss"] == pytest.approx(sum(p[1]["box_loss"].item() for p in parts) / 3)
        assert history.last["val_loss"] == pytest.approx(
            history.last["val_cls_loss"] + history.last["val_box_loss"], rel=1e-6)
        assert history["train_loss"][-1] < history["train_loss"][0]

    def test_custom_move_and_size(self):
        seen = []

        def fn(model, batch):
            seen.append(batch)
            return model(batch[0]).sum() * 0, {"one": 1.0}

        step = LossStep(fn, move=lambda b, device: (b[0].to(device), "targets stay"), size=lambda b: 1,
                        loss_name=None)
        model = nn.Linear(2, 1)
        history = fit(model, [(torch.ones(5, 2), None)] * 2, epochs=1, step=step, device="cpu", progress=False)
        assert seen[0][1] == "targets stay"
        assert history.keys() == ["epoch", "train_one", "lr", "time"] and history.last["train_one"] == 1.0


class GAN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.generator = nn.Linear(2, 2)
        self.discriminator = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1))


def tiny_gan(seed: int = 0) -> GAN:
    torch.manual_seed(seed)
    return GAN()


class TestGANStep:
    def test_two_optimizers_in_order(self):
        gan = tiny_gan()
        real = torch.randn(64, 2) * 0.5 + torch.tensor([2.0, -1.0])
        loader = DataLoader(TensorDataset(real), batch_size=16)
        before = {k: v.clone() for k, v in gan.state_dict().items()}
        events = []
        opts = {"discriminator": functools.partial(torch.optim.Adam, lr=1e-2),
                "generator": functools.partial(torch.optim.Adam, lr=1e-2)}

        class Order(Callback):
            def on_fit_start(self, ctx):
                for name, opt in ctx.optimizers.items():
                    opt.register_step_pre_hook(lambda o, a, k, name=name: events.append(
                        (name, all(p.grad is None for p in gan.generator.parameters()))))

        step = GANStep(2, generator=torch.Generator().manual_seed(0))
        history = fit(gan, loader, epochs=2, step=step, optimizer=opts, device="cpu", progress=False,
                      callbacks=[Order()])
        assert [name for name, _ in events] == ["discriminator", "generator"] * 8
        assert events[0] == ("discriminator", True)  # D's loss sends no gradient into G (fake.detach())
        for k, v in gan.state_dict().items():
            assert not torch.equal(v, before[k]), f"{k} did not change"
        assert history.keys() == ["epoch", "train_d_loss", "train_g_loss", "lr_discriminator", "lr_generator",
                                  "time"]
        assert all(math.isfinite(v) for v in history["train_d_loss"] + history["train_g_loss"])

    def test_noise_is_reproducible_and_leaves_global_rng(self):
        def once():
            gan = tiny_gan()
            torch.manual_seed(123)
            fit(gan, [torch.randn(8, 2)], epochs=1, step=GANStep((2,), generator=torch.Generator().manual_seed(1)),
                optimizer={"generator": torch.optim.SGD(gan.generator.parameters(), lr=0.1),
                           "discriminator": torch.optim.SGD(gan.discriminator.parameters(), lr=0.1)},
                device="cpu", progress=False)
            return gan.state_dict(), torch.rand(1)

        (a, ra), (b, rb) = once(), once()
        assert all(torch.equal(a[k], b[k]) for k in a) and torch.equal(ra, rb)

    def test_bad_models(self):
        with pytest.raises(ValueError, match=r"latent_shape must be a positive int or a tuple of them, got 0"):
            GANStep(0)
        with pytest.raises(ValueError, match=r"lacks \['generator', 'discriminator'\]"):
            fit(nn.Linear(2, 2), [torch.ones(2, 2)], epochs=1, step=GANStep(2), device="cpu", progress=False)


class CharRNN(nn.Module):
    """Embedding -> RNN -> Linear; records the state it is given."""

    def __init__(self, vocab: int = 5, hidden: int = 8) -> None:
        super().__init__()
        self.embed, self.rnn, self.out = nn.Embedding(vocab, hidden), nn.RNN(hidden, hidden, batch_first=True), \
            nn.Linear(hidden, vocab)
        self.seen: list = []

    def forward(self, x, state=None):
        self.seen.append((self.training, state))
        h, state = self.rnn(self.embed(x), state)
        return self.out(h), state


def sequential_batches(n_batches: int = 4, B: int = 2, T: int = 5):
    """A repeating token stream cut into B rows, then into consecutive [B, T] pieces."""
    stream = torch.arange(B * (n_batches * T + 1)) % 5
    rows = stream.reshape(B, -1)
    return [(rows[:, i * T:(i + 1) * T], rows[:, i * T + 1:(i + 1) * T + 1]) for i in range(n_batches)]


class TestTBPTTStep:
    def test_state_carried_detached_and_reset(self):
        torch.manual_seed(0)
        model = CharRNN()
        data = sequential_batches()
        outputs = []
        model.rnn.register_forward_hook(lambda m, i, out: outputs.append(out[1]))
        history = fit(model, data, data[:2], epochs=2, step=TBPTTStep(), device="cpu", progress=False,
                      optimizer=functools.partial(torch.optim.Adam, lr=0.02))
        seen = model.seen
        assert [training for training, _ in seen] == [True] * 4 + [False] * 2 + [True] * 4 + [False] * 2
        starts = [0, 4, 6, 10]  # each training epoch and evaluation pass starts afresh
        assert [i for i, (_, s) in enumerate(seen) if s is None] == starts
        for i, (_, state) in enumerate(seen):
            if i in starts:
                continue
            assert state.grad_fn is None and not state.requires_grad  # no gradient into the previous batch
            assert torch.equal(state, outputs[i - 1])  # ... but the previous batch's final state
        assert history["train_ppl"] == pytest.approx([math.exp(v) for v in history["train_loss"]])
        assert history["train_loss"][1] < history["train_loss"][0]

    def test_equals_manual_truncated_bptt(self):
        data = sequential_batches()
        torch.manual_seed(1)
        ref = CharRNN()
        torch.manual_seed(1)
        model = CharRNN()
        opt = torch.optim.SGD(ref.parameters(), lr=0.5)
        state, losses = None, []
        for x, y in data:
            logits, state = ref(x, state)
            loss = F.cross_entropy(logits.reshape(-1, 5), y.reshape(-1))
            opt.zero_grad()
            loss.backward()
            opt.step()
            state = state.detach()
            losses.append(loss.item() * y.numel())
        history = fit(model, data, epochs=1, step=TBPTTStep(), optimizer=torch.optim.SGD(model.parameters(), lr=0.5),
                      device="cpu", progress=False)
        assert history.last["train_loss"] == sum(losses) / (4 * 10)
        for p, q in zip(model.parameters(), ref.parameters()):
            assert torch.equal(p, q)

    def test_bad_logits_shape(self):
        class Flat(CharRNN):
            def forward(self, x, state=None):
                logits, state = super().forward(x, state)
                return logits.reshape(-1, 5), state

        with pytest.raises(ValueError, match=r"logits must be \[\*y.shape, V\] = \[2, 5, V\], got \(10, 5\)"):
            fit(Flat(), sequential_batches(1), epochs=1, step=TBPTTStep(), device="cpu", progress=False)


class TestPixels:
    TARGET = torch.tensor([[0.2, 1.7, -0.4], [0.9, 0.5, 0.1]])

    @staticmethod
    def loss(x):
        """A badly conditioned quadratic around TARGET (L-BFGS's line search has work to do)."""
        scale = torch.tensor([1.0, 30.0, 3.0])
        total = ((x - TestPixels.TARGET) ** 2 * scale).sum()
        return total, {"total": total.item(), "mean": x.mean().item()}

    def test_lbfgs_closure_equals_manual_loop(self):
        init = torch.zeros(2, 3)
        x = init.clone().requires_grad_(True)
        opt = torch.optim.LBFGS([x], lr=1, max_iter=1, line_search_fn="strong_wolfe")
        expected, evals = [], []

        def closure():
            opt.zero_grad()
            total, parts = self.loss(x)
            total.backward()
            evals.append(parts)
            return total

        for _ in range(5):
            evals.clear()
            opt.step(closure)
            with torch.no_grad():
                x.clamp_(0, 1)
            expected.append({**evals[0], "evals": float(len(evals))})

        pixels = Pixels(init)
        step = ClosureStep(lambda model, _: self.loss(model()), project=lambda m: m.image.clamp_(0, 1),
                           loss_name=None)
        log, snaps = StepLog(), Snapshots(2, lambda ctx: ctx.model.image.detach().clone())
        lbfgs = torch.optim.LBFGS(pixels.parameters(), lr=1, max_iter=1, line_search_fn="strong_wolfe")
        fit(pixels, range(5), epochs=1, step=step, optimizer=lbfgs, device="cpu", progress=False,
            callbacks=[log, snaps])
        assert log.records == expected
        assert max(log["evals"]) > 1  # the line search evaluated more than once
        assert torch.equal(pixels.image, x.detach())
        assert pixels.image.min() >= 0 and pixels.image.max() <= 1  # projected after every step
        assert [i for i, _ in snaps.snapshots] == [0, 2, 4, 5]
        assert torch.equal(snaps.snapshots[0][1], init) and torch.equal(snaps.snapshots[-1][1], x.detach())
        assert torch.equal(init, torch.zeros(2, 3))  # Pixels copied its start


class TestCallbacks:
    def test_hooks_fire_in_order(self):
        events = []

        class Recorder(Callback):
            def __init__(self, tag):
                self.tag = tag

            def on_fit_start(self, ctx):
                events.append((self.tag, "fit_start", ctx.iteration))

            def on_epoch_start(self, ctx):
                events.append((self.tag, "epoch_start", ctx.epoch))

            def on_step_end(self, ctx, metrics):
                events.append((self.tag, "step_end", ctx.iteration, sorted(metrics)))

            def on_epoch_end(self, ctx, history):
                events.append((self.tag, "epoch_end", len(history)))

            def on_fit_end(self, ctx, history):
                events.append((self.tag, "fit_end", ctx.iteration))

        loader = [(torch.randn(4, DIM), torch.tensor([0, 1, 2, 3]))] * 2
        fit(mlp(), loader, epochs=2, device="cpu", progress=False, callbacks=[Recorder("a"), Recorder("b")])
        step = lambda i: [(t, "step_end", i, ["acc", "loss"]) for t in "ab"]  # noqa: E731
        assert events == [
            ("a", "fit_start", 0), ("b", "fit_start", 0),
            ("a", "epoch_start", 0), ("b", "epoch_start", 0), *step(1), *step(2),
            ("a", "epoch_end", 1), ("b", "epoch_end", 1),
            ("a", "epoch_start", 1), ("b", "epoch_start", 1), *step(3), *step(4),
            ("a", "epoch_end", 2), ("b", "epoch_end", 2),
            ("a", "fit_end", 4), ("b", "fit_end", 4),
        ]

    def test_step_log_values_and_stop(self):
        class StopAfterOne(Callback):
            def on_epoch_end(self, ctx, history):
                ctx.stop = True

        log = StepLog()
        x, y = blobs(64).tensors
        loader = DataLoader(TensorDataset(x, y), batch_size=16)
        history = fit(mlp(), loader, epochs=5, device="cpu", progress=False, callbacks=[log, StopAfterOne()])
        assert history["epoch"] == [1.0]
        assert len(log) == 4 and log.keys() == ["loss", "acc"]
        assert sum(log["loss"]) / 4 == pytest.approx(history.last["train_loss"])  # equal batches
        with pytest.raises(KeyError, match="the step log has no 'ppl'"):
            log["ppl"]


class TestParamGroups:
    def test_per_stage_rates(self):
        model = nn.Sequential()
        model.add_module("body", nn.Linear(2, 3))
        model.add_module("act", nn.ReLU())
        model.add_module("fc", nn.Linear(3, 1))
        groups = param_groups(model, {"fc": 0.1, "default": 0.01})
        assert [(g["name"], g["lr"], len(g["params"])) for g in groups] == [("fc", 0.1, 2), ("default", 0.01, 2)]
        model.body.requires_grad_(False)
        assert [g["name"] for g in param_groups(model, {"fc": 0.1, "default": 0.01})] == ["fc"]
        with pytest.raises(ValueError, match="has no stage 'head'"):
            param_groups(model, {"head": 0.1})


# ---------------------------------------------------------------------------- errors


class TestBadArguments:
    @pytest.mark.parametrize(
        "kwargs, match",
        [
            (dict(epochs=-1), r"epochs must be a non-negative int, got -1"),
            (dict(epochs=1.5), r"epochs must be a non-negative int, got 1.5"),
            (dict(epochs=1, scheduler_interval="step"), r"scheduler_interval must be 'epoch' or 'batch', got 'step'"),
            (dict(epochs=1, grad_clip=0.0), r"grad_clip must be positive or None, got 0.0"),
            (dict(epochs=1, resume=True), r"resume=True needs a checkpoint path, got checkpoint=None"),
            (dict(epochs=1, callbacks=[print]), r"callbacks must be d2lcv.engine.Callback instances, got "
                                                r"\['builtin_function_or_method'\]"),
            (dict(epochs=1, step="supervised"), r"step must be a d2lcv.engine.Step, got str"),
            (dict(epochs=1, step=SupervisedStep(), metric=None), r"pass loss_fn and metric to the step, not to fit"),
            (dict(epochs=1, history=[]), r"history must be a d2lcv.engine.History or None, got list"),
            (dict(epochs=1, scheduler=3), r"scheduler must be a scheduler, a callable optimizer -> scheduler or "
                                          r"None, got int"),
            (dict(epochs=1, optimizer={}), r"optimizer is an empty dict"),
            (dict(epochs=1, optimizer={"head": sgd()}), r"optimizer 'head' is not an Optimizer, so it needs the "
                                                        r"submodule model.head, which Sequential does not have"),
        ],
    )
    def test_fit(self, kwargs, match):
        train, _ = loaders()
        with pytest.raises(ValueError, match=match):
            fit(mlp(), train, device="cpu", progress=False, **kwargs)

    def test_bad_optimizer_type(self):
        train, _ = loaders()
        with pytest.raises(TypeError, match=r"optimizer must be an Optimizer, a callable or None, got float"):
            fit(mlp(), train, epochs=1, optimizer=0.1, device="cpu", progress=False)

    def test_optimize(self):
        model = mlp()
        opts = {"a": sgd()(model.parameters()), "b": sgd()(model.parameters())}
        ctx = Context(model, torch.device("cpu"), opts, scaler=torch.amp.GradScaler("cpu"))
        loss = model(torch.ones(1, DIM)).sum()
        with pytest.raises(ValueError, match=r"optimize needs a loss or a closure, not both or neither; got "
                                             r"loss=NoneType, closure=NoneType"):
            ctx.optimize()
        with pytest.raises(ValueError, match=r"there are 2 optimizers \['a', 'b'\]; name the one to step"):
            ctx.optimize(loss)
        with pytest.raises(ValueError, match=r"no optimizer named 'c'; the optimizers are \['a', 'b'\]"):
            ctx.optimize(loss, name="c")
        with pytest.raises(ValueError, match="a GradScaler .* cannot step with a closure"):
            ctx.optimize(closure=lambda: loss, name="a")

    @pytest.mark.parametrize(
        "make, match",
        [
            (lambda: SupervisedStep(loss_fn="ce"), r"loss_fn must be callable, got str"),
            (lambda: SupervisedStep(metric=1), r"metric must be callable or None, got int"),
            (lambda: LossStep(None), r"fn must be callable, got NoneType"),
            (lambda: LossStep(print, move=2), r"move must be callable or None, got int"),
            (lambda: ClosureStep(print, project=1), r"project must be callable or None, got int"),
            (lambda: TBPTTStep(loss_fn=0), r"loss_fn must be callable, got int"),
            (lambda: Snapshots(-1, print), r"every must be a non-negative int, got -1"),
            (lambda: Pixels(torch.zeros(2, dtype=torch.int64)),
             r"init must be a floating-point tensor, got torch.int64"),
            (lambda: evaluate(mlp(), [], step=SupervisedStep(), metric=None), r"pass loss_fn and metric to the step"),
        ],
    )
    def test_constructors(self, make, match):
        with pytest.raises(ValueError, match=match):
            make()


class TestPairedDifference:
    def test_hand_worked(self):
        from d2lcv.metrics import paired_difference, verdict

        a = torch.tensor([[1, 1, 0, 1], [1, 0, 0, 1]], dtype=torch.bool)  # 2 seeds, 4 images
        b = torch.tensor([[0, 1, 0, 1], [0, 1, 0, 0]], dtype=torch.bool)
        diff, se = paired_difference(a, b)  # per image: 1 - 0, 0.5 - 1, 0 - 0, 1 - 0.5
        assert diff == pytest.approx(0.25)
        assert se == pytest.approx(torch.tensor([1.0, -0.5, 0.0, 0.5]).std().item() / 2)
        assert verdict(diff, se) == "within noise" and verdict(0.1, 0.01) == "a clear gain"
        assert verdict(-0.1, 0.01) == "a clear loss"

    def test_bad(self):
        from d2lcv.metrics import paired_difference

        with pytest.raises(ValueError, match="same N >= 2 images"):
            paired_difference(torch.ones(3, dtype=torch.bool), torch.ones(4, dtype=torch.bool))
