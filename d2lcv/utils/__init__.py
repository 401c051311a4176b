"""Layer 0: small utilities every other layer may use (atomic files, progress bars,
timing, parameter counts, scoped seeding). They import nothing from the rest of d2lcv."""

from __future__ import annotations

from .io import atomic_write, save_atomic
from .params import count_params
from .progress import progress
from .seeding import seeded
from .timing import best_time

__all__ = ["atomic_write", "save_atomic", "count_params", "progress", "seeded", "best_time"]
