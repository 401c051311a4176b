"""Tests for d2lcv.data.CIFAR10: both packagings (a tiny fake official tarball and a tiny
fake JPEG zip built here), the .npz cache, subsets; and the real mirror when it is set."""

from __future__ import annotations

import io
import os
import pickle
import tarfile
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from d2lcv.data import CIFAR10, CIFAR10_CLASSES, DatasetNotFoundError, balanced_indices, read_cifar10_archive
from d2lcv.data.cifar10 import _npz_path, _source_key
from d2lcv.data.registry import REGISTRY

MIRROR = os.environ.get("D2LCV_MIRROR", "").strip()
# one solid colour per class, far apart so JPEG round trips keep them recognisable
COLOURS = np.array([[20 * k + 10, 250 - 20 * k, (90 * k) % 256] for k in range(10)], dtype=np.uint8)


@pytest.fixture(autouse=True)
def env(data_env):
    return data_env(mirror=False, offline=True)


def _images(labels: list[int]) -> np.ndarray:
    return np.stack([np.broadcast_to(COLOURS[y], (32, 32, 3)) for y in labels])  # [N, 32, 32, 3]


def fake_tarball(path, n_per_batch: int = 4):
    """cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta}, pickled like the original."""
    def blob(obj):
        return pickle.dumps(obj, protocol=2)

    with tarfile.open(path, "w:gz") as tf:
        def add(name, data):
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))

        for b, name in enumerate([f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]):
            labels = [(b + i) % 10 for i in range(n_per_batch)]
            x = _images(labels).transpose(0, 3, 1, 2).reshape(n_per_batch, 3072)  # CHW rows, like the original
            add(name, blob({"batch_label": name, "labels": labels, "data": x, "filenames": []}))
        add("batches.meta", blob({"label_names": list(CIFAR10_CLASSES), "num_vis": 3072}))
    return path


def fake_zip(path, n_train: int = 2, n_test: int = 1):
    with zipfile.ZipFile(path, "w") as zf:
        for split, n in (("train", n_train), ("test", n_test)):
            for k, cls in enumerate(CIFAR10_CLASSES):
                for i in range(n):
                    buf = io.BytesIO()
                    Image.fromarray(_images([k])[0]).save(buf, format="JPEG", quality=95)
                    zf.writestr(f"CIFAR-10-images/{split}/{cls}/{i:04d}.jpg", buf.getvalue())
        zf.writestr("CIFAR-10-images/README.md", b"not an image")
    return path


class TestArchives:
    def test_tarball(self, tmp_path):
        arrays = read_cifar10_archive(fake_tarball(tmp_path / "c.tar.gz"))
        x, y = arrays["train"]
        assert x.shape == (20, 32, 32, 3) and x.dtype == np.uint8 and y.dtype == np.int64
        assert y[:4].tolist() == [0, 1, 2, 3] and y[4:8].tolist() == [1, 2, 3, 4]  # batch order kept
        np.testing.assert_array_equal(x, _images(y.tolist()))  # CHW rows -> HWC exactly
        assert arrays["test"][0].shape == (4, 32, 32, 3) and arrays["test"][1].tolist() == [5, 6, 7, 8]

    def test_zip(self, tmp_path):
        arrays = read_cifar10_archive(fake_zip(tmp_path / "c.zip"))
        x, y = arrays["train"]
        # members sorted by path: classes in alphabetical order, which is the official label order
        assert y.tolist() == [k for k in range(10) for _ in range(2)]
        assert x.shape == (20, 32, 32, 3) and x.dtype == np.uint8
        assert np.abs(x.astype(int) - _images(y.tolist()).astype(int)).max() <= 8  # JPEG, nearly exact
        assert arrays["test"][1].tolist() == list(range(10))

    def test_same_classes_and_shapes_either_way(self, tmp_path):
        a = CIFAR10("train", archive=fake_tarball(tmp_path / "c.tar.gz"))
        b = CIFAR10("train", archive=fake_zip(tmp_path / "c.zip"))
        assert a.classes == b.classes == CIFAR10_CLASSES
        assert a.data.shape[1:] == b.data.shape[1:] == (32, 32, 3)
        assert a.data.dtype == b.data.dtype == np.uint8
        # the same class gets the same colour (label semantics agree)
        for ds in (a, b):
            for i in range(len(ds)):
                assert np.abs(ds.data[i].astype(int) - COLOURS[ds.targets[i]]).max() <= 8

    def test_evil_pickle_refused(self, tmp_path):
        path = tmp_path / "evil.tar.gz"
        with tarfile.open(path, "w:gz") as tf:
            data = pickle.dumps({"data": os.system})  # a global outside the allowed numpy ones
            info = tarfile.TarInfo("cifar-10-batches-py/data_batch_1")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        with pytest.raises(pickle.UnpicklingError, match="refusing to unpickle posix.system"):
            read_cifar10_archive(path)

    def test_not_an_archive(self, tmp_path):
        (tmp_path / "x.bin").write_bytes(b"nothing")
        with pytest.raises(Exception, match="neither the CIFAR-10 python tarball nor a zip"):
            read_cifar10_archive(tmp_path / "x.bin")


