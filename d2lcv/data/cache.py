"""Where data lives, and how it gets there: cache and mirror folders, checksums, and
atomic downloads with an overall deadline. Archives are :mod:`d2lcv.data.archive`'s job.

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
import math
import os
import posixpath
import re
import stat
import time
import urllib.error
import urllib.request
from pathlib import Path

from d2lcv.utils.io import atomic_write
from d2lcv.utils.progress import progress as progress_bar


__all__ = [
    "DATA_ENV",
    "DEFAULT_DEADLINE",
    "MIRROR_ENV",
    "OFFLINE_ENV",
    "ChecksumError",
    "DatasetNotFoundError",
    "DownloadError",
    "cache_dir",
    "check_file",
    "download",
    "downloads_enabled",
    "file_checksum",
    "mirror_dir",
    "parse_checksum",
]

DATA_ENV = "D2LCV_DATA"
MIRROR_ENV = "D2LCV_MIRROR"
OFFLINE_ENV = "D2LCV_OFFLINE"

_ALGORITHMS = {"sha256": 64, "sha1": 40, "md5": 32}
_CHUNK = 1 << 20
_USER_AGENT = "d2lcv (https://github.com/d2lcv/d2lcv)"
DEFAULT_DEADLINE = 3600.0  # seconds for a whole download() call, retries included


class DatasetNotFoundError(RuntimeError):
    """No verified copy of a dataset could be found in the cache or mirror, or downloaded."""


class DownloadError(RuntimeError):
    """A download failed after all its attempts (network error, HTTP error, truncated body)."""


class ChecksumError(RuntimeError):
    """A file's checksum differs from the published one."""


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
    if not re.fullmatch(rf"[0-9a-f]{{8,{_ALGORITHMS[algo]}}}", digest):
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
def _digest_cached(path: str, identity: tuple[int, ...], algorithm: str) -> str:
    # a file is hashed once per process unless it changes; ``identity`` is (device, inode,
    # size, mtime, ctime): a same-size rewrite with its mtime restored still changes the
    # ctime (which no user call can set back), and a replacement by rename changes the inode
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
    identity = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    got = _digest_cached(str(Path(path).resolve()), identity, algo)
    if not got.split(":", 1)[1].startswith(expected):
        return f"checksum mismatch: expected {algo}:{expected}, got {got}"
    return None


# ---------------------------------------------------------------------------- download


class _Truncated(Exception):
    pass


class _DeadlineExceeded(Exception):
    pass


def _retryable(err: BaseException) -> bool:
    if isinstance(err, urllib.error.HTTPError):
        return err.code >= 500 or err.code in (408, 429)
    # not a file:// URL to a missing file
    return not (isinstance(err, urllib.error.URLError) and isinstance(err.reason, FileNotFoundError))


def _stream(url: str, tmp, hasher, size: int | None, timeout: float, progress: bool, end: float) -> None:
    """Copy ``url`` into ``tmp``; ``end`` is the ``time.monotonic()`` deadline (or inf)."""
    def left() -> float:
        remaining = end - time.monotonic()
        if remaining <= 0:
            raise _DeadlineExceeded("the deadline passed")
        return remaining

    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    # the socket timeout bounds each read: none ends past the deadline by more than that
    with urllib.request.urlopen(request, timeout=min(timeout, left())) as response:
        length = response.headers.get("Content-Length")
        expected = int(length) if length and length.isdigit() else size
        # read1: one socket read per call (read(n) waits for all n bytes, for ever from a slow drip)
        read = getattr(response, "read1", response.read)
        written = 0
        with progress_bar(total=expected, show=progress, unit="B", unit_scale=True, unit_divisor=1024,
                          desc=posixpath.basename(url), leave=False) as bar:
            while left() and (chunk := read(_CHUNK)):
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
    deadline: float | None = DEFAULT_DEADLINE,
    progress: bool = True,
) -> Path:
    """Download ``url`` to ``dest`` atomically, checking its length and checksum.

    The body streams into a temporary file next to ``dest`` (so no partial ``dest`` ever
    exists, see :func:`d2lcv.utils.io.atomic_write`), which is renamed onto ``dest`` only
    once complete and verified.

    Args:
        url: an ``http(s)://`` or ``file://`` URL.
        dest: the final path; its folder is created.
        checksum: ``"sha256:<hex>"``/``"sha1:<hex>"``/``"md5:<hex>"`` of the file, or None.
        size: the expected size in bytes, or None. Fewer (or more) bytes than this or than
            the server's ``Content-Length`` is a truncated download.
        retries: extra attempts after a network error, 5xx/408/429 or a truncated body.
        backoff: seconds before the first retry; doubles on each further retry.
        timeout: socket timeout in seconds: the longest wait for a connection or for any
            one read. It does not bound the download (a server can send a byte per read).
        deadline: the most seconds the whole call may take, attempts and the waits between
            them included (default one hour); None for no limit. A download still running
            at the deadline is abandoned within ``timeout`` seconds and not retried.
        progress: show a ``tqdm.auto`` progress bar.

    Raises:
        ChecksumError: the file's checksum differs (the file is deleted; not retried).
        DownloadError: every attempt failed, or the deadline passed; names the URL and
            the reasons.
    """
    if retries < 0:
        raise ValueError(f"retries must be >= 0, got {retries}")
    if deadline is not None and not deadline > 0:  # also refuses NaN
        raise ValueError(f"deadline must be a positive number of seconds or None, got {deadline!r}")
    end = math.inf if deadline is None else time.monotonic() + deadline
    algo, expected = parse_checksum(checksum) if checksum is not None else ("sha256", None)
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    reasons: list[str] = []
    for attempt in range(retries + 1):
        if attempt:
            wait = backoff * 2 ** (attempt - 1)
            if time.monotonic() + wait >= end:
                reasons.append(f"deadline of {deadline:g} s reached before attempt {attempt + 1}")
                break
            time.sleep(wait)
        hasher = hashlib.new(algo)
        try:
            with atomic_write(dest) as tmp:
                _stream(url, tmp, hasher, size, timeout, progress, end)
                got = hasher.hexdigest()
                if expected is not None and not got.startswith(expected):
                    raise ChecksumError(
                        f"checksum mismatch for {url}: expected {algo}:{expected}, got {algo}:{got}; "
                        f"the downloaded file was deleted"
                    )
            return dest
        except _DeadlineExceeded:
            reasons.append(f"attempt {attempt + 1}: deadline of {deadline:g} s exceeded")
            break
        except (OSError, http.client.HTTPException, _Truncated) as err:
            reasons.append(f"attempt {attempt + 1}: {type(err).__name__}: {err}")
            if not _retryable(err):
                break
    raise DownloadError(f"could not download {url} ({'; '.join(reasons)})")
