"""Issue #12, item 4: download() has an overall deadline (a slow-drip server cannot hold a
notebook for ever), and check_file's memo sees a same-size replacement whose mtime was
restored. Against a local HTTP server, never the internet.

Names are read from ``d2lcv.data`` inside the tests, so the file also runs (and fails test
by test) against the code before the fix.
"""

from __future__ import annotations

import hashlib
import http.server
import inspect
import os
import threading
import time
from pathlib import Path

import pytest

from d2lcv import data

PAYLOAD = bytes(range(256)) * 40  # 10,240 bytes


class _Handler(http.server.BaseHTTPRequestHandler):
    """/drip: the payload, one byte every 20 ms (about 200 s in all); /ok: the payload;
    /busy: 503 (retryable)."""

    def do_GET(self):
        self.server.hits[self.path] = self.server.hits.get(self.path, 0) + 1
        if self.path == "/busy":
            self.send_error(503)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(PAYLOAD)))
        self.end_headers()
        try:
            if self.path == "/drip":
                for i in range(len(PAYLOAD)):
                    if self.server.stopping.is_set():
                        return
                    self.wfile.write(PAYLOAD[i:i + 1])
                    self.wfile.flush()
                    time.sleep(0.02)
            else:
                self.wfile.write(PAYLOAD)
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.close_connection = True

    def log_message(self, *args):  # keep test output quiet
        pass


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    httpd.hits, httpd.stopping = {}, threading.Event()
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield httpd
    httpd.stopping.set()
    httpd.shutdown()
    httpd.server_close()


def _sha256(payload: bytes) -> str:
    return "sha256:" + hashlib.sha256(payload).hexdigest()


class TestDeadline:
    def test_slow_drip_is_cut_at_the_deadline(self, tmp_path, server):
        # every read gets a byte well within the 5 s socket timeout, so only a deadline stops it
        start = time.monotonic()
        with pytest.raises(data.DownloadError, match=r"/drip \(attempt 1: deadline of 1 s exceeded\)"):
            data.download(f"{server.url}/drip", tmp_path / "f", timeout=5, deadline=1, retries=2,
                          backoff=0, progress=False)
        assert time.monotonic() - start < 3
        assert server.hits["/drip"] == 1  # a deadline is not retried
        assert sorted(p.name for p in tmp_path.iterdir()) == []  # no partial file

    def test_deadline_includes_the_waits_between_attempts(self, tmp_path, server):
        start = time.monotonic()
        with pytest.raises(data.DownloadError, match=r"attempt 1: HTTPError: HTTP Error 503.*; "
                           r"deadline of 2 s reached before attempt 2"):
            data.download(f"{server.url}/busy", tmp_path / "f", retries=3, backoff=30, deadline=2, progress=False)
        assert time.monotonic() - start < 2
        assert server.hits["/busy"] == 1

    def test_a_download_within_the_deadline(self, tmp_path, server):
        dest = data.download(f"{server.url}/ok", tmp_path / "f", checksum=_sha256(PAYLOAD), deadline=30, progress=False)
        assert dest.read_bytes() == PAYLOAD

    def test_there_is_a_deadline_by_default(self):
        # the module d2lcv.data.cache holds the download code
        from d2lcv.data.cache import DEFAULT_DEADLINE

        assert inspect.signature(data.download).parameters["deadline"].default == DEFAULT_DEADLINE == 3600

    @pytest.mark.parametrize("bad", [0, -1, float("nan")])
    def test_bad_deadline(self, tmp_path, bad):
        with pytest.raises(ValueError, match="deadline must be a positive number of seconds or None, got"):
            data.download("file:///x", tmp_path / "f", deadline=bad)


class TestChecksumMemo:
    def _checked(self, path: Path) -> None:
        assert data.check_file(path, _sha256(b"abc")) is None

    def test_rewrite_in_place_with_mtime_restored(self, tmp_path):
        p = tmp_path / "f"
        p.write_bytes(b"abc")
        self._checked(p)  # memoised now
        st = p.stat()
        time.sleep(0.05)  # past the file system's (coarse) timestamp tick
        with open(p, "r+b") as f:  # same inode, same size
            f.write(b"abd")
        os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
        assert p.stat().st_mtime_ns == st.st_mtime_ns and p.stat().st_size == st.st_size
        assert data.check_file(p, _sha256(b"abc")).startswith("checksum mismatch")

    def test_replaced_by_rename_with_mtime_restored(self, tmp_path):
        p, q = tmp_path / "f", tmp_path / "g"
        p.write_bytes(b"abc")
        self._checked(p)
        st = p.stat()
        q.write_bytes(b"xyz")
        os.utime(q, ns=(st.st_atime_ns, st.st_mtime_ns))
        os.replace(q, p)
        assert p.stat().st_mtime_ns == st.st_mtime_ns and p.stat().st_size == st.st_size
        assert data.check_file(p, _sha256(b"abc")).startswith("checksum mismatch")
