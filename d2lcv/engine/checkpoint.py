"""Atomic training checkpoints that load with ``torch.load(weights_only=True)``."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from d2lcv.utils.io import atomic_write

from .distributed import unwrap
from .history import History

__all__ = ["save_checkpoint", "load_checkpoint"]

Optimizers = torch.optim.Optimizer | Mapping[str, torch.optim.Optimizer]


def save_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    optimizer: Optimizers | None = None,
    *,
    epoch: int = 0,
    history: History | None = None,
    **extra: Any,
) -> Path:
    """Save model (and optimizer) state atomically (:func:`d2lcv.utils.io.atomic_write`).

    A run killed while saving leaves the previous checkpoint intact. Everything stored
    is tensors and plain containers, so :func:`load_checkpoint` can use
    ``torch.load(weights_only=True)``. The file holds ``model`` (the unwrapped module's
    state dict, no ``module.`` prefix under DDP), ``epoch``, and ``optimizer`` and
    ``history`` when given.

    Args:
        optimizer: one optimizer, or ``{name: optimizer}`` (stored as ``{name: state}``).
        epoch: the number of finished epochs.
        history: stored as :meth:`History.state_dict`.
        **extra: more plain entries (e.g. ``scheduler=scheduler.state_dict()``).

    Returns:
        ``Path(path)``.
    """
    state: dict[str, Any] = {"model": unwrap(model).state_dict(), "epoch": int(epoch), **extra}
    if optimizer is not None:
        if isinstance(optimizer, Mapping):
            state["optimizer"] = {name: opt.state_dict() for name, opt in optimizer.items()}
        else:
            state["optimizer"] = optimizer.state_dict()
    if history is not None:
        state["history"] = history.state_dict()
    with atomic_write(path) as f:
        torch.save(state, f)
    return Path(path)


def load_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    optimizer: Optimizers | None = None,
    *,
    map_location: torch.device | str = "cpu",
) -> dict[str, Any]:
    """Load a :func:`save_checkpoint` file into ``model`` (and ``optimizer``).

    Args:
        optimizer: as given to :func:`save_checkpoint` (one, or the same names).

    Returns:
        The whole checkpoint dict (``epoch``, ``history``, and any extras).

    Raises:
        ValueError: an optimizer is given but the file has no (or other) optimizer state.
    """
    state = torch.load(path, map_location=map_location, weights_only=True)
    unwrap(model).load_state_dict(state["model"])
    if optimizer is not None:
        if "optimizer" not in state:
            raise ValueError(f"checkpoint {str(path)!r} has no optimizer state")
        saved = state["optimizer"]
        if isinstance(optimizer, Mapping):
            if not isinstance(saved, Mapping) or set(saved) != set(optimizer):
                raise ValueError(f"checkpoint {str(path)!r} has no optimizer state for {sorted(optimizer)}")
            for name, opt in optimizer.items():
                opt.load_state_dict(saved[name])
        else:
            optimizer.load_state_dict(saved)
    return state
