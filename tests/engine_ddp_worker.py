"""Worker for tests/test_engine_ddp.py: train a tiny model with d2lcv.engine.fit.

Under ``torchrun`` (``$RANK`` set) it joins a gloo process group and trains with a
per-process batch of ``--batch-size``; run directly (or :func:`train` called in-process)
it trains alone. Each process saves its parameters and history to
``<out>/rank<r>.pt``; rank 0 also writes the checkpoint ``<out>/ckpt.pt``.
"""

from __future__ import annotations

import argparse
import functools
import os
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import TensorDataset

from d2lcv.engine import fit, make_loader

N, DIM, CLASSES = 64, 6, 3


def dataset() -> TensorDataset:
    g = torch.Generator().manual_seed(0)
    y = torch.arange(N) % CLASSES
    x = 2.0 * torch.eye(CLASSES, DIM)[y] + torch.randn(N, DIM, generator=g)
    return TensorDataset(x, y)


def model() -> nn.Module:
    """No BatchNorm and no dropout: DDP on P processes equals one process with P x the batch."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(DIM, 8), nn.Tanh(), nn.Linear(8, CLASSES))


def train(out: Path, batch_size: int, epochs: int = 2) -> None:
    """Train and save ``{"params", "history"}`` to ``out/rank<r>.pt``."""
    rank = dist.get_rank() if dist.is_initialized() else 0
    net = model()
    data = dataset()
    history = fit(
        net,
        make_loader(data, batch_size, shuffle=True, seed=0),
        make_loader(data, batch_size, shuffle=False),
        epochs=epochs,
        optimizer=functools.partial(torch.optim.SGD, lr=0.2, momentum=0.9),
        device="cpu",
        checkpoint=out / "ckpt.pt",
        progress=False,
    )
    params = {k: v.detach().clone() for k, v in net.state_dict().items()}
    torch.save({"params": params, "history": history.records}, out / f"rank{rank}.pt")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)
    if "RANK" in os.environ:
        dist.init_process_group("gloo")
    try:
        train(args.out, args.batch_size, args.epochs)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


if __name__ == "__main__":
    main()
