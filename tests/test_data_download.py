"""Tests for d2lcv.data.cache (download), d2lcv.data.archive and fetch(): checksums, downloads (against a local HTTP
server and file:// URLs, never the internet), cache/mirror lookup, safe extraction."""

from __future__ import annotations

import http.server
import io
import os
import stat
import tarfile
import threading
import time
import zipfile
from pathlib import Path

import pytest

from d2lcv.data import (
    ArchiveError,
    ChecksumError,
    DatasetInfo,
    DatasetNotFoundError,
    DownloadError,
    MirrorFile,
    Resource,
    UnsafeArchiveError,
    cache_dir,
    check_file,
    download,
    downloads_enabled,
    extract,
    fetch,
    file_checksum,
    mirror_dir,
    parse_checksum,
    read_member,
)

PAYLOAD = b"0123456789" * 1000  # 10,000 bytes
# sha256/sha1/md5 of b"abc" (FIPS 180-2 and RFC 1321 test vectors)
ABC_SHA256 = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
ABC_SHA1 = "a9993e364706816aba3e25717850c26c9cd0d89d"
ABC_MD5 = "900150983cd24fb0d6963f7d28e17f72"


@pytest.fixture
def env(tmp_path, monkeypatch):
    """An empty cache, no mirror, downloads allowed."""
    monkeypatch.setenv("D2LCV_DATA", str(tmp_path / "cache"))
    monkeypatch.delenv("D2LCV_MIRROR", raising=False)
    monkeypatch.delenv("D2LCV_OFFLINE", raising=False)
    return tmp_path


class _Handler(http.server.BaseHTTPRequestHandler):
    """/ok: the payload; /flaky: 503 twice, then the payload; /short: a body 10 bytes
    shorter than its Content-Length; /missing: 404."""

    def do_GET(self):  # noqa: N802
        server = self.server
        server.hits[self.path] = server.hits.get(self.path, 0) + 1
        if self.path == "/flaky" and server.hits[self.path] <= 2:
            self.send_error(503)
            return
        if self.path not in ("/ok", "/flaky", "/short"):
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(PAYLOAD)))
        self.end_headers()
        self.wfile.write(PAYLOAD[:-10] if self.path == "/short" else PAYLOAD)
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, *args):  # keep test output quiet
        pass


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.hits = {}
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def sha256(data: bytes) -> str:
    import hashlib

    return "sha256:" + hashlib.sha256(data).hexdigest()


class TestChecksums:
    def test_parse(self):
        assert parse_checksum(f"SHA256:{ABC_SHA256.upper()}") == ("sha256", ABC_SHA256)
        assert parse_checksum("sha256:f37072fd") == ("sha256", "f37072fd")  # a prefix

    @pytest.mark.parametrize(
        "bad, match",
        [("abc", "must look like"), ("crc32:deadbeef", "algorithm must be one of"),
         ("md5:xyz12345", "md5 digest must be 8 to 32 hex digits"), ("sha1:" + "a" * 41, "8 to 40")],
    )
    def test_parse_bad(self, bad, match):
        with pytest.raises(ValueError, match=match):
            parse_checksum(bad)

    def test_known_vectors(self, tmp_path):
        p = tmp_path / "abc"
        p.write_bytes(b"abc")
        assert file_checksum(p) == f"sha256:{ABC_SHA256}"
        assert file_checksum(p, "sha1") == f"sha1:{ABC_SHA1}"
        assert file_checksum(p, "md5") == f"md5:{ABC_MD5}"
        for c in (f"sha256:{ABC_SHA256}", f"sha1:{ABC_SHA1}", f"md5:{ABC_MD5}", f"sha256:{ABC_SHA256[:8]}"):
            assert check_file(p, c, size=3) is None

    def test_check_file_reasons(self, tmp_path):
        p = tmp_path / "abc"
        assert check_file(p, f"sha256:{ABC_SHA256}") == "missing"
        p.write_bytes(b"abc")
        assert check_file(p, f"sha256:{ABC_SHA256}", size=4) == "size 3 bytes, expected 4"
        reason = check_file(p, "md5:" + "0" * 32)
        assert reason == f"checksum mismatch: expected md5:{'0' * 32}, got md5:{ABC_MD5}"

    def test_check_file_sees_changes(self, tmp_path):
        # verification results are memoised by (size, mtime): a rewritten file is re-hashed
        p = tmp_path / "f"
        p.write_bytes(b"abc")
        assert check_file(p, f"sha256:{ABC_SHA256}") is None
        p.write_bytes(b"abd")
        os.utime(p, ns=(time.time_ns(), time.time_ns() + 10**9))
        assert check_file(p, f"sha256:{ABC_SHA256}").startswith("checksum mismatch")


