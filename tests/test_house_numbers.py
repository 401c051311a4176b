"""d2lcv.data.house_numbers (the generated street numbers) and d2lcv.data.svhn."""

import importlib
import os

import numpy as np
import pytest
import torch
from PIL import Image

from d2lcv import data, recipes

MIRROR = os.environ.get("D2LCV_MIRROR")
needs_mirror = pytest.mark.skipif(not MIRROR, reason="D2LCV_MIRROR is not set (offline dataset mirror)")


def _pictures():
    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 255, (80, 200, 3), dtype=np.uint8)) for _ in range(2)]


def test_generator_deterministic_and_valid():
    a, la = data.generate_house_numbers(8, "train", seed=3, pictures=_pictures())
    b, lb = data.generate_house_numbers(8, "train", seed=3, pictures=_pictures())
    assert a.shape == (8, 32, 128, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b) and la == lb
    assert all(s.isdigit() and 1 <= len(s) <= 5 for s in la)
    assert all(len(s) == 1 or s[0] != "0" for s in la)
    c, lc = data.generate_house_numbers(8, "test", seed=3, pictures=_pictures(), handwritten=0)
    assert lc != la  # each split has its own generator
    d, ld = data.generate_house_numbers(8, "train", seed=4, pictures=_pictures(), handwritten=0)
    assert ld != la


def test_generator_options():
    imgs, labels = data.generate_house_numbers(10, "val", lengths=(3, 3), handwritten=1.0, size=(96, 24),
                                               pictures=_pictures())
    assert imgs.shape == (10, 24, 96, 3) and {len(s) for s in labels} == {3}
    empty, none = data.generate_house_numbers(0, "val", pictures=_pictures())
    assert empty.shape == (0, 32, 128, 3) and none == []


def test_handwritten_digits_splits_disjoint():
    train_x, train_y = data.handwritten_digits("train")
    test_x, test_y = data.handwritten_digits("test")
    assert train_x.shape == (1200, 8, 8) and len(test_x) == 597
    assert 0 <= train_x.min() and train_x.max() <= 1 and set(train_y.tolist()) == set(range(10))


def test_render_bad_inputs():
    rng = np.random.default_rng(0)
    fonts = data.house_number_fonts()
    assert len(fonts) == len(data.HOUSE_NUMBER_FONTS)
    img = data.render_house_number("2024", rng, _pictures(), fonts=fonts)
    assert img.size == (128, 32) and img.mode == "RGB"
    with pytest.raises(ValueError, match="string of digits"):
        data.render_house_number("12a", rng, _pictures(), fonts=fonts)
    with pytest.raises(ValueError, match="split"):
        data.generate_house_numbers(3, "validation")
    with pytest.raises(ValueError, match="lengths"):
        data.generate_house_numbers(3, "train", lengths=(0, 5))
    with pytest.raises(ValueError, match="handwritten"):
        data.generate_house_numbers(3, "train", handwritten=2.0)
    with pytest.raises(ValueError, match="n must be"):
        data.generate_house_numbers(-1, "train")
    with pytest.raises(ValueError, match="sizes"):
        data.house_numbers("test", {"train": 5})


@needs_mirror
def test_cached(data_env, monkeypatch):
    data_env(mirror=True, offline=True)
    sizes = {"train": 6, "test": 4}
    images, labels = data.house_numbers("test", sizes, progress=False)
    assert images.shape == (4, 3, 32, 128) and images.dtype == torch.uint8 and len(labels) == 4
    files = list((data.cache_dir() / "house-numbers").glob("*.npz"))
    assert len(files) == 1 and not list(files[0].parent.glob(".*part"))
    module = importlib.import_module("d2lcv.data.house_numbers")  # the module, not the function
    monkeypatch.setattr(module, "generate_house_numbers",
                        lambda *a, **k: pytest.fail("regenerated instead of reading the cache"))
    again, labels_again = data.house_numbers("test", sizes)
    assert torch.equal(images, again) and labels == labels_again


def test_targets_and_decoding():
    t, n = recipes.ctc_targets(["42", "7", "10093"])
    assert t.tolist() == [[5, 3, 0, 0, 0], [8, 0, 0, 0, 0], [2, 1, 1, 10, 4]] and n.tolist() == [2, 1, 5]
    p = recipes.position_targets(["42", "7"])
    assert p.tolist() == [[4, 2, 10, 10, 10], [7, 10, 10, 10, 10]]
    logits = torch.nn.functional.one_hot(p, 11).float()
    assert recipes.decode_positions(logits) == ["42", "7"]
    path = torch.tensor([[0, 5, 5, 0, 3, 3, 0]])  # "- 4 4 - 2 2 -" -> "42"
    assert recipes.decode_ctc(torch.nn.functional.one_hot(path, 11).float() * 10) == ["42"]
    assert recipes.decode_ctc(torch.nn.functional.one_hot(path, 11).float() * 10, "beam") == ["42"]
    with pytest.raises(ValueError, match="digits"):
        recipes.ctc_targets(["123456"])
    with pytest.raises(ValueError, match="method"):
        recipes.decode_ctc(torch.zeros(1, 4, 11), "viterbi")


def test_readers_shapes():
    from d2lcv.models import CRNN, PerPositionCNN

    x = torch.randint(0, 256, (2, 3, 32, 128), dtype=torch.uint8)
    assert CRNN(width=4, hidden=8)(x).shape == (2, 16, 11)
    assert CRNN(width=4, hidden=8, rnn="gru", stride=4)(x).shape == (2, 32, 11)
    assert PerPositionCNN(width=4, hidden=8)(x).shape == (2, 5, 11)
    with pytest.raises(ValueError, match="rnn"):
        CRNN(rnn="transformer")


def test_svhn_offline(data_env, tmp_path):
    scipy_io = pytest.importorskip("scipy.io")
    data_env(mirror=False, offline=True)
    info = data.svhn_info("test")
    assert info.sources[0].url == "http://ufldl.stanford.edu/housenumbers/test_32x32.mat"
    assert info.sources[0].checksum == "md5:eb5a983be6a315427106f1b164d9cef3"
    with pytest.raises(data.DatasetNotFoundError):
        data.svhn("test")
    X = np.random.default_rng(0).integers(0, 255, (32, 32, 3, 4), dtype=np.uint8)
    scipy_io.savemat(tmp_path / "fake.mat", {"X": X, "y": np.array([[10], [1], [2], [9]])})
    images, labels = data.read_svhn_mat(tmp_path / "fake.mat")
    assert images.shape == (4, 3, 32, 32) and labels.tolist() == [0, 1, 2, 9]
    assert torch.equal(images[1].permute(1, 2, 0), torch.from_numpy(X[..., 1]))
    with pytest.raises(ValueError, match="split"):
        data.svhn_info("valid")
