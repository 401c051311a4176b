"""Issue #12, items 1-3: extract() against crafted archives (link chains, the CVE-2025-4517
long-path attack, no tar data filter), concurrent extraction into a shared cache, and
decompression bombs.

Names are read from ``d2lcv.data`` inside the tests, so the file also runs (and fails test
by test) against the code before the fix.
"""

from __future__ import annotations

import io
import multiprocessing
import os
import random
import stat
import tarfile
import threading
import zipfile
from pathlib import Path

import pytest

from d2lcv import data


def _add(tf: tarfile.TarFile, name: str, *, sym: str | None = None, hard: str | None = None,
         content: bytes | None = None, folder: bool = False) -> None:
    info = tarfile.TarInfo(name)
    if folder:
        info.type, info.mode = tarfile.DIRTYPE, 0o777
    elif sym is not None:
        info.type, info.linkname = tarfile.SYMTYPE, sym
    elif hard is not None:
        info.type, info.linkname = tarfile.LNKTYPE, hard
    if content is None:
        tf.addfile(info)
    else:
        info.size = len(content)
        tf.addfile(info, io.BytesIO(content))


def _m(**member) -> dict:
    return member


def _tar(path: Path, members: list[dict], mode: str = "w") -> Path:
    with tarfile.open(path, mode) as tf:
        for m in members:
            _add(tf, **m)
    return path


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.fixture(params=["with data_filter", "without data_filter"])
def filter_state(request, monkeypatch):
    """Run a test with Python's tar ``data_filter`` present and with it absent (before 3.10.12)."""
    if request.param == "without data_filter":
        monkeypatch.delattr(tarfile, "data_filter", raising=False)
    return request.param


@pytest.fixture
def victim(tmp_path):
    """A file next to the target folder that no extraction may touch."""
    flag = tmp_path / "flag"
    flag.write_text("original")
    return flag


def _untouched(tmp_path: Path, victim: Path, archive: Path) -> None:
    assert victim.read_text() == "original"
    assert _names(tmp_path) == sorted([archive.name, victim.name])  # no target, no temp, no lock
    assert not (tmp_path.parent / "evil").exists()


# ---------------------------------------------------------------------------- 1. links