class TestLocations:
    def test_env_vars(self, tmp_path, monkeypatch):
        monkeypatch.setenv("D2LCV_DATA", str(tmp_path / "c"))
        monkeypatch.setenv("D2LCV_MIRROR", str(tmp_path / "m"))
        assert cache_dir() == tmp_path / "c"
        assert mirror_dir() == tmp_path / "m"
        monkeypatch.setenv("D2LCV_MIRROR", "")
        assert mirror_dir() is None

    def test_default_cache(self, tmp_path, monkeypatch):
        import d2lcv

        monkeypatch.delenv("D2LCV_DATA", raising=False)
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
        repo = Path(d2lcv.__file__).resolve().parents[1]
        expected = repo / "data" if (repo / "_toc.yml").exists() else tmp_path / "d2lcv"
        assert cache_dir() == expected

    @pytest.mark.parametrize("value, enabled", [("", True), ("0", True), ("1", False), ("true", False), ("YES", False)])
    def test_offline(self, monkeypatch, value, enabled):
        monkeypatch.setenv("D2LCV_OFFLINE", value)
        assert downloads_enabled() is enabled
        assert downloads_enabled(True) is True and downloads_enabled(False) is False


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


class TestDownload:
    def test_ok(self, tmp_path, server):
        dest = tmp_path / "d" / "file.bin"
        assert download(f"{server.url}/ok", dest, checksum=sha256(PAYLOAD), size=len(PAYLOAD), progress=False) == dest
        assert dest.read_bytes() == PAYLOAD
        assert _leftovers(dest.parent) == ["file.bin"]  # no temp files
        assert stat.S_IMODE(dest.stat().st_mode) == 0o644

    def test_checksum_mismatch_deletes(self, tmp_path, server):
        dest = tmp_path / "file.bin"
        bad = "sha256:" + "0" * 64
        with pytest.raises(ChecksumError, match=rf"expected {bad}, got {sha256(PAYLOAD)}; the downloaded file was deleted"):
            download(f"{server.url}/ok", dest, checksum=bad, progress=False, backoff=0)
        assert _leftovers(tmp_path) == []
        assert server.hits["/ok"] == 1  # a wrong checksum is not retried

    def test_truncated_http(self, tmp_path, server):
        dest = tmp_path / "file.bin"
        with pytest.raises(DownloadError, match=r"/short .*(truncated|IncompleteRead)"):
            download(f"{server.url}/short", dest, retries=1, backoff=0, progress=False)
        assert _leftovers(tmp_path) == []
        assert server.hits["/short"] == 2

    def test_truncated_file_url(self, tmp_path):
        src = tmp_path / "src.bin"
        src.write_bytes(PAYLOAD)
        out = tmp_path / "out"
        with pytest.raises(DownloadError, match=f"truncated: got {len(PAYLOAD)} bytes, expected size is {len(PAYLOAD) + 1}"):
            download(src.as_uri(), out / "f", size=len(PAYLOAD) + 1, retries=0, progress=False)
        assert _leftovers(out) == []

    def test_retries_then_succeeds(self, tmp_path, server):
        dest = tmp_path / "file.bin"
        download(f"{server.url}/flaky", dest, checksum=sha256(PAYLOAD), retries=2, backoff=0.01, progress=False)
        assert server.hits["/flaky"] == 3
        assert dest.read_bytes() == PAYLOAD

    def test_retries_exhausted(self, tmp_path, server):
        with pytest.raises(DownloadError, match=r"attempt 1: HTTPError: HTTP Error 503.*attempt 2: HTTPError"):
            download(f"{server.url}/flaky", tmp_path / "f", retries=1, backoff=0, progress=False)
        assert _leftovers(tmp_path) == []

    def test_404_not_retried(self, tmp_path, server):
        with pytest.raises(DownloadError, match="HTTP Error 404"):
            download(f"{server.url}/missing", tmp_path / "f", retries=3, backoff=0, progress=False)
        assert server.hits["/missing"] == 1

    def test_bad_arguments(self, tmp_path):
        with pytest.raises(ValueError, match="retries must be >= 0, got -1"):
            download("file:///x", tmp_path / "f", retries=-1)


def _info(url: str | None, data: bytes = PAYLOAD, mirror: str | None = None, size: int | None = None) -> DatasetInfo:
    return DatasetInfo(
        name="toy", description="toy", licence="CC0", citation="nobody", homepage="",
        sources=(Resource("toy.bin", url, sha256(data), size),),
        mirror=(MirrorFile(mirror, sha256(data)),) if mirror else (),
    )


