"""d2lcv.recipes.classic on synthetic tensors: the chapter's models, recipe, rows and cache."""

from __future__ import annotations

import pytest
import torch

from d2lcv.models import classic as C
from d2lcv.recipes import classic as R


def _data(n=64, n_test=32):
    g = torch.Generator().manual_seed(0)
    x, x_test = torch.randn(n, 3, 32, 32, generator=g), torch.randn(n_test, 3, 32, 32, generator=g)
    return x, torch.arange(n) % 10, x[:0], torch.arange(0), x_test, torch.arange(n_test) % 10


@pytest.mark.parametrize("name", R.CIFAR_MODELS)
def test_every_cifar_model_gives_logits(name):
    assert R.cifar_model(name).eval()(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_cifar_model_rejects_unknown_names():
    with pytest.raises(ValueError, match="name must be one of"):
        R.cifar_model("ViT")


def test_model_row_and_cache_round_trip(tmp_path, monkeypatch):
    monkeypatch.setenv("D2LCV_DATA", str(tmp_path))
    data = _data()
    rows = R.table_rows(["LeNet-5"], data, epochs=1, key="t", profile="smoke", batch_size=32)
    row = rows["LeNet-5"]
    assert row["params"] == sum(p.numel() for p in R.cifar_model("LeNet-5").parameters())
    assert len(row["correct"]) == 32 and 0 <= row["acc"] <= 1 and row["latency_ms"] > 0
    assert len(row["history"]) == 1
    again = R.table_rows(["LeNet-5"], data, epochs=1, key="t", profile="smoke")
    assert again["LeNet-5"]["correct"] == row["correct"]  # read from the cache
    assert R.load_results("missing", "smoke") is None


def test_select_knn_scores_every_pair():
    x, y = torch.randn(20, 5), torch.arange(20) % 2
    scores = R.select_knn(C.KNN(x, y), x[:6], y[:6], ks=(1, 3), ps=(1.0, 2.0))
    assert set(scores) == {(1, 1.0), (3, 1.0), (1, 2.0), (3, 2.0)}
    assert scores[1, 2.0] == 1.0  # each validation image is its own nearest neighbour


def test_correct_on_empty_input():
    model = R.cifar_model("LeNet-5")
    assert R.correct(model, torch.empty(0, 3, 32, 32), torch.empty(0, dtype=torch.int64)).shape == (0,)
