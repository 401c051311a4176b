"""The same training code alone or under ``torchrun``: process-group helpers and loaders.

Without a process group every helper is the identity (one process, rank 0); with one
(``torch.distributed.init_process_group``, e.g. under ``torchrun``), :func:`make_loader`
gives each process its share of the data and :func:`all_reduce_sum` adds up metrics.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from d2lcv import config

__all__ = ["is_distributed", "is_main_process", "unwrap", "resolve_device", "all_reduce_sum", "make_loader"]


def is_distributed() -> bool:
    """True when a ``torch.distributed`` process group is up."""
    return dist.is_available() and dist.is_initialized()


def is_main_process() -> bool:
    """True on rank 0 of a process group, and always without one."""
    return not is_distributed() or dist.get_rank() == 0


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside a ``DistributedDataParallel`` wrapper (``model`` itself otherwise)."""
    return model.module if isinstance(model, DistributedDataParallel) else model


def resolve_device(device: torch.device | str | None) -> torch.device:
    """``device``, or :func:`d2lcv.config.try_device` for ``None``; under a process group a
    bare ``"cuda"`` becomes ``cuda:$LOCAL_RANK`` (one GPU a process)."""
    device = config.try_device() if device is None else torch.device(device)
    if device.type == "cuda" and device.index is None and is_distributed():
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return device


def all_reduce_sum(values: Sequence[float], device: torch.device | str) -> list[float]:
    """Sum ``values`` over all processes, in float64 (the values as they are without a
    process group). ``device`` is where the reduction runs (the GPU for NCCL)."""
    if not is_distributed():
        return list(values)
    totals = torch.tensor([float(v) for v in values], dtype=torch.float64, device=device)
    dist.all_reduce(totals)  # default op: SUM
    return totals.tolist()


def make_loader(
    dataset: Dataset,
    batch_size: int,
    *,
    shuffle: bool,
    seed: int = 0,
    drop_last: bool = False,
    **kwargs: Any,
) -> DataLoader:
    """A ``DataLoader`` whose order depends only on ``seed`` and the epoch.

    The sampler is a ``DistributedSampler``: under ``torchrun`` it gives each process
    its share of the data; alone, it is one process's share of everything, i.e. a plain
    (seeded) shuffle. :func:`~d2lcv.engine.fit` calls ``sampler.set_epoch(epoch)``, so each
    epoch has a new order, the same on every run, and a resumed run sees the same batches
    as an uninterrupted one.

    With ``P`` processes and ``len(dataset)`` not divisible by ``P``, the sampler repeats
    up to ``P - 1`` examples so that every process has as many batches.

    Args:
        dataset: a map-style dataset.
        batch_size: examples per batch *per process*.
        shuffle: shuffle each epoch (training) or not (evaluation).
        seed: the shuffle's seed.
        drop_last: drop the last, incomplete batch.
        **kwargs: passed to ``DataLoader`` (``num_workers``, ``pin_memory``, ...).
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    if "sampler" in kwargs or "batch_sampler" in kwargs:
        raise ValueError(f"make_loader builds its own sampler; got {sorted(kwargs)}")
    replicas, rank = (dist.get_world_size(), dist.get_rank()) if is_distributed() else (1, 0)
    sampler = DistributedSampler(
        dataset, num_replicas=replicas, rank=rank, shuffle=shuffle, seed=seed, drop_last=drop_last
    )
    return DataLoader(dataset, batch_size, sampler=sampler, drop_last=drop_last, **kwargs)
