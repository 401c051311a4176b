"""Where data lives, and how it gets there safely: cache and mirror folders,
checksums, resumable-free but atomic downloads, and safe archive extraction.

Nothing here knows about particular datasets; :mod:`d2lcv.data.registry` does.

Environment variables:

``D2LCV_DATA``
    the cache folder (read and written). Default: ``<repo>/data`` when running from
    a source checkout of the book, else ``$XDG_CACHE_HOME/d2lcv`` or ``~/.cache/d2lcv``.
``D2LCV_MIRROR``
    a read-only folder holding copies of the datasets (never written to).
``D2LCV_OFFLINE``
    ``1`` (or ``true``/``yes``/``on``) turns downloads off.
"""

from __future__ import annotations

import functools
import hashlib
import http.client
import os
import posixpath
import re
import shutil
import stat
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from pathlib import Path

__all__ = [
    "DATA_ENV",
    "MIRROR_ENV",
    "OFFLINE_ENV",
    "ArchiveError",
    "ChecksumError",
    "DatasetNotFoundError",
    "DownloadError",
    "UnsafeArchiveError",
    "cache_dir",
    "mirror_dir",
    "downloads_enabled",
    "parse_checksum",
    "file_checksum",
    "check_file",
    "download",
    "extract",
    "read_member",
]

DATA_ENV = "D2LCV_DATA"
MIRROR_ENV = "D2LCV_MIRROR"
OFFLINE_ENV = "D2LCV_OFFLINE"

_ALGORITHMS = {"sha256": 64, "sha1": 40, "md5": 32}
_CHUNK = 1 << 20
_USER_AGENT = "d2lcv (https://github.com/d2lcv/d2lcv)"


class DatasetNotFoundError(RuntimeError):
    """No verified copy of a dataset could be found in the cache or mirror, or downloaded."""


class DownloadError(RuntimeError):
    """A download failed after all its attempts (network error, HTTP error, truncated body)."""


class ChecksumError(RuntimeError):
    """A file's checksum differs from the published one."""


class ArchiveError(RuntimeError):
    """An archive could not be read or extracted (corrupt, truncated, unknown format)."""


class UnsafeArchiveError(ArchiveError):
    """An archive member would land outside the target folder (absolute path, ``..``, link)."""


# ---------------------------------------------------------------------------- locations


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name, "").strip()
    return Path(value).expanduser() if value else None


def cache_dir() -> Path:
    """The cache folder: ``$D2LCV_DATA``, else ``<repo>/data`` in a source checkout
    (one with ``_toc.yml`` next to the package), else ``$XDG_CACHE_HOME/d2lcv`` or
    ``~/.cache/d2lcv``. The folder is not created here."""
    env = _env_path(DATA_ENV)
    if env is not None:
        return env
    repo = Path(__file__).resolve().parents[2]
    if (repo / "_toc.yml").exists():
        return repo / "data"
    xdg = _env_path("XDG_CACHE_HOME")
    return (xdg if xdg is not None else Path.home() / ".cache") / "d2lcv"


def mirror_dir() -> Path | None:
    """The read-only mirror folder ``$D2LCV_MIRROR``, or None when it is unset."""
    return _env_path(MIRROR_ENV)


def downloads_enabled(download: bool | None = None) -> bool:
    """Whether downloads may happen: ``download`` if given, else not ``$D2LCV_OFFLINE``."""
    if download is not None:
        return download
    return os.environ.get(OFFLINE_ENV, "").strip().lower() not in {"1", "true", "yes", "on"}


# ---------------------------------------------------------------------------- checksums


def parse_checksum(checksum: str) -> tuple[str, str]:
    """Split ``"sha256:<hex>"`` (or ``sha1:``/``md5:``) into ``(algorithm, lowercase hex)``.

    A hex string shorter than the full digest (at least 8 digits) is a *prefix*, as in
    torchvision's weight file names (``resnet18-f37072fd.pth``).

    Raises:
        ValueError: on an unknown algorithm or a malformed digest.
    """
    if not isinstance(checksum, str) or ":" not in checksum:
        raise ValueError(f"checksum must look like 'sha256:<hex>', got {checksum!r}")
    algo, digest = checksum.split(":", 1)
    algo, digest = algo.strip().lower(), digest.strip().lower()
    if algo not in _ALGORITHMS:
        raise ValueError(f"checksum algorithm must be one of {sorted(_ALGORITHMS)}, got {algo!r}")
    if not re.fullmatch(r"[0-9a-f]{8,%d}" % _ALGORITHMS[algo], digest):
        raise ValueError(
            f"{algo} digest must be 8 to {_ALGORITHMS[algo]} hex digits, got {digest!r}"
        )
    return algo, digest