class TestFetch:
    def test_offline_nothing_cached(self, env, monkeypatch):
        monkeypatch.setenv("D2LCV_OFFLINE", "1")
        target = env / "cache" / "toy" / "toy.bin"

        def no_download(*args, **kwargs):
            raise AssertionError("offline, fetch must not try to download")

        monkeypatch.setattr("d2lcv.data.registry.download", no_download)
        with pytest.raises(DatasetNotFoundError) as info:
            fetch(_info("https://example.invalid/toy.bin", mirror="toy/toy.bin"))
        msg = str(info.value)
        assert "dataset 'toy' is not available" in msg
        assert "https://example.invalid/toy.bin: not tried ($D2LCV_OFFLINE is set)" in msg
        assert "$D2LCV_MIRROR is not set (would look for toy/toy.bin)" in msg
        assert f"put a copy of one of these files at {target}" in msg
        assert not target.parent.exists()

    def test_failed_download_is_reported(self, env, server):
        with pytest.raises(DatasetNotFoundError, match=rf"download {server.url}/missing: .*HTTP Error 404"):
            fetch(_info(f"{server.url}/missing"), progress=False, backoff=0)

    def test_download_then_cache_hit(self, env, server):
        path = fetch(_info(f"{server.url}/ok", size=len(PAYLOAD)), progress=False)
        assert path == env / "cache" / "toy" / "toy.bin" and path.read_bytes() == PAYLOAD
        assert fetch(_info(f"{server.url}/ok")) == path
        assert server.hits["/ok"] == 1

    def test_cache_hit_no_download(self, env, server):
        target = env / "cache" / "toy" / "toy.bin"
        target.parent.mkdir(parents=True)
        target.write_bytes(PAYLOAD)
        assert fetch(_info(f"{server.url}/ok")) == target
        assert server.hits == {}

    def test_mirror_hit_no_download(self, env, server, monkeypatch):
        mirror = env / "mirror"
        (mirror / "toy").mkdir(parents=True)
        (mirror / "toy" / "toy.bin").write_bytes(PAYLOAD)
        os.chmod(mirror / "toy", 0o555)  # read-only, like the real mirror
        monkeypatch.setenv("D2LCV_MIRROR", str(mirror))
        assert fetch(_info(f"{server.url}/ok", mirror="toy/toy.bin")) == mirror / "toy" / "toy.bin"
        assert server.hits == {}
        assert not (env / "cache").exists()  # nothing copied
        os.chmod(mirror / "toy", 0o755)

    def test_bad_mirror_falls_through_to_download(self, env, server, monkeypatch):
        (env / "mirror").mkdir()
        (env / "mirror" / "toy.bin").write_bytes(b"not it")
        monkeypatch.setenv("D2LCV_MIRROR", str(env / "mirror"))
        path = fetch(_info(f"{server.url}/ok", mirror="toy.bin"), progress=False)
        assert path == env / "cache" / "toy" / "toy.bin"
        assert (env / "mirror" / "toy.bin").read_bytes() == b"not it"

    def test_bad_cache_file_is_reported(self, env, monkeypatch):
        monkeypatch.setenv("D2LCV_OFFLINE", "1")
        target = env / "cache" / "toy" / "toy.bin"
        target.parent.mkdir(parents=True)
        target.write_bytes(b"abc")
        with pytest.raises(DatasetNotFoundError, match=rf"cache {target}: checksum mismatch: expected {sha256(PAYLOAD)}, got sha256:{ABC_SHA256}"):
            fetch(_info("https://example.invalid/toy.bin"))

    def test_download_false_parameter(self, env):
        with pytest.raises(DatasetNotFoundError, match=r"not tried \(download=False\)"):
            fetch(_info("https://example.invalid/toy.bin"), download=False)

    def test_unknown_name(self):
        with pytest.raises(ValueError, match="unknown dataset 'nope'; known: .*cifar10"):
            fetch("nope")


# ---------------------------------------------------------------------------- archives


def _zip(path: Path, members: dict[str, bytes], symlinks: dict[str, str] | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name), data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
    return path


def _tar(path: Path, members: list[tarfile.TarInfo | tuple[str, bytes]]) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for m in members:
            if isinstance(m, tarfile.TarInfo):
                tf.addfile(m)
            else:
                info = tarfile.TarInfo(m[0])
                info.size = len(m[1])
                tf.addfile(info, io.BytesIO(m[1]))
    return path


def _link(name: str, target: str, kind: bytes) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


