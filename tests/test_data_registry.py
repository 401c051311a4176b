"""Tests for the dataset registry: every entry is complete and well-formed, and (when
``$D2LCV_MIRROR`` is set) every mirror entry matches the real mirror's files."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from d2lcv.data import REGISTRY, DatasetInfo, check_file, dataset_info, parse_checksum
from d2lcv.data.registry import _validate_registry

MIRROR = os.environ.get("D2LCV_MIRROR", "").strip()
needs_mirror = pytest.mark.skipif(not MIRROR, reason="D2LCV_MIRROR is not set (offline dataset mirror)")
FULL = {"sha256": 64, "sha1": 40, "md5": 32}


class TestEntries:
    def test_validator_finds_nothing(self):
        assert _validate_registry(REGISTRY) == []

    def test_validator_catches_problems(self):
        bad = DatasetInfo(name="bad", description="", licence=" ", citation="x", homepage="")
        assert _validate_registry({"bad": bad}) == [
            "bad: neither a source nor a mirror file",
            "bad: licence or citation missing",
        ]

    @pytest.mark.parametrize("name", sorted(REGISTRY))
    def test_entry(self, name):
        info = REGISTRY[name]
        assert info.name == name
        assert info.sources or info.mirror
        assert info.licence.strip() and info.citation.strip() and info.description.strip()
        for checksum in [r.checksum for r in info.sources] + [m.checksum for m in info.mirror]:
            algo, digest = parse_checksum(checksum)
            assert len(digest) == FULL[algo], checksum
        for r in info.sources:
            assert r.url is None or r.url.startswith(("https://", "http://"))
            if r.url and "raw.githubusercontent.com" in r.url:  # pinned to a commit, not a branch
                assert re.search(r"/[0-9a-f]{40}/", r.url), r.url
            assert r.size is None or r.size > 0
        for m in info.mirror:
            assert m.checksum.startswith("sha256:") and not m.path.startswith("/")

    def test_published_checksums(self):
        # the values upstream publishes (torchvision / d2l's DATA_HUB)
        cifar = REGISTRY["cifar10"].sources[0]
        assert (cifar.url, cifar.checksum) == (
            "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz", "md5:c58f30108f718f92721af3b95e74349a")
        d2l = "http://d2l-data.s3-accelerate.amazonaws.com/"
        assert REGISTRY["timemachine"].sources[0].checksum == "sha1:090b5e7e70c295757f55df93cb0a180b9691891a"
        assert REGISTRY["banana-detection"].sources[0].url == d2l + "banana-detection.zip"
        assert REGISTRY["banana-detection"].sources[0].checksum == "sha1:5de26c8fce5ccdea9f91267273464dc968d20d72"
        assert REGISTRY["hotdog"].sources[0].checksum == "sha1:fba480ffa8aa7e0febbb511d181409f899b9baa5"
        assert REGISTRY["hotdog"].mirror == () and REGISTRY["banana-detection"].mirror == ()
        assert REGISTRY["d2l-img/cat1.jpg"].sources[0].url == (
            "https://raw.githubusercontent.com/d2l-ai/d2l-en/23d7a5aecceee57d1292c56e90cce307f183bb0a/img/cat1.jpg")

    def test_collections(self):
        names = set(REGISTRY)
        photos = {"cat1.jpg", "catdog.jpg", "rainier.jpg", "autumn-oak.jpg", "banana.jpg"}
        assert {n for n in names if n.startswith("d2l-img/")} == {f"d2l-img/{p}" for p in photos}
        assert len([n for n in names if n.startswith("style-transfer/paintings/")]) == 7
        assert len([n for n in names if n.startswith("style-transfer/content/")]) == 4
        assert "noto-emoji-72/1f34c" in names and "noto-emoji-72" in names

    def test_same_bytes_same_sha256(self):
        # where the mirror holds the official bytes, both checksums are the same sha256
        for name in REGISTRY:
            if name.startswith(("d2l-img/", "style-transfer/")):
                info = REGISTRY[name]
                assert info.sources[0].checksum == info.mirror[0].checksum

    def test_dataset_info(self):
        assert dataset_info("cifar10") is REGISTRY["cifar10"]
        with pytest.raises(ValueError, match=r"unknown dataset 'cifar100'; known: .*d2l-img/\.\.\."):
            dataset_info("cifar100")

    def test_frozen(self):
        with pytest.raises(AttributeError):
            REGISTRY["cifar10"].name = "x"
        with pytest.raises(TypeError):
            REGISTRY["x"] = REGISTRY["cifar10"]


def _sha256sums() -> dict[str, str]:
    """``{relative path: sha256}`` from every ``SHA256SUMS`` in the mirror."""
    out = {}
    for sums in Path(MIRROR).glob("*/SHA256SUMS"):
        for line in sums.read_text().splitlines():
            digest, name = line.split(maxsplit=1)
            out[f"{sums.parent.name}/{name.lstrip('*')}"] = digest
    return out


@needs_mirror
class TestRealMirror:
    def test_entries_match_sha256sums(self):
        sums = _sha256sums()
        for info in REGISTRY.values():
            for m in info.mirror:
                assert m.path in sums, f"{info.name}: {m.path} is not in the mirror's SHA256SUMS"
                assert m.checksum == f"sha256:{sums[m.path]}", info.name

    @pytest.mark.parametrize("name", sorted(n for n, i in REGISTRY.items() if i.mirror))
    def test_files_verify(self, name):
        for m in REGISTRY[name].mirror:
            assert check_file(Path(MIRROR) / m.path, m.checksum, m.size) is None

    def test_emoji_hashes_match_filelist(self):
        from d2lcv.data.registry import EMOJI_SHA256

        lines = (Path(MIRROR) / "emoji-noto-72" / "FILELIST.sha256").read_text().splitlines()
        table = {name.rsplit("emoji_u", 1)[1][:-4]: d for d, name in (l.split() for l in lines if not l.startswith("#"))}
        for cp, (digest, _) in EMOJI_SHA256.items():
            assert table[cp] == digest, cp