class TestDataset:
    def test_getitem_and_transforms(self, tmp_path):
        from torchvision.transforms import v2

        ds = CIFAR10("test", archive=fake_tarball(tmp_path / "c.tar.gz"))
        img, y = ds[0]
        assert isinstance(img, Image.Image) and img.size == (32, 32) and y == 5
        ds = CIFAR10("test", transform=v2.Compose([v2.PILToTensor(), v2.ToDtype(torch.float32, scale=True)]),
                     target_transform=lambda t: t + 100, archive=tmp_path / "c.tar.gz")
        x, y = ds[1]
        assert x.shape == (3, 32, 32) and x.dtype == torch.float32 and y == 106
        assert len(ds) == 4 and isinstance(ds.targets, list)

    def test_npz_cache(self, tmp_path, env):
        archive = fake_tarball(tmp_path / "c.tar.gz")
        CIFAR10("train", archive=archive)
        files = sorted(p.name for p in (env / "cache" / "cifar10").iterdir())
        assert len(files) == 2 and files[0].endswith("-test.npz") and files[1].endswith("-train.npz")

    def test_registry_path_uses_npz_without_fetching(self, env):
        # a cached conversion is used as is: no archive, no mirror, no download needed
        key = _source_key(REGISTRY["cifar10"].mirror[0].path, REGISTRY["cifar10"].mirror[0].checksum)
        dest = _npz_path(key, "test")
        dest.parent.mkdir(parents=True)
        np.savez(dest, data=_images([3, 1]), targets=np.array([3, 1]))
        ds = CIFAR10("test")
        assert ds.targets == [3, 1] and ds.data.shape == (2, 32, 32, 3)

    def test_offline_nothing_cached(self):
        with pytest.raises(DatasetNotFoundError, match=r"cifar-10-python\.tar\.gz: not tried"):
            CIFAR10("train")

    def test_bad_split(self):
        with pytest.raises(ValueError, match="split must be 'train' or 'test', got 'val'"):
            CIFAR10("val")

    def test_tensors_and_subset(self, tmp_path):
        ds = CIFAR10("train", archive=fake_tarball(tmp_path / "c.tar.gz", n_per_batch=10))  # 5 per class
        x, y = ds.tensors()
        assert x.shape == (50, 3, 32, 32) and x.dtype == torch.uint8 and y.dtype == torch.int64
        assert torch.equal(x[7].permute(1, 2, 0), torch.from_numpy(ds.data[7]))
        x, y = ds.tensors(20, generator=torch.Generator().manual_seed(0))
        assert x.shape == (20, 3, 32, 32) and torch.bincount(y).tolist() == [2] * 10
        x2, y2 = ds.tensors(20, generator=torch.Generator().manual_seed(0))
        assert torch.equal(x, x2) and torch.equal(y, y2)
        sub = ds.subset(10, generator=torch.Generator().manual_seed(1))
        assert sorted(sub[i][1] for i in range(len(sub))) == list(range(10))