class TestExtract:
    def test_zip(self, tmp_path):
        archive = _zip(tmp_path / "a.zip", {"top/a.txt": b"a", "top/sub/b.txt": b"b"})
        out = extract(archive, tmp_path / "out")
        assert (out / "top" / "sub" / "b.txt").read_bytes() == b"b"
        assert _leftovers(tmp_path) == ["a.zip", "out"]
        assert read_member(archive, "top/a.txt") == b"a"

    def test_tar_with_inside_links(self, tmp_path):
        archive = _tar(tmp_path / "a.tar.gz", [
            ("top/a.txt", b"a"), _link("top/s", "a.txt", tarfile.SYMTYPE), _link("top/h", "top/a.txt", tarfile.LNKTYPE),
        ])
        out = extract(archive, tmp_path / "out")
        assert (out / "top" / "s").read_bytes() == b"a" and (out / "top" / "h").read_bytes() == b"a"

    def test_existing_target_is_kept(self, tmp_path):
        (tmp_path / "out").mkdir()
        (tmp_path / "out" / "keep").write_text("x")
        archive = _zip(tmp_path / "a.zip", {"a.txt": b"a"})
        assert extract(archive, tmp_path / "out") == tmp_path / "out"
        assert _leftovers(tmp_path / "out") == ["keep"]

    @pytest.mark.parametrize(
        "make, match",
        [
            (lambda p: _zip(p / "a.zip", {"ok.txt": b"", "../evil": b"x"}), r"member '\.\./evil' contains '\.\.'"),
            (lambda p: _zip(p / "a.zip", {"/abs/evil": b"x"}), "member '/abs/evil' has an absolute path"),
            (lambda p: _zip(p / "a.zip", {"ok": b""}, {"link": "../../outside"}), r"link 'link' -> '\.\./\.\./outside' points outside"),
            (lambda p: _tar(p / "a.tgz", [("ok.txt", b""), ("a/../../evil", b"x")]), "contains '..'"),
            (lambda p: _tar(p / "a.tgz", [("/etc/evil", b"x")]), "member '/etc/evil' has an absolute path"),
            (lambda p: _tar(p / "a.tgz", [_link("top/link", "../../etc", tarfile.SYMTYPE)]), "points outside"),
            (lambda p: _tar(p / "a.tgz", [_link("link", "/etc/passwd", tarfile.SYMTYPE)]), "points outside"),
            (lambda p: _tar(p / "a.tgz", [_link("hard", "../x", tarfile.LNKTYPE)]), "points outside"),
            (lambda p: _tar(p / "a.tgz", [_link("dev", "", tarfile.CHRTYPE)]), "is a device or fifo"),
        ],
        ids=["zip-dotdot", "zip-abs", "zip-symlink", "tar-dotdot", "tar-abs", "tar-symlink", "tar-symlink-abs", "tar-hardlink", "tar-device"],
    )
    def test_unsafe(self, tmp_path, make, match):
        archive = make(tmp_path)
        with pytest.raises(UnsafeArchiveError, match=match):
            extract(archive, tmp_path / "out")
        assert _leftovers(tmp_path) == [archive.name]  # no target, no temp folder
        assert not (tmp_path.parent / "evil").exists()

    def test_corrupt_zip(self, tmp_path):
        archive = _zip(tmp_path / "a.zip", {"a.txt": b"hello world" * 100, "b.txt": b"b"})
        raw = bytearray(archive.read_bytes())
        raw[raw.index(b"hello world") + 5] ^= 0xFF  # flip a byte of the stored data: bad CRC
        archive.write_bytes(bytes(raw))
        with pytest.raises(ArchiveError, match=r"could not extract .*a\.zip: BadZipFile: Bad CRC-32"):
            extract(archive, tmp_path / "out")
        assert _leftovers(tmp_path) == ["a.zip"]

    def test_truncated_tar(self, tmp_path):
        archive = _tar(tmp_path / "a.tar.gz", [(f"f{i}", os.urandom(4096)) for i in range(8)])
        archive.write_bytes(archive.read_bytes()[:-5000])
        with pytest.raises(ArchiveError, match=r"could not extract .*a\.tar\.gz"):
            extract(archive, tmp_path / "out")
        assert _leftovers(tmp_path) == ["a.tar.gz"]

    def test_not_an_archive(self, tmp_path):
        (tmp_path / "a.zip").write_bytes(b"just text")
        with pytest.raises(ArchiveError, match="is not a zip or tar archive"):
            extract(tmp_path / "a.zip", tmp_path / "out")
        with pytest.raises(FileNotFoundError, match="does not exist"):
            extract(tmp_path / "nope.zip", tmp_path / "out")
