"""Reading house numbers: targets for the two readers (CTC labels for CRNN, one class per
position for the contest baseline), decoding their outputs back to strings, training them
through :func:`~d2lcv.engine.fit`, and caching the trained weights."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from d2lcv import engine
from d2lcv.data.cache import cache_dir
from d2lcv.models.crnn import CRNN, PerPositionCNN
from d2lcv.ops.ctc import ctc_beam_decode, ctc_greedy_decode
from d2lcv.utils.io import save_atomic

__all__ = [
    "NO_DIGIT", "ctc_targets", "position_targets", "decode_ctc", "decode_positions", "position_loss",
    "position_correct", "reader_loader", "train_reader", "read_numbers", "reader_checkpoint", "save_reader",
    "load_reader", "trained_reader",
]

NO_DIGIT = 10
"""The per-position baseline's class for "no character at this position"."""


def ctc_targets(labels: Sequence[str], max_len: int = 5) -> tuple[Tensor, Tensor]:
    """Digit strings as CTC targets: ``(targets Tensor[N, max_len], lengths Tensor[N])``,
    digit d as class d + 1 (class 0 is the blank), padded with 0."""
    targets = torch.zeros(len(labels), max_len, dtype=torch.int64)
    for i, s in enumerate(labels):
        if not s.isdigit() or len(s) > max_len:
            raise ValueError(f"labels must be strings of 1 to {max_len} digits, got {s!r}")
        targets[i, :len(s)] = torch.tensor([int(c) + 1 for c in s])
    return targets, torch.tensor([len(s) for s in labels], dtype=torch.int64)


def position_targets(labels: Sequence[str], positions: int = 5) -> Tensor:
    """Digit strings as one class per position, left-aligned, :data:`NO_DIGIT` after the
    end: ``"42"`` -> ``[4, 2, 10, 10, 10]``. Returns Tensor[N, positions] int64."""
    targets, lengths = ctc_targets(labels, positions)
    return torch.where(torch.arange(positions) < lengths[:, None], targets - 1, NO_DIGIT)


def decode_ctc(logits: Tensor, method: str = "greedy", beam_width: int = 10) -> list[str]:
    """CRNN outputs (Tensor[B, T, 11]) -> strings, by greedy or beam CTC decoding."""
    if method not in ("greedy", "beam"):
        raise ValueError(f"method must be 'greedy' or 'beam', got {method!r}")
    log_probs = logits.float().log_softmax(-1)
    reads = ctc_greedy_decode(log_probs) if method == "greedy" else ctc_beam_decode(log_probs, beam_width)
    return ["".join(str(c - 1) for c in r) for r in reads]


def decode_positions(logits: Tensor) -> list[str]:
    """Baseline outputs (Tensor[B, positions, 11]) -> strings: the digits of the positions
    whose most likely class is not :data:`NO_DIGIT`, in order."""
    return ["".join(str(c) for c in row if c != NO_DIGIT) for row in logits.argmax(-1).tolist()]


def position_loss(logits: Tensor, targets: Tensor) -> Tensor:
    """Cross-entropy summed over positions, averaged over the batch (logits [B, P, C])."""
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten()) * logits.shape[1]


def position_correct(logits: Tensor, targets: Tensor) -> Tensor:
    """The number of strings whose every position is right (the engine's metric: a sum)."""
    return (logits.argmax(-1) == targets).all(1).sum()


def reader_loader(images: Tensor, labels: Sequence[str], kind: str, *, batch_size: int, shuffle: bool,
                  seed: int = 0) -> DataLoader:
    """A loader of ``(images uint8, targets)`` (``kind="positions"``) or ``(images, targets,
    lengths)`` (``kind="ctc"``, for :class:`~d2lcv.engine.CTCStep`)."""
    if kind not in ("ctc", "positions"):
        raise ValueError(f"kind must be 'ctc' or 'positions', got {kind!r}")
    tensors = (images, *ctc_targets(labels)) if kind == "ctc" else (images, position_targets(labels))
    return DataLoader(TensorDataset(*tensors), batch_size=batch_size, shuffle=shuffle,
                      generator=torch.Generator().manual_seed(seed) if shuffle else None)


