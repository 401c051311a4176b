"""Timing shared by the benchmark scripts (run as ``python bench/bench_<x>.py``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def best_time(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """The least CPU process time of ``repeats`` calls of ``fn`` (seconds), and its last result.

    Process time, not wall time, so that other work on a shared machine inflates it less.
    """
    best, out = float("inf"), None
    for _ in range(repeats):
        start = time.process_time()
        out = fn()
        best = min(best, time.process_time() - start)
    return best, out
