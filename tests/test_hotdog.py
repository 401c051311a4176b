"""Tests for d2lcv.data.Hotdog with a tiny zip laid out like d2l's hotdog.zip (built here;
the real archive is not needed), and the registry entry's offline error message."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from PIL import Image

from d2lcv.data import HOTDOG_CLASSES, ArchiveError, DatasetNotFoundError, Hotdog, cache_dir


@pytest.fixture(autouse=True)
def env(data_env):
    return data_env(mirror=False, offline=True)


def _png(colour, size=(7, 5)) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((size[1], size[0], 3), colour, dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


RED, BLUE = (200, 10, 10), (10, 10, 200)


def fake_hotdog_zip(path, top="hotdog/", n=(2, 3)):
    """``<top>{train,test}/{hotdog,not-hotdog}/<i>.png``: red hot dogs, blue others,
    ``n[0]`` and ``n[1]`` of them per split, plus a non-image file that must be skipped."""
    with zipfile.ZipFile(path, "w") as zf:
        for split in ("train", "test"):
            for name, colour, count in (("hotdog", RED, n[0]), ("not-hotdog", BLUE, n[1])):
                for i in range(count):
                    zf.writestr(f"{top}{split}/{name}/{i}.png", _png(colour))
            zf.writestr(f"{top}{split}/README.txt", b"not an image")
    return path


class TestHotdog:
    def test_layout_labels_and_images(self, env):
        archive = fake_hotdog_zip(env / "hotdog.zip")
        train = Hotdog("train", archive=archive)
        assert len(train) == 5 and train.targets == [0, 0, 1, 1, 1]
        assert train.classes == HOTDOG_CLASSES == ("hotdog", "not-hotdog")
        img, label = train[0]
        assert img.mode == "RGB" and img.size == (7, 5) and label == 0
        assert np.asarray(img)[0, 0].tolist() == list(RED)
        assert np.asarray(train[4][0])[0, 0].tolist() == list(BLUE)
        assert [p.name for p, _ in train.samples] == ["0.png", "1.png", "0.png", "1.png", "2.png"]
        assert repr(Hotdog("test", archive=archive)) == "Hotdog(split='test', n=5)"

    def test_extracted_once_into_the_cache(self, env):
        archive = fake_hotdog_zip(env / "hotdog.zip")
        Hotdog("train", archive=archive)
        folders = list((cache_dir() / "hotdog").iterdir())
        assert len(folders) == 1 and folders[0].name.startswith("hotdog-")
        stamp = folders[0].stat().st_mtime_ns
        Hotdog("test", archive=archive)
        assert list((cache_dir() / "hotdog").iterdir()) == folders and folders[0].stat().st_mtime_ns == stamp

    def test_no_top_folder(self, env):
        archive = fake_hotdog_zip(env / "flat.zip", top="")
        assert Hotdog("test", archive=archive).targets == [0, 0, 1, 1, 1]

    def test_transforms(self, env):
        archive = fake_hotdog_zip(env / "hotdog.zip")
        data = Hotdog("train", transform=lambda im: im.size, target_transform=lambda y: 10 + y, archive=archive)
        assert data[4] == ((7, 5), 11)

    def test_wrong_layout(self, env):
        with zipfile.ZipFile(env / "bad.zip", "w") as zf:
            zf.writestr("hotdog/train/cat/0.png", _png(RED))
        with pytest.raises(ArchiveError, match=r"expected folders .*train,test.*hotdog,not-hotdog"):
            Hotdog("train", archive=env / "bad.zip")

    def test_bad_split(self, env):
        with pytest.raises(ValueError, match="split must be 'train' or 'test', got 'val'"):
            Hotdog("val", archive=env / "unused.zip")

    def test_offline_error_names_url_and_place(self, env):
        with pytest.raises(DatasetNotFoundError) as info:
            Hotdog("train")
        msg = str(info.value)
        assert "hotdog.zip: not tried ($D2LCV_OFFLINE is set)" in msg
        assert str(cache_dir() / "hotdog" / "hotdog.zip") in msg
