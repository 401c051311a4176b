"""Extraction of dataset archives (zip and tar) into a cache that processes share.

:func:`extract` writes what :func:`~d2lcv.data.archive_check.plan_extraction` allows (no
member outside the target, links as copies of their files, a bounded size) into a private
folder (umask modes, so 0755 folders), completes it with the marker :data:`COMPLETE_MARKER`
(written last) and renames it into place under a lock on the parent folder, so concurrent
extractions (DDP ranks, DataLoader workers, two notebooks) are safe.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import tarfile
import warnings
import zipfile
import zlib
from pathlib import Path

from ..utils.io import atomic_write
from .archive_check import (
    MAX_RATIO,
    ArchiveError,
    ArchiveMember,
    ArchiveTooLargeError,
    ExtractionPlan,
    UnsafeArchiveError,
    archive_members,
    open_archive,
    plan_extraction,
)

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: the atomic rename alone keeps it safe
    fcntl = None

__all__ = [
    "COMPLETE_MARKER",
    "MAX_RATIO",
    "ArchiveError",
    "ArchiveTooLargeError",
    "UnsafeArchiveError",
    "extract",
    "read_member",
]

COMPLETE_MARKER = ".d2lcv-extracted"  # written last into an extracted folder
_CHUNK = 1 << 20
_ERRORS = (zipfile.BadZipFile, tarfile.TarError, zlib.error, EOFError, OSError)


def _write_file(src, dest: Path, entry: ArchiveMember, archive: Path) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    written = 0
    with os.fdopen(os.open(dest, flags, 0o777 if entry.executable else 0o666), "wb") as f:  # umask applies
        while chunk := src.read(_CHUNK):
            written += len(chunk)
            if written > entry.size:
                raise ArchiveTooLargeError(f"{archive}: member {entry.name!r} holds more than the "
                                           f"{entry.size:,} bytes it declares")
            f.write(chunk)


def _write(fmt: str, handle, plan: ExtractionPlan, out: Path, archive: Path) -> None:
    tree, copies = plan.members, plan.copies
    for name, e in tree.items():  # in archive order: a compressed tar is read once, forward
        dest = out.joinpath(*name.split("/"))
        if e.kind == "dir":
            dest.mkdir(parents=True, exist_ok=True)
        elif e.kind == "file":
            dest.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.closing(handle.open(e.ref) if fmt == "zip" else handle.extractfile(e.ref)) as src:
                _write_file(src, dest, e, archive)
    for name, source in copies.items():
        dest = out.joinpath(*name.split("/"))
        dest.parent.mkdir(parents=True, exist_ok=True)
        with open(out.joinpath(*source.split("/")), "rb") as src:
            _write_file(src, dest, tree[source], archive)


def _is_done(target: Path, archive: Path) -> bool:
    """Whether ``target`` is a complete extraction: it holds the marker, or it is a non-empty
    folder without one (an earlier version's) holding each file of the archive at its size:
    then the marker is added. Other non-empty folders are kept as they are, with a warning."""
    if not target.is_dir():
        if target.exists() or target.is_symlink():
            raise ArchiveError(f"{target} exists and is not a folder; remove it to extract {archive} there")
        return False
    if (target / COMPLETE_MARKER).is_file():
        return True
    if not any(target.iterdir()):
        return False  # an empty folder is replaced
    try:
        fmt, handle = open_archive(archive)
        with handle:
            files = [e for e in archive_members(fmt, handle, archive) if e.kind == "file"]
        wrong = [e.name for e in files if not (target / e.name).is_file() or (target / e.name).stat().st_size != e.size]
    except (ArchiveError, *_ERRORS) as err:
        wrong = [f"({type(err).__name__}: {err})"]
    if wrong:
        warnings.warn(f"{target} is not a complete extraction of {archive} (missing or of another size: "
                      f"{', '.join(wrong[:3])}{', ...' if len(wrong) > 3 else ''}); it is used as it is: "
                      "delete it to extract again", RuntimeWarning, stacklevel=3)
    else:
        with contextlib.suppress(OSError), atomic_write(target / COMPLETE_MARKER, "w") as f:
            f.write(f"{archive.name}: verified after an earlier extraction\n")
    return True


@contextlib.contextmanager
def _locked(folder: Path):
    """Hold an exclusive lock on ``folder`` itself (no lock file); yields False where impossible."""
    fd = os.open(folder, os.O_RDONLY) if fcntl is not None else None
    try:
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
    except OSError:  # e.g. NFS: then the atomic rename alone keeps it safe
        os.close(fd)
        fd = None
    try:
        yield fd is not None
    finally:
        if fd is not None:
            os.close(fd)  # unlocks


def extract(archive: str | os.PathLike, target_dir: str | os.PathLike, *, max_size: int | None = None) -> Path:
    """Safely extract a zip or tar (``.tar``, ``.tar.gz``, ...) archive into ``target_dir``.

    Every member is checked before anything is written (:mod:`d2lcv.data.archive_check`); a
    failed extraction leaves no partial target. An existing ``target_dir`` with the completion
    marker is returned as is, an empty one is replaced; for one without, see ``_is_done``.

    Args:
        max_size: the most bytes the members may take (each counts at least 512, a link as a
            copy of its file); None: :data:`MAX_RATIO` times the archive's size. Registry
            entries give theirs as ``max_extracted_size``.

    Raises:
        UnsafeArchiveError: a member would escape ``target_dir``.
        ArchiveTooLargeError: the archive would inflate beyond ``max_size``.
        ArchiveError: the archive is corrupt, truncated or not a zip/tar file, or
            ``target_dir`` exists and is not a folder.
    """
    archive, target = Path(archive), Path(target_dir)
    if max_size is not None and (isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 0):
        raise ValueError(f"max_size must be a number of bytes >= 0 or None, got {max_size!r}")
    if _is_done(target, archive):
        return target
    if not archive.is_file():
        raise FileNotFoundError(f"archive {archive} does not exist")
    try:
        fmt, handle = open_archive(archive)
    except (zipfile.BadZipFile, tarfile.TarError, zlib.error, EOFError) as err:
        raise ArchiveError(f"could not extract {archive}: {type(err).__name__}: {err}") from err
    target.parent.mkdir(parents=True, exist_ok=True)
    with handle, _locked(target.parent) as locked:
        if _is_done(target, archive):
            return target  # extracted by another process while we waited
        partial = re.compile(rf"\.{re.escape(target.name)}\.\d+\.[0-9a-f]{{8}}\.partial")
        if locked:  # no one else extracts into this target now: partial folders are crash leftovers
            for p in target.parent.iterdir():
                if partial.fullmatch(p.name):
                    shutil.rmtree(p, ignore_errors=True)
        tmp = None
        try:
            plan = plan_extraction(archive_members(fmt, handle, archive), archive, max_size)
            if COMPLETE_MARKER in plan.members:
                raise ArchiveError(f"{archive}: member {COMPLETE_MARKER!r} has the name of the completion marker")
            tmp = target.parent / f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.partial"
            tmp.mkdir()  # the umask applies (mkdtemp would make it 0700)
            _write(fmt, handle, plan, tmp, archive)
            with atomic_write(tmp / COMPLETE_MARKER, "w") as f:  # last: the folder is complete
                f.write(f"{archive.name}: {len(plan.members)} members, {plan.size} bytes\n")
            try:
                os.replace(tmp, target)  # atomic; on POSIX it also replaces an empty folder
            except OSError:
                if not _is_done(target, archive):  # done: another process (no lock) was first
                    os.rmdir(target)  # empty, and this system will not rename onto a folder
                    os.replace(tmp, target)
        except ArchiveError:
            raise
        except _ERRORS as err:
            raise ArchiveError(f"could not extract {archive}: {type(err).__name__}: {err}") from err
        finally:
            if tmp is not None and tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return target


def read_member(archive: str | os.PathLike, member: str) -> bytes:
    """The bytes of one member of a zip archive, without extracting the rest.

    Raises:
        KeyError: no member has that name.
        ArchiveError: the archive or the member is corrupt.
    """
    try:
        with zipfile.ZipFile(archive) as zf:
            return zf.read(member)
    except (zipfile.BadZipFile, zlib.error, EOFError) as err:
        raise ArchiveError(f"could not read {member!r} from {archive}: {err}") from err
