"""d2lcv.utils: atomic writes, parameter counts, progress bars, scoped seeding, timing."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from torch import nn

from d2lcv.utils import atomic_write, best_time, count_params, progress, save_atomic, seeded


class TestAtomicWrite:
    def test_writes_whole_file_readable_by_all(self, tmp_path):
        dest = tmp_path / "sub" / "x.bin"
        with atomic_write(dest) as f:
            f.write(b"abc")
        assert dest.read_bytes() == b"abc"
        assert oct(dest.stat().st_mode & 0o777) == "0o644"
        assert [p.name for p in dest.parent.iterdir()] == ["x.bin"]

    def test_failure_keeps_the_old_file_and_leaves_no_part(self, tmp_path):
        dest = tmp_path / "x.txt"
        dest.write_text("old")
        with pytest.raises(RuntimeError, match="boom"):
            with atomic_write(dest, "w") as f:
                f.write("new, half written")
                raise RuntimeError("boom")
        assert dest.read_text() == "old"
        assert [p.name for p in tmp_path.iterdir()] == ["x.txt"]

    def test_bad_mode(self, tmp_path):
        with pytest.raises(ValueError, match="mode must be 'wb' or 'w', got 'a'"):
            with atomic_write(tmp_path / "x", "a"):
                pass

    def test_save_atomic_round_trip(self, tmp_path):
        path = save_atomic({"w": torch.arange(3)}, tmp_path / "s.pt")
        assert torch.equal(torch.load(path, weights_only=True)["w"], torch.arange(3))


class TestCountParams:
    def test_by_hand_and_trainable_only(self):
        model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2, bias=False))  # 16 + 8
        assert count_params(model) == 24
        model[0].requires_grad_(False)
        assert count_params(model, trainable_only=True) == 8 and count_params(model) == 24

    def test_shared_parameters_count_once(self):
        layer = nn.Linear(2, 2)
        assert count_params(nn.Sequential(layer, layer)) == 6

    def test_bad(self):
        with pytest.raises(TypeError, match="model must be an nn.Module, got list"):
            count_params([1, 2])


class TestProgress:
    def test_hidden_returns_the_iterable_itself(self):
        data = [1, 2, 3]
        assert progress(data, show=False) is data  # not even iter() is called an extra time

    def test_shown_is_a_bar_and_disable_is_refused(self, monkeypatch):
        monkeypatch.setenv("TQDM_DISABLE", "1")
        assert list(progress(range(3), show=True)) == [0, 1, 2]
        with pytest.raises(ValueError, match="show=False instead of disable="):
            progress(range(3), disable=False)

    def test_manual_bar_without_iterable(self):
        bar = progress(total=3, show=False)
        bar.update(3)
        bar.close()


class TestSeeded:
    def test_reproducible_inside_and_restores_outside(self):
        random.seed(5)
        np.random.seed(5)
        torch.manual_seed(5)
        expected = (random.random(), np.random.rand(), torch.rand(1))
        random.seed(5)
        np.random.seed(5)
        torch.manual_seed(5)
        with seeded(0) as g:
            a = (random.random(), np.random.rand(), torch.rand(1), torch.rand(1, generator=g))
        with seeded(0) as g:
            b = (random.random(), np.random.rand(), torch.rand(1), torch.rand(1, generator=g))
        assert a[:2] == b[:2] and torch.equal(a[2], b[2]) and torch.equal(a[3], b[3])
        after = (random.random(), np.random.rand(), torch.rand(1))
        assert after[:2] == expected[:2] and torch.equal(after[2], expected[2])

    def test_determinism_flags_left_alone(self):
        before = torch.are_deterministic_algorithms_enabled()
        with seeded(1):
            pass
        assert torch.are_deterministic_algorithms_enabled() == before


class TestBestTime:
    def test_returns_min_and_last_result(self):
        calls = []

        def fn():
            calls.append(1)
            return len(calls)

        t, out = best_time(fn, 4, process_time=False)
        assert out == 4 and len(calls) == 4 and t >= 0

    def test_bad(self):
        with pytest.raises(ValueError, match="repeat must be >= 1, got 0"):
            best_time(lambda: None, 0)




def test_tqdm_disable_silences_notebook_bars_without_changing_the_iteration(monkeypatch):
    """tqdm.notebook ignores TQDM_DISABLE; progress() honours it, and a silenced bar still
    wraps the iterable (a DataLoader is iterated the same way, so results do not change)."""
    from torch.utils.data import DataLoader, TensorDataset

    def first_batch(show):
        g = torch.Generator().manual_seed(0)
        loader = DataLoader(TensorDataset(torch.arange(10)), batch_size=5, shuffle=True, generator=g)
        return next(iter(progress(loader, show=show)))[0].tolist()

    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    shown = first_batch(True)
    monkeypatch.setenv("TQDM_DISABLE", "1")
    bar = progress(range(3), show=True)
    assert bar.disable and list(bar) == [0, 1, 2]
    assert first_batch(True) == shown