def file_checksum(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    """The ``"<algorithm>:<hex>"`` checksum of a file, read in 1 MiB chunks."""
    if algorithm not in _ALGORITHMS:
        raise ValueError(f"algorithm must be one of {sorted(_ALGORITHMS)}, got {algorithm!r}")
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return f"{algorithm}:{h.hexdigest()}"


@functools.lru_cache(maxsize=512)
def _digest_cached(path: str, size: int, mtime_ns: int, algorithm: str) -> str:
    # keyed by (size, mtime): a file is hashed once per process unless it changes
    return file_checksum(path, algorithm)


def check_file(path: str | os.PathLike, checksum: str, size: int | None = None) -> str | None:
    """Check a file against ``checksum`` (and ``size`` if given).

    Returns:
        None if the file matches, else a short reason (``"missing"``, ``"size 12 != 34"``,
        ``"checksum mismatch: expected sha256:..., got sha256:..."``).
    """
    algo, expected = parse_checksum(checksum)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return "missing"
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file"
    if size is not None and st.st_size != size:
        return f"size {st.st_size} bytes, expected {size}"
    got = _digest_cached(str(Path(path).resolve()), st.st_size, st.st_mtime_ns, algo)
    if not got.split(":", 1)[1].startswith(expected):
        return f"checksum mismatch: expected {algo}:{expected}, got {got}"
    return None


# ---------------------------------------------------------------------------- download


class _Truncated(Exception):
    pass


def _retryable(err: BaseException) -> bool:
    if isinstance(err, urllib.error.HTTPError):
        return err.code >= 500 or err.code in (408, 429)
    if isinstance(err, urllib.error.URLError) and isinstance(err.reason, FileNotFoundError):
        return False  # a file:// URL to a missing file
    return True


def _stream(url: str, tmp, hasher, size: int | None, timeout: float, progress: bool) -> None:
    from tqdm.auto import tqdm  # lazy: tqdm.auto probes for Jupyter

    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        length = response.headers.get("Content-Length")
        expected = int(length) if length and length.isdigit() else size
        written = 0
        with tqdm(
            total=expected, unit="B", unit_scale=True, unit_divisor=1024,
            desc=posixpath.basename(url), leave=False,
            **({} if progress else {"disable": True}),  # unset: TQDM_DISABLE=1 still silences it
        ) as bar:
            while chunk := response.read(_CHUNK):
                tmp.write(chunk)
                hasher.update(chunk)
                written += len(chunk)
                bar.update(len(chunk))
    for what, want in (("Content-Length", expected), ("expected size", size)):
        if want is not None and written != want:
            raise _Truncated(f"truncated: got {written} bytes, {what} is {want}")


def download(
    url: str,
    dest: str | os.PathLike,
    *,
    checksum: str | None = None,
    size: int | None = None,
    retries: int = 3,
    backoff: float = 1.0,
    timeout: float = 60.0,
    progress: bool = True,
) -> Path:
    """Download ``url`` to ``dest`` atomically, checking its length and checksum.

    The body streams into a temporary file next to ``dest`` (so no partial ``dest`` ever
    exists), which is renamed onto ``dest`` only once complete and verified.

    Args:
        url: an ``http(s)://`` or ``file://`` URL.
        dest: the final path; its folder is created.
        checksum: ``"sha256:<hex>"``/``"sha1:<hex>"``/``"md5:<hex>"`` of the file, or None.
        size: the expected size in bytes, or None. Fewer (or more) bytes than this or than
            the server's ``Content-Length`` is a truncated download.
        retries: extra attempts after a network error, 5xx/408/429 or a truncated body.
        backoff: seconds before the first retry; doubles on each further retry.
        timeout: socket timeout in seconds.
        progress: show a ``tqdm.auto`` progress bar.

    Raises:
        ChecksumError: the file's checksum differs (the file is deleted; not retried).
        DownloadError: every attempt failed; names the URL and the last reason.
    """
    if retries < 0:
        raise ValueError(f"retries must be >= 0, got {retries}")
    algo, expected = parse_checksum(checksum) if checksum is not None else ("sha256", None)
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    reasons: list[str] = []
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(backoff * 2 ** (attempt - 1))
        hasher = hashlib.new(algo)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
        try:
            with os.fdopen(fd, "wb") as tmp:
                _stream(url, tmp, hasher, size, timeout, progress)
            got = hasher.hexdigest()
            if expected is not None and not got.startswith(expected):
                raise ChecksumError(
                    f"checksum mismatch for {url}: expected {algo}:{expected}, got {algo}:{got}; "
                    f"the downloaded file was deleted"
                )
            os.chmod(tmp_name, 0o644)  # mkstemp makes it 0600
            os.replace(tmp_name, dest)
            return dest
        except (OSError, http.client.HTTPException, _Truncated) as err:
            reasons.append(f"attempt {attempt + 1}: {type(err).__name__}: {err}")
            if not _retryable(err):
                break
        finally:
            if os.path.exists(tmp_name):
                os.unlink(tmp_name)
    raise DownloadError(f"could not download {url} ({'; '.join(reasons)})")


# ---------------------------------------------------------------------------- archives


def _check_name(name: str, archive: Path) -> str:
    """The member name as a safe relative POSIX path, or UnsafeArchiveError."""
    posix = name.replace("\\", "/")
    if posix.startswith("/") or re.match(r"^[A-Za-z]:", posix):
        raise UnsafeArchiveError(f"{archive}: member {name!r} has an absolute path")
    if ".." in posix.split("/"):
        raise UnsafeArchiveError(f"{archive}: member {name!r} contains '..'")
    return posix


def _check_link(name: str, link: str, archive: Path, *, relative_to_member: bool) -> None:
    link = link.replace("\\", "/")
    base = posixpath.dirname(name) if relative_to_member else ""
    resolved = posixpath.normpath(posixpath.join(base, link))
    if link.startswith("/") or resolved == ".." or resolved.startswith("../"):
        raise UnsafeArchiveError(
            f"{archive}: link {name!r} -> {link!r} points outside the target folder"
        )


def _extract_zip(archive: Path, out: Path) -> None:
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            name = _check_name(info.filename, archive)
            if stat.S_ISLNK(info.external_attr >> 16):
                link = zf.read(info).decode("utf-8", "replace")
                _check_link(name, link, archive, relative_to_member=True)
        zf.extractall(out)  # zip symlinks are written as small text files, never followed


def _extract_tar(archive: Path, out: Path) -> None:
    with tarfile.open(archive) as tf:
        for m in tf.getmembers():
            name = _check_name(m.name, archive)
            if m.issym():
                _check_link(name, m.linkname, archive, relative_to_member=True)
            elif m.islnk():
                _check_link(name, m.linkname, archive, relative_to_member=False)
            elif not (m.isfile() or m.isdir()):
                raise UnsafeArchiveError(f"{archive}: member {m.name!r} is a device or fifo")
        if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4: belt and braces
            tf.extractall(out, filter="data")
        else:  # pragma: no cover
            tf.extractall(out)


def extract(archive: str | os.PathLike, target_dir: str | os.PathLike) -> Path:
    """Safely extract a zip or tar (``.tar``, ``.tar.gz``, ...) archive into ``target_dir``.

    Members with absolute paths or ``..`` components, links pointing outside the target,
    and device files are refused before anything is written. Extraction goes to a temporary
    folder next to ``target_dir``, renamed into place only on success, so a failed
    extraction leaves no partial target. An existing ``target_dir`` is taken to be a
    complete earlier extraction and returned as is.

    Returns:
        ``target_dir`` as a Path.

    Raises:
        UnsafeArchiveError: a member would escape ``target_dir``.
        ArchiveError: the archive is corrupt, truncated or not a zip/tar file.
    """
    archive, target = Path(archive), Path(target_dir)
    if target.exists():
        return target
    if not archive.is_file():
        raise FileNotFoundError(f"archive {archive} does not exist")
    if zipfile.is_zipfile(archive):
        extractor = _extract_zip
    elif tarfile.is_tarfile(archive):
        extractor = _extract_tar
    else:
        raise ArchiveError(f"{archive} is not a zip or tar archive (or it is corrupt)")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent))
    try:
        extractor(archive, tmp)
        os.replace(tmp, target)
    except ArchiveError:
        raise
    except (zipfile.BadZipFile, tarfile.TarError, zlib.error, EOFError, OSError) as err:
        if isinstance(err, tarfile.FilterError):
            raise UnsafeArchiveError(f"{archive}: {err}") from err
        raise ArchiveError(f"could not extract {archive}: {type(err).__name__}: {err}") from err
    finally:
        if tmp.exists():
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
