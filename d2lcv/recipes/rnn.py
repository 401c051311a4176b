"""The recurrent-network chapter's protocols: a character language model on The Time Machine
trained with truncated BPTT through :func:`~d2lcv.engine.fit`, and the gradient of the loss
with respect to each hidden state (how far back in time a gradient reaches)."""

from __future__ import annotations

import functools
import time
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from d2lcv import data, engine
from d2lcv.models.lm import RNNLM

__all__ = ["timemachine_lm_data", "train_lm", "hidden_gradient_norms", "scale_spectral_radius"]


def timemachine_lm_data(batch_size: int, num_steps: int, *, val_fraction: float = 0.1, max_chars: int | None = None,
                        seed: int = 0) -> tuple[data.Vocab, data.LMLoader, data.LMLoader]:
    """The Time Machine as characters: ``(vocab, train_loader, val_loader)``.

    The last ``val_fraction`` of the book is the validation text; the training loader
    partitions sequentially with a random offset per epoch, the validation loader from
    offset 0 (the same batches every time). ``max_chars`` keeps the start of the book (for
    the smoke profile)."""
    tokens = data.tokenize(data.timemachine())[:max_chars]
    vocab = data.Vocab(tokens)
    train, val = data.split_corpus(vocab.encode(tokens), val_fraction)
    return (vocab, data.LMLoader(train, batch_size, num_steps, seed=seed),
            data.LMLoader(val, batch_size, num_steps, random_offset=False))


def train_lm(model: nn.Module, train: Any, val: Any, *, epochs: int, lr: float, optimizer: str = "adam",
             grad_clip: float | None = 1.0, progress: bool = True,
             callbacks: tuple[engine.Callback, ...] = ()) -> tuple[engine.History, float]:
    """Train a language model with :class:`~d2lcv.engine.TBPTTStep`: with a sequentially
    partitioned ``train`` the state is carried across batches (detached), with a random one
    it starts from zeros in every batch. ``optimizer``: ``"adam"`` or ``"sgd"`` (plain SGD).

    Returns:
        ``(history, seconds)``; the history has ``train_ppl`` and ``val_ppl`` per epoch.
    """
    if optimizer not in ("adam", "sgd"):
        raise ValueError(f"optimizer must be 'adam' or 'sgd', got {optimizer!r}")
    opt = functools.partial(torch.optim.Adam if optimizer == "adam" else torch.optim.SGD, lr=lr)
    step = engine.TBPTTStep(carry=getattr(train, "partition", "sequential") == "sequential")
    start = time.perf_counter()
    history = engine.fit(model, train, val, epochs=epochs, step=step, optimizer=opt, grad_clip=grad_clip,
                         progress=progress, device="cpu", callbacks=callbacks)
    return history, time.perf_counter() - start


def hidden_gradient_norms(model: RNNLM, x: Tensor, y: Tensor) -> Tensor:
    """``||dL_T / dh_t||`` for t = 1..T: how strongly the loss at the *last* step
    depends on each earlier hidden state of a one-layer from-scratch
    :class:`~d2lcv.models.RNNLM`, averaged over the batch.

    Args:
        x, y (Tensor[B, T]): input ids and next-token targets; the loss is the
            cross-entropy of the last step's prediction.

    Returns:
        Tensor[T], entry t the mean over the batch of ``||dL_T / dh_t||``.
    """
    cell = _one_layer(model)
    inputs = F.one_hot(x, model.vocab_size).float()
    state = cell.init_state(len(x))
    hs = []
    for x_t in inputs.unbind(1):
        h, state = cell(x_t, state)
        h.retain_grad()  # keep dL/dh_t, a non-leaf tensor's gradient
        hs.append(h)
    loss = F.cross_entropy(model.head(hs[-1]), y[:, -1])
    model.zero_grad()
    loss.backward()
    return torch.stack([h.grad.norm(dim=1).mean() for h in hs])


def _one_layer(model: RNNLM) -> nn.Module:
    if len(model.rnn.cells) != 1:
        raise ValueError(f"hidden_gradient_norms needs a one-layer model, got {len(model.rnn.cells)} layers")
    return model.rnn.cells[0]


@torch.no_grad()
def scale_spectral_radius(weight: Tensor, radius: float) -> Tensor:
    """``weight`` (a square matrix) rescaled so that its spectral radius (largest
    absolute eigenvalue) is ``radius``."""
    _check_square(weight)
    current = torch.linalg.eigvals(weight).abs().max()
    return weight * (radius / current)


def _check_square(weight: Tensor) -> None:
    if weight.ndim != 2 or weight.shape[0] != weight.shape[1]:
        raise ValueError(f"weight must be a square matrix, got shape {tuple(weight.shape)}")
