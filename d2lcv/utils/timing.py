"""Best-of-N timing for the benchmarks (never for assertions in tests)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

__all__ = ["best_time"]


def best_time(fn: Callable[[], Any], repeat: int = 3, *, process_time: bool = True) -> tuple[float, Any]:
    """The least time of ``repeat`` calls of ``fn`` (seconds), and the last call's result.

    Args:
        process_time: CPU time of this process, which other work on a shared machine
            inflates less than wall time (``False``: wall time, e.g. for GPU work).
    """
    if repeat < 1:
        raise ValueError(f"repeat must be >= 1, got {repeat}")
    clock = time.process_time if process_time else time.perf_counter
    best, out = float("inf"), None
    for _ in range(repeat):
        start = clock()
        out = fn()
        best = min(best, clock() - start)
    return best, out
