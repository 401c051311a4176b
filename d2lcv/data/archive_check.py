"""What is in a dataset archive (zip or tar), and whether it is safe to write out.

Member names must be relative without ``..``; devices are refused; links (tar symbolic and
hard links, zip symbolic links) are followed *inside the archive*, through any chain of
other links, as the OS would follow them on disk, and must end at a regular file member
inside the target; a member whose path runs through a link is refused. So no member can
land outside the target, whatever Python's tar filters do (they are missing before 3.10.12
and bypassable with long paths on some later releases: CVE-2025-4517). The bytes an
extraction writes are bounded too (:data:`MAX_RATIO`). :mod:`d2lcv.data.archive` writes the plan.
"""

from __future__ import annotations

import re
import stat
import tarfile
import zipfile
from pathlib import Path
from typing import NamedTuple

__all__ = [
    "MAX_RATIO",
    "ArchiveError",
    "ArchiveMember",
    "ArchiveTooLargeError",
    "ExtractionPlan",
    "UnsafeArchiveError",
    "archive_members",
    "open_archive",
    "plan_extraction",
]

MAX_RATIO = 100  # default bound on extracted bytes / archive bytes (image sets are near 1)
_MEMBER_COST = 512  # bytes each member counts at least (a tar header): empty files are not free
_MAX_LINKS = 40  # links followed while resolving one link, as Linux's MAXSYMLINKS


class ArchiveError(RuntimeError):
    """An archive could not be read or extracted (corrupt, truncated, unknown format)."""


class UnsafeArchiveError(ArchiveError):
    """An archive member would land outside the target folder (absolute path, ``..``, link)."""


class ArchiveTooLargeError(ArchiveError):
    """An archive would inflate beyond the allowed size (``max_size``, or :data:`MAX_RATIO`)."""


class ArchiveMember(NamedTuple):
    """One member: ``name`` a normalised relative POSIX path; ``link`` a symbolic link's target
    (from its folder) or a hard link's (from the archive's root); ``ref`` its ZipInfo/TarInfo."""

    name: str
    kind: str  # "file", "dir", "symlink" or "hardlink"
    size: int
    link: str
    executable: bool
    ref: object


def open_archive(archive: Path) -> tuple[str, zipfile.ZipFile | tarfile.TarFile]:
    """``("zip", ZipFile)`` or ``("tar", TarFile)`` for ``archive``, or ArchiveError."""
    if zipfile.is_zipfile(archive):
        return "zip", zipfile.ZipFile(archive)
    if tarfile.is_tarfile(archive):
        return "tar", tarfile.open(archive)
    raise ArchiveError(f"{archive} is not a zip or tar archive (or it is corrupt)")


def _check_name(name: str, archive: Path) -> str:
    """The member name as a normalised relative POSIX path, or UnsafeArchiveError."""
    posix = name.replace("\\", "/")
    if posix.startswith("/") or re.match(r"^[A-Za-z]:", posix):
        raise UnsafeArchiveError(f"{archive}: member {name!r} has an absolute path")
    if ".." in posix.split("/"):
        raise UnsafeArchiveError(f"{archive}: member {name!r} contains '..'")
    return "/".join(p for p in posix.split("/") if p not in ("", "."))


def archive_members(fmt: str, handle, archive: Path) -> list[ArchiveMember]:
    """The members of an open archive, in order, with names checked (absolute paths, ``..``
    and devices are refused: UnsafeArchiveError)."""
    out = []
    for m in handle.infolist() if fmt == "zip" else handle.getmembers():
        name = _check_name(m.filename if fmt == "zip" else m.name, archive)
        if fmt == "zip":
            mode = m.external_attr >> 16
            if stat.S_ISLNK(mode):
                if m.file_size > 4096:
                    raise UnsafeArchiveError(f"{archive}: link {m.filename!r} has a {m.file_size:,}-byte target")
                out.append(ArchiveMember(name, "symlink", 0, handle.read(m).decode("utf-8", "replace"), False, m))
            else:
                out.append(ArchiveMember(name, "dir" if m.is_dir() else "file", m.file_size, "", bool(mode & 0o100), m))
        elif m.issym() or m.islnk():
            out.append(ArchiveMember(name, "symlink" if m.issym() else "hardlink", 0, m.linkname, False, m))
        elif m.isdir() or m.isfile():
            out.append(ArchiveMember(name, "dir" if m.isdir() else "file", m.size, "", bool(m.mode & 0o100), m))
        else:
            raise UnsafeArchiveError(f"{archive}: member {m.name!r} is a device or fifo")
    return out


