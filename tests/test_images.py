"""Tests for d2lcv.data.images: names and parsing offline; real files from the mirror."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest

from d2lcv.data import (
    CONTENT_PHOTOS,
    EMOJI_NAMES,
    PAINTINGS,
    PHOTOS,
    DatasetNotFoundError,
    content_photo,
    emoji,
    emoji_codepoints,
    load_image,
    painting,
    photo_path,
    photo_paths,
    timemachine,
)
from d2lcv.data.images import _codepoint

MIRROR = os.environ.get("D2LCV_MIRROR", "").strip()
needs_mirror = pytest.mark.skipif(not MIRROR, reason="D2LCV_MIRROR is not set (offline dataset mirror)")


@pytest.fixture(autouse=True)
def env(data_env):
    """Empty cache, downloads off, the real mirror only where the environment names one."""
    return data_env(mirror=True, offline=True)


@pytest.fixture
def no_mirror(monkeypatch):
    monkeypatch.delenv("D2LCV_MIRROR", raising=False)


class TestNames:
    def test_collections(self):
        assert PHOTOS == ("cat1.jpg", "catdog.jpg", "rainier.jpg", "autumn-oak.jpg", "banana.jpg")
        assert set(PAINTINGS) >= {"starry_night", "the_scream", "wave", "composition_vii"}
        assert CONTENT_PHOTOS == ("astronaut", "chelsea", "coffee", "rocket")

    @pytest.mark.parametrize("spec, cp", [
        ("banana", "1f34c"), ("Banana", "1f34c"), ("1f34c", "1f34c"), ("U+1F34C", "1f34c"),
        ("emoji_u1f34c.png", "1f34c"), ("23_20e3", "0023_20e3"), ("1f1fa-1f1f8", "1f1fa_1f1f8"),
    ])
    def test_codepoint(self, spec, cp):
        assert _codepoint(spec) == cp

    @pytest.mark.parametrize("spec", ["bananas", "1f34g", "", "1_", "1234567"])
    def test_codepoint_bad(self, spec):
        with pytest.raises(ValueError, match=f"emoji must be a name .* got {spec!r}"):
            _codepoint(spec)

    def test_bad_names(self):
        with pytest.raises(ValueError, match="unknown photo 'dog.jpg'; choose from cat1, catdog"):
            load_image("dog.jpg")
        with pytest.raises(ValueError, match="unknown painting 'mona_lisa'; choose from .*starry_night"):
            painting("mona_lisa")
        with pytest.raises(ValueError, match="unknown content photo 'camera'"):
            content_photo("camera")
        with pytest.raises(TypeError, match="got int"):
            emoji([0x1F34C])
        with pytest.raises(ValueError, match="size must be positive, got 0"):
            emoji("banana", size=0)


class TestOffline:
    def test_photo_not_found(self, env, no_mirror):
        target = env / "cache" / "d2l-img" / "cat1.jpg"
        with pytest.raises(DatasetNotFoundError, match=rf"(?s)raw\.githubusercontent\.com/d2l-ai/d2l-en/.*/img/cat1\.jpg: not tried.*put a copy of one of these files at {target}"):
            load_image("cat1")

    def test_emoji_not_found(self, no_mirror):
        with pytest.raises(DatasetNotFoundError, match=r"noto-emoji-png72\.zip"):
            emoji("1f600")  # not one of the individually downloadable ones
        with pytest.raises(DatasetNotFoundError, match=r"noto-emoji/.*/png/72/emoji_u1f34c\.png: not tried"):
            emoji("banana")

    def test_timemachine_not_found(self, no_mirror):
        with pytest.raises(DatasetNotFoundError, match=r"timemachine\.txt: not tried"):
            timemachine()


@needs_mirror
class TestMirror:
    @pytest.mark.parametrize("name, size", [
        ("cat1.jpg", (500, 400)), ("catdog", (728, 561)), ("banana.jpg", (256, 256)),
    ])
    def test_photos(self, name, size):
        im = load_image(name)
        assert im.size == size and im.mode == "RGB"
        assert photo_path(name).parent == Path(MIRROR) / "d2l-img"  # served in place from the mirror

    def test_photo_paths(self):
        paths = photo_paths()
        assert list(paths) == list(PHOTOS) and all(p.is_file() for p in paths.values())

    def test_paintings_and_content(self):
        assert painting("starry_night").size == (1024, 640)
        assert painting("wave_crop.jpg").size == (673, 507)
        assert content_photo("chelsea").size == (451, 300)
        assert content_photo("astronaut", mode="L").mode == "L"

    def test_timemachine(self):
        text = timemachine()
        assert len(text) == 178979 and text.startswith("The Time Machine, by H. G. Wells [1898]")

    def test_emoji(self):
        ims = emoji(list(EMOJI_NAMES))  # every named fruit exists in the zip
        assert len(ims) == len(EMOJI_NAMES)
        assert all(im.size == (72, 72) and im.mode == "RGBA" for im in ims)
        assert ims[0].getpixel((0, 0))[3] == 0  # transparent corner
        assert emoji("0023_20e3", size=32)[0].size == (32, 32)
        with pytest.raises(ValueError, match=r"emoji '1f1fa_1f1f8' \(U\+1F1FA_1F1F8\) is not in"):
            emoji("1f1fa_1f1f8")

    def test_emoji_codepoints(self):
        cps = emoji_codepoints()
        assert len(cps) == 3583 and "1f34c" in cps and cps == sorted(cps)

    def test_single_cached_emoji_without_mirror(self, env, monkeypatch):
        # a PNG placed in the cache under its official name is used when the zip is absent
        with zipfile.ZipFile(Path(MIRROR) / "emoji-noto-72" / "noto-emoji-png72.zip") as zf:
            data = zf.read("noto-emoji/png/72/emoji_u1f34c.png")
        target = env / "cache" / "noto-emoji-72" / "emoji_u1f34c.png"
        target.parent.mkdir(parents=True)
        target.write_bytes(data)
        monkeypatch.delenv("D2LCV_MIRROR")
        (im,) = emoji("banana")
        assert im.size == (72, 72) and im.mode == "RGBA"
