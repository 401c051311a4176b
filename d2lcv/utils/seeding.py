"""Scoped seeding: library code never changes the caller's global random state."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator

import numpy as np
import torch

__all__ = ["seeded"]


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[torch.Generator]:
    """Seed Python's, NumPy's and torch's global generators inside the block, as
    :func:`d2lcv.config.seed_everything` would, and restore their states afterwards.

    Code inside the block (weight initialisation, a ``DataLoader`` without a generator,
    dropout) is reproducible; code after it sees the random state it had before. The
    determinism flags are left alone.

    Yields:
        A CPU ``torch.Generator`` seeded with ``seed``.
    """
    py_state, np_state = random.getstate(), np.random.get_state()
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
    with torch.random.fork_rng(devices=devices):
        random.seed(seed)
        np.random.seed(seed % 2**32)
        torch.manual_seed(seed)
        try:
            yield torch.Generator().manual_seed(seed)
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)