class TestLinks:
    def test_cve_2025_4517_long_path_attack(self, tmp_path, victim, filter_state):
        # CPython's test_realpath_limit_attack: symlinks whose expansion overflows PATH_MAX, so
        # that os.path.realpath (and with it the data filter) stops following them; then a link
        # "escape" -> <long link>/.. leaves the target, a hard link through it reaches ../flag
        # and a file written onto that hard link overwrites it. Every name passes a string check.
        dest_len = len(str(tmp_path)) + 1 + len(".out.12345678.partial") + 1
        steps = "abcdefghijklmnop"
        comp = "d" * min(254, (os.pathconf(tmp_path, "PC_PATH_MAX") - dest_len) // (len(steps) + 1))
        members, path = [], ""
        for s in steps:
            members += [_m(name=os.path.join(path, comp), folder=True), _m(name=os.path.join(path, s), sym=comp)]
            path = os.path.join(path, comp)
        link = os.path.join(*steps, "l" * 254)
        members += [
            _m(name=link, sym=os.path.join(*[".."] * len(steps))),
            _m(name="escape", sym=os.path.join(link, "..")),
            _m(name="flaglink", hard="escape/flag"),
            _m(name="flaglink", content=b"overwrite"),
            _m(name="escape/newfile", content=b"new"),
        ]
        archive = _tar(tmp_path / "a.tar", members)
        with pytest.raises(data.UnsafeArchiveError, match="'flaglink' appears twice|points outside|runs through"):
            data.extract(archive, tmp_path / "out")
        _untouched(tmp_path, victim, archive)

    def test_cve_2025_4517_escape_link_alone(self, tmp_path, victim, filter_state):
        # the same chain without the hard-link trick: member names that run through links are
        # refused (an archive that needs them is no dataset archive)
        steps = "abcd"
        comp = "d" * 200
        members, path = [], ""
        for s in steps:
            members += [_m(name=os.path.join(path, comp), folder=True), _m(name=os.path.join(path, s), sym=comp)]
            path = os.path.join(path, comp)
        link = os.path.join(*steps, "l" * 200)
        members += [_m(name=link, sym="../../../.."), _m(name="escape", sym=link + "/..")]
        archive = _tar(tmp_path / "a.tar", members)
        with pytest.raises(data.UnsafeArchiveError, match=r"member 'a/b/c/d/l+' runs through the link 'a'"):
            data.extract(archive, tmp_path / "out")
        _untouched(tmp_path, victim, archive)

    @pytest.mark.parametrize("mode", ["w", "w:gz"])
    def test_chain_escape_and_write_through_it(self, tmp_path, victim, filter_state, mode):
        # "d/up" -> ".." is the target itself; "e" -> "d/up/.." reads as "d" but is the
        # target's parent; "e/evil" would then be written next to the target
        archive = _tar(tmp_path / "a.tar", [
            _m(name="d", folder=True), _m(name="d/up", sym=".."),
            _m(name="e", sym="d/up/.."), _m(name="e/evil", content=b"x"),
        ], mode)
        with pytest.raises(data.UnsafeArchiveError, match=r"member 'e/evil' runs through the link 'e'"):
            data.extract(archive, tmp_path / "out")
        _untouched(tmp_path, victim, archive)
        assert not (tmp_path / "evil").exists()

    def test_hard_link_through_a_chain(self, tmp_path, victim, filter_state):
        archive = _tar(tmp_path / "a.tar", [
            _m(name="d/up", sym=".."), _m(name="e", sym="d/up/.."), _m(name="h", hard="e/flag"),
        ])
        with pytest.raises(data.UnsafeArchiveError, match=r"points outside the target folder"):
            data.extract(archive, tmp_path / "out")
        _untouched(tmp_path, victim, archive)

    def test_member_running_through_a_link_is_refused(self, tmp_path, filter_state):
        archive = _tar(tmp_path / "a.tar", [
            _m(name="sub", folder=True), _m(name="lnk", sym="sub"), _m(name="lnk/file.txt", content=b"x"),
        ])
        with pytest.raises(data.UnsafeArchiveError, match=r"member 'lnk/file\.txt' runs through the link 'lnk'"):
            data.extract(archive, tmp_path / "out")

    def test_inside_links_become_copies(self, tmp_path, filter_state):
        # chains of links that stay inside are fine, but the tree holds no link afterwards
        archive = _tar(tmp_path / "a.tar.gz", [
            _m(name="top/a.txt", content=b"a"), _m(name="top/s1", sym="s2"), _m(name="top/s2", sym="sub/../a.txt"),
            _m(name="top/sub", folder=True), _m(name="top/sub/h", hard="top/s1"),
        ], "w:gz")
        out = data.extract(archive, tmp_path / "out")
        for name in ("a.txt", "s1", "s2", "sub/h"):
            assert (out / "top" / name).read_bytes() == b"a"
        assert not [p for p in out.rglob("*") if p.is_symlink()]

    @pytest.mark.parametrize("members, match", [
        ([_m(name="a", sym="b"), _m(name="b", sym="a")], "is a loop of links"),
        ([_m(name="a", sym="missing")], "points to nothing in the archive"),
        ([_m(name="sub/x", content=b""), _m(name="a", sym="sub")], "points to a folder"),
    ], ids=["loop", "dangling", "folder"])
    def test_unsupported_links(self, tmp_path, members, match):
        archive = _tar(tmp_path / "a.tar", members)
        with pytest.raises(data.ArchiveError, match=match):
            data.extract(archive, tmp_path / "out")
        assert _names(tmp_path) == ["a.tar"]

    def test_zip_symlink_chain(self, tmp_path):
        archive = tmp_path / "a.zip"
        with zipfile.ZipFile(archive, "w") as zf:
            for name, target in (("d/up", ".."), ("e", "d/up/..")):
                info = zipfile.ZipInfo(name)
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
                zf.writestr(info, target)
        with pytest.raises(data.UnsafeArchiveError, match="link 'e' -> 'd/up/..' points outside"):
            data.extract(archive, tmp_path / "out")


# ---------------------------------------------------------------------------- 2. shared cache


def _content(i: int) -> bytes:
    return random.Random(i).randbytes(2048)


def _many_files(path: Path, n: int = 300) -> Path:
    return _tar(path, [_m(name=f"top/f{i:03d}.bin", content=_content(i)) for i in range(n)], "w:gz")


def _complete(out: Path, n: int = 300) -> bool:
    files = sorted((out / "top").iterdir())
    return len(files) == n and all(f.read_bytes() == _content(i) for i, f in enumerate(files))


def _extract_in_child(archive: str, target: str, queue) -> None:
    try:
        queue.put(str(data.extract(archive, target)))
    except Exception as err:  # noqa: BLE001 - reported to the parent
        queue.put(f"{type(err).__name__}: {err}")


class TestSharedCache:
    @pytest.mark.parametrize("lock", ["locked", "no lock"])
    def test_concurrent_threads(self, tmp_path, monkeypatch, lock):
        if lock == "no lock":  # as on a file system without locks: the atomic rename alone
            monkeypatch.setattr(data.archive, "fcntl", None)
        archive = _many_files(tmp_path / "a.tar.gz")
        barrier, results = threading.Barrier(4), [None] * 4

        def work(i):
            barrier.wait()
            try:
                results[i] = data.extract(archive, tmp_path / "out")
            except Exception as err:  # noqa: BLE001 - compared below
                results[i] = f"{type(err).__name__}: {err}"

        threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert results == [tmp_path / "out"] * 4
        assert _complete(tmp_path / "out")
        assert _names(tmp_path) == ["a.tar.gz", "out"]  # no partial folder left

    def test_concurrent_processes(self, tmp_path):
        # as DDP ranks or DataLoader workers would (fork: the children share nothing but files)
        archive = _many_files(tmp_path / "a.tar.gz")
        ctx = multiprocessing.get_context("fork")
        queue = ctx.Queue()
        procs = [ctx.Process(target=_extract_in_child, args=(str(archive), str(tmp_path / "out"), queue))
                 for _ in range(3)]
        for p in procs:
            p.start()
        results = [queue.get(timeout=120) for _ in procs]
        for p in procs:
            p.join(timeout=60)
        assert results == [str(tmp_path / "out")] * 3
        assert _complete(tmp_path / "out")
        assert _names(tmp_path) == ["a.tar.gz", "out"]

    def test_empty_folder_is_not_a_result(self, tmp_path):
        archive = _many_files(tmp_path / "a.tar.gz", 3)
        (tmp_path / "out").mkdir()
        assert _complete(data.extract(archive, tmp_path / "out"), 3)

    def test_file_at_target_is_an_error(self, tmp_path):
        archive = _many_files(tmp_path / "a.tar.gz", 3)
        (tmp_path / "out").write_text("not a folder")
        with pytest.raises(data.ArchiveError, match=r"out exists and is not a folder; remove it"):
            data.extract(archive, tmp_path / "out")

    def test_marker_written_and_trusted(self, tmp_path):
        archive = _many_files(tmp_path / "a.tar.gz", 3)
        out = data.extract(archive, tmp_path / "out")
        assert (out / data.archive.COMPLETE_MARKER).is_file()
        archive.unlink()  # a marked folder is complete: the archive is not even looked at
        assert data.extract(archive, tmp_path / "out") == out

    def test_readable_folders(self, tmp_path):
        old = os.umask(0o022)
        try:
            out = data.extract(_many_files(tmp_path / "a.tar.gz", 3), tmp_path / "out")
        finally:
            os.umask(old)
        assert stat.S_IMODE(out.stat().st_mode) == 0o755
        assert stat.S_IMODE((out / "top").stat().st_mode) == 0o755
        assert stat.S_IMODE((out / "top" / "f000.bin").stat().st_mode) == 0o644

    def test_crash_leftovers_are_removed(self, tmp_path):
        archive = _many_files(tmp_path / "a.tar.gz", 3)
        stale = tmp_path / ".out.4242.0123abcd.partial"
        stale.mkdir()
        (stale / "half").write_text("x")
        other = tmp_path / ".out2.4242.0123abcd.partial"  # another target's: kept
        other.mkdir()
        assert _complete(data.extract(archive, tmp_path / "out"), 3)
        assert _names(tmp_path) == [other.name, "a.tar.gz", "out"]

    def test_earlier_extraction_is_adopted(self, tmp_path, recwarn):
        # a folder extracted by an earlier version (no marker) that matches the archive
        archive = _many_files(tmp_path / "a.tar.gz", 3)
        with tarfile.open(archive) as tf:
            tf.extractall(tmp_path / "out", filter="data")
        assert data.extract(archive, tmp_path / "out") == tmp_path / "out"
        assert (tmp_path / "out" / data.archive.COMPLETE_MARKER).is_file()
        assert not recwarn.list

    def test_incomplete_folder_is_kept_with_a_warning(self, tmp_path):
        archive = _many_files(tmp_path / "a.tar.gz", 3)
        (tmp_path / "out" / "top").mkdir(parents=True)
        (tmp_path / "out" / "top" / "f000.bin").write_bytes(b"short")
        with pytest.warns(RuntimeWarning, match=r"not a complete extraction .*top/f000\.bin, top/f001\.bin"):
            data.extract(archive, tmp_path / "out")
        assert _names(tmp_path / "out") == ["top"]


# ---------------------------------------------------------------------------- 3. size


def _zeros_zip(path: Path, size: int) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr("zeros.bin", bytes(size))
    return path


class TestSize:
    @pytest.mark.parametrize("kind", ["zip", "tar.gz"])
    def test_bomb_is_refused(self, tmp_path, kind):
        size = 10_000_000
        if kind == "zip":
            archive = _zeros_zip(tmp_path / "bomb.zip", size)
        else:
            archive = _tar(tmp_path / "bomb.tar.gz", [_m(name="zeros.bin", content=bytes(size))], "w:gz")
        assert size / archive.stat().st_size > 300  # about 1000:1
        with pytest.raises(data.ArchiveError, match=r"would write 10,000,512 bytes in 1 members, .* times the "
                           r"archive's .* bytes; the limit is .* bytes \(by default 100 times the archive\)") as info:
            data.extract(archive, tmp_path / "out")
        assert isinstance(info.value, data.ArchiveTooLargeError)
        assert _names(tmp_path) == [archive.name]
        out = data.extract(archive, tmp_path / "out", max_size=20_000_000)  # what a registry entry allows
        assert (out / "zeros.bin").stat().st_size == size

    def test_explicit_limit(self, tmp_path):
        archive = _tar(tmp_path / "a.tar", [_m(name="f", content=b"x" * 1000)])
        with pytest.raises(data.ArchiveError, match=r"would write 1,512 bytes .* the limit is 1,000 bytes \(max_size\)"):
            data.extract(archive, tmp_path / "out", max_size=1000)

    def test_links_count_as_copies(self, tmp_path):
        # 200 hard links to one 100 kB file: written as copies, so counted as 20 MB
        members = [_m(name="f", content=os.urandom(100_000))] + [_m(name=f"h{i}", hard="f") for i in range(200)]
        archive = _tar(tmp_path / "a.tar.gz", members, "w:gz")
        with pytest.raises(data.ArchiveError, match=r"would write 20,\d{3},\d{3} bytes in 201 members"):
            data.extract(archive, tmp_path / "out")

    @pytest.mark.parametrize("bad", [-1, 1.5, True, "1"])
    def test_bad_max_size(self, tmp_path, bad):
        with pytest.raises(ValueError, match="max_size must be a number of bytes >= 0 or None, got"):
            data.extract(tmp_path / "a.zip", tmp_path / "out", max_size=bad)

    def test_registry_entries_carry_a_limit(self):
        assert data.dataset_info("hotdog").max_extracted_size is None  # the default bound
        info = data.DatasetInfo("toy", "", "CC0", "x", "", max_extracted_size=5 << 30)
        assert info.max_extracted_size == 5 << 30