class TestBalancedIndices:
    def test_hand_worked(self):
        targets = [0, 0, 1, 1, 1, 2]
        # n=3: one per class; class 2 has a single example (index 5), so it is always picked
        idx = balanced_indices(targets, 3, generator=torch.Generator().manual_seed(0))
        assert idx.dtype == torch.int64 and sorted(targets[i] for i in idx) == [0, 1, 2] and 5 in idx.tolist()
        # n=4: 4 // 3 = 1 each, the remainder goes to the first class (label 0): both of its examples
        idx = balanced_indices(targets, 4, generator=torch.Generator().manual_seed(0))
        assert {0, 1, 5} <= set(idx.tolist()) and idx.tolist() == sorted(idx.tolist())

    def test_empty(self):
        assert balanced_indices([0, 1], 0).shape == (0,)
        assert balanced_indices([], 0).dtype == torch.int64

    @pytest.mark.parametrize("targets, n, match", [
        ([0, 1], 3, r"n must be in \[0, 2\], got 3"),
        ([0, 0, 0, 1], 4, "class 1 has 1 examples, fewer than its share 2 of n=4"),
        ([[0, 1]], 1, r"targets must be 1-D, got shape \(1, 2\)"),
    ])
    def test_errors(self, targets, n, match):
        with pytest.raises(ValueError, match=match):
            balanced_indices(targets, n)


@pytest.mark.slow
@pytest.mark.skipif(not MIRROR, reason="D2LCV_MIRROR is not set (offline dataset mirror)")
def test_real_mirror(monkeypatch):
    """Decode all 60,000 mirror JPEGs once (about 15-20 s on 2 cores), then reload from the .npz."""
    monkeypatch.setenv("D2LCV_MIRROR", MIRROR)
    train = CIFAR10("train")
    test = CIFAR10("test")
    assert train.data.shape == (50000, 32, 32, 3) and test.data.shape == (10000, 32, 32, 3)
    assert np.bincount(train.targets).tolist() == [5000] * 10
    assert np.bincount(test.targets).tolist() == [1000] * 10
    def no_decoding(*args, **kwargs):
        raise AssertionError("the second load decoded the JPEGs again instead of reading the .npz")

    monkeypatch.setattr("d2lcv.data.cifar10._from_image_zip", no_decoding)
    again = CIFAR10("train")  # from the cache, not decoded again (speed is never asserted)
    np.testing.assert_array_equal(again.data[:100], train.data[:100])
    # the first member, CIFAR-10-images/train/airplane/0000.jpg, decoded directly
    with zipfile.ZipFile(os.path.join(MIRROR, "cifar10", "CIFAR-10-images.zip")) as zf:
        first = np.asarray(Image.open(io.BytesIO(zf.read("CIFAR-10-images/train/airplane/0000.jpg"))).convert("RGB"))
    np.testing.assert_array_equal(train.data[0], first)
    assert train.targets[0] == 0


class TestClassIndices:
    def test_hand_worked_relabelling_and_order(self):
        from d2lcv.data import class_indices

        targets = [2, 0, 2, 1, 0, 2]
        idx, y = class_indices(targets, [2, 0], generator=torch.Generator().manual_seed(0))
        assert sorted(idx[:3].tolist()) == [0, 2, 5] and sorted(idx[3:].tolist()) == [1, 4]
        assert y.tolist() == [0, 0, 0, 1, 1]

    def test_start_and_end_are_disjoint_and_seeded(self):
        from d2lcv.data import class_indices

        targets = np.arange(100) % 4
        a, _ = class_indices(targets, [1, 3], 10, generator=torch.Generator().manual_seed(7))
        b, _ = class_indices(targets, [1, 3], 15, generator=torch.Generator().manual_seed(7), from_end=True)
        again, _ = class_indices(targets, [1, 3], 10, generator=torch.Generator().manual_seed(7))
        assert not set(a.tolist()) & set(b.tolist()) and np.array_equal(a, again)
        assert set(targets[a].tolist()) == {1, 3}

    def test_too_many(self):
        from d2lcv.data import class_indices

        with pytest.raises(ValueError, match=r"n_per_class must be in \[0, 2\] for class 1, got 3"):
            class_indices([0, 1, 1], [1], 3)

    def test_cifar_subset_unknown_class(self):
        from d2lcv.data import cifar_subset

        with pytest.raises(ValueError, match="unknown CIFAR-10 classes"):
            cifar_subset("train", ["hotdog"])