def train_reader(model: nn.Module, train: DataLoader, val: DataLoader | None, *, epochs: int, lr: float,
                 step: engine.Step, progress: bool = True) -> tuple[engine.History, float]:
    """Adam with a cosine decay of the learning rate over all batches. Returns
    ``(history, seconds)``."""
    total = epochs * len(train)
    start = time.perf_counter()
    history = engine.fit(model, train, val, epochs=epochs, step=step, device="cpu", progress=progress,
                         optimizer=lambda p: torch.optim.Adam(p, lr),
                         scheduler=lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, total),
                         scheduler_interval="batch")
    return history, time.perf_counter() - start


@torch.no_grad()
def read_numbers(model: nn.Module, images: Tensor, decode: Callable[[Tensor], list[str]],
                 batch_size: int = 500) -> list[str]:
    """The strings a reader sees in ``images`` (Tensor[N, 3, H, W] uint8), in eval mode."""
    was_training = model.training
    model.eval()
    out: list[str] = []
    for chunk in images.split(batch_size):
        out += decode(model(chunk))
    model.train(was_training)
    return out


def reader_checkpoint(name: str) -> str:
    """Where a trained reader is cached: ``<cache>/house-numbers/<name>.pt``."""
    return str(cache_dir() / "house-numbers" / f"{name}.pt")


def save_reader(model: nn.Module, name: str, **info: object) -> None:
    """Save a trained reader's weights and ``info`` (atomically) for a later page."""
    save_atomic({"state_dict": model.state_dict(), **info}, reader_checkpoint(name))


def load_reader(model: nn.Module, name: str) -> dict | None:
    """Load the weights cached by :func:`save_reader` into ``model``; returns the saved info,
    or None (model untouched) when there is no cached reader of that name."""
    path = reader_checkpoint(name)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        return None
    model.load_state_dict(state.pop("state_dict"))
    return state


def trained_reader(kind: str, images: Tensor, labels: Sequence[str], val_images: Tensor, val_labels: Sequence[str],
                   *, name: str, epochs: int, lr: float = 1e-3, batch_size: int = 16, width: int = 16,
                   hidden: int | None = None, seed: int = 0, progress: bool = True) -> tuple[nn.Module, dict]:
    """A trained reader, ``kind`` ``"crnn"`` (a bidirectional GRU, CTC) or ``"positions"``
    (the per-position baseline), read from the cache under ``name`` if an earlier page
    trained it with the same data and settings, else trained here (and cached). ``hidden``: the GRU's units per direction
    (default 64) or the baseline's hidden layer (default 256).

    Returns:
        ``(model, info)``, info ``{"history": History, "seconds": training time, "cached": bool}``.
    """
    torch.manual_seed(seed)
    if kind == "crnn":
        model, step = CRNN(width=width, hidden=hidden or 64, rnn="gru"), engine.CTCStep()
    elif kind == "positions":
        model = PerPositionCNN(width=width, hidden=hidden or 256)
        step = engine.SupervisedStep(position_loss, position_correct)
    else:
        raise ValueError(f"kind must be 'crnn' or 'positions', got {kind!r}")
    settings = [kind, len(images), hashlib.sha256("|".join(labels).encode()).hexdigest(), epochs, lr, batch_size,
                width, hidden, seed]
    name = f"{name}-{hashlib.sha256(repr(settings).encode()).hexdigest()[:10]}"  # retrain when anything changes
    info = load_reader(model, name)
    if info is not None:
        return model, {"history": engine.History.from_state_dict(info["history"]), "seconds": info["seconds"],
                       "cached": True}
    train = reader_loader(images, labels, "ctc" if kind == "crnn" else kind, batch_size=batch_size, shuffle=True,
                          seed=seed)
    val = reader_loader(val_images, val_labels, "ctc" if kind == "crnn" else kind, batch_size=250, shuffle=False)
    history, seconds = train_reader(model, train, val, epochs=epochs, lr=lr, step=step, progress=progress)
    save_reader(model, name, history=history.state_dict(), seconds=seconds)
    return model, {"history": history, "seconds": seconds, "cached": False}