class ExtractionPlan(NamedTuple):
    """``members``: name -> member to write, in archive order; ``copies``: link name -> the
    file member it is written as a copy of; ``size``: the bytes counted against the limit."""

    members: dict[str, ArchiveMember]
    copies: dict[str, str]
    size: int


def _follow(base: list[str], link: str, tree: dict[str, ArchiveMember], budget: list[int]) -> list[str]:
    """Where ``link``, read from the folder ``base``, lands below the target once every symbolic
    link of the archive on its way is followed, as the OS would. ValueError if it leaves."""
    link, budget[0] = link.replace("\\", "/"), budget[0] - 1
    if budget[0] < 0 or link.startswith("/") or re.match(r"^[A-Za-z]:", link):
        raise ValueError("a loop" if budget[0] < 0 else "outside")
    out = list(base)
    for part in link.split("/"):
        if part == "..":
            if not out:
                raise ValueError("outside")
            out.pop()
        elif part not in ("", "."):
            out.append(part)
            entry = tree.get("/".join(out))
            if entry is not None and entry.kind == "symlink":
                out = _follow(out[:-1], entry.link, tree, budget)
    return out


def plan_extraction(entries: list[ArchiveMember], archive: Path, max_size: int | None = None) -> ExtractionPlan:
    """What extracting ``entries`` writes: the members (the last of equal names wins) and, for
    each link, the file it copies, once every link is followed inside the archive.

    Raises:
        UnsafeArchiveError: a link ends outside the target, a member runs through a link, or a
            name has two kinds.
        ArchiveTooLargeError: more than ``max_size`` bytes (None: :data:`MAX_RATIO` times the archive).
        ArchiveError: links to folders, to nothing, or in a loop; a file used as a folder.
    """
    tree: dict[str, ArchiveMember] = {}
    for e in entries:
        if not e.name and e.kind != "dir":
            raise ArchiveError(f"{archive}: a {e.kind} member has an empty name")
        old = tree.pop(e.name, None)
        if old is not None and old.kind != e.kind:
            raise UnsafeArchiveError(f"{archive}: member {e.name!r} appears twice, as a {old.kind} and as a {e.kind}")
        if e.name:
            tree[e.name] = e
    for name in tree:
        parts = name.split("/")
        for i in range(1, len(parts)):
            above = tree.get("/".join(parts[:i]))
            if above is not None and above.kind != "dir":
                what = "file" if above.kind == "file" else "link"
                raise UnsafeArchiveError(f"{archive}: member {name!r} runs through the {what} {above.name!r}")
    copies: dict[str, str] = {}
    unsupported: list[str] = []
    for name, e in tree.items():
        budget, at = [_MAX_LINKS], e
        while at.kind in ("symlink", "hardlink"):  # a hard link may name a symbolic link, and so on
            try:
                found = "/".join(_follow(at.name.split("/")[:-1] if at.kind == "symlink" else [], at.link, tree, budget))
            except ValueError as err:
                if str(err) == "a loop":
                    raise ArchiveError(f"{archive}: link {name!r} -> {e.link!r} is a loop of links") from None
                raise UnsafeArchiveError(
                    f"{archive}: link {name!r} -> {e.link!r} points outside the target folder") from None
            at = tree.get(found)
            if at is None or at.kind == "dir":  # reported once no link points outside
                folder = at is not None or not found or any(n.startswith(found + "/") for n in tree)
                unsupported.append(f"{archive}: link {name!r} -> {e.link!r} points to "
                                   f"{'a folder' if folder else 'nothing in the archive'}; only links to files are supported")
                break
        if at is not None and at is not e and at.kind == "file":
            copies[name] = at.name
    if unsupported:
        raise ArchiveError(unsupported[0])
    return ExtractionPlan(tree, copies, _check_size(tree, copies, archive, max_size))


def _check_size(tree: dict[str, ArchiveMember], copies: dict[str, str], archive: Path, max_size: int | None) -> int:
    total = sum(_MEMBER_COST + tree[copies.get(n, n)].size for n in tree)
    packed = archive.stat().st_size
    limit = max_size if max_size is not None else MAX_RATIO * packed
    if total > limit:
        raise ArchiveTooLargeError(
            f"{archive}: extracting would write {total:,} bytes in {len(tree):,} members, "
            f"{total / max(packed, 1):,.0f} times the archive's {packed:,} bytes; the limit is {limit:,} "
            f"bytes ({'max_size' if max_size is not None else f'by default {MAX_RATIO} times the archive'}). "
            "If the archive is trusted, pass a larger max_size (a registry entry's max_extracted_size)"
        )
    return total
