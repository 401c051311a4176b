"""Stacking cells over time and layers (:class:`Recurrent`), a character language model on
top (:class:`RNNLM`), sampling text from it (:func:`generate`), and loading torch's weights
into the from-scratch cells (:func:`copy_torch_weights`)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .rnn import make_cell

__all__ = ["Recurrent", "RNNLM", "generate", "copy_torch_weights"]


class Recurrent(nn.Module):
    """``num_layers`` cells of one kind, run over time: layer ``l``'s outputs are layer
    ``l + 1``'s inputs (with dropout between layers in training).

    ``forward(x Tensor[B, T, input_size], state=None) -> (out Tensor[B, T, hidden_size],
    state)``, ``state`` a list with each layer's state at the last step (None: zeros).

    Args:
        cell: ``"rnn"``, ``"lstm"`` or ``"gru"``; ``options`` go to the cell
            (``nonlinearity``, ``peephole``, ``coupled``).
    """

    def __init__(self, cell: str, input_size: int, hidden_size: int, num_layers: int = 1, dropout: float = 0.0,
                 **options: Any) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        sizes = [input_size] + [hidden_size] * (num_layers - 1)
        self.cells = nn.ModuleList(make_cell(cell, n, hidden_size, **options) for n in sizes)
        self.drop = nn.Dropout(dropout)
        self.kind, self.hidden_size = cell, hidden_size

    def forward(self, x: Tensor, state: list | None = None) -> tuple[Tensor, list]:
        self._check(x)
        if state is None:
            state = [cell.init_state(len(x), x.device) for cell in self.cells]
        new_state = []
        for layer, (cell, s) in enumerate(zip(self.cells, state)):
            if layer:
                x = self.drop(x)
            outputs = []
            for x_t in x.unbind(1):  # one time step at a time
                h, s = cell(x_t, s)
                outputs.append(h)
            x = torch.stack(outputs, 1)
            new_state.append(s)
        return x, new_state


    def _check(self, x: Tensor) -> None:
        if x.ndim != 3 or x.shape[-1] != self.cells[0].input_size:
            raise ValueError(f"x must be [B, T, {self.cells[0].input_size}], got {tuple(x.shape)}")


_TORCH = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


class RNNLM(nn.Module):
    """A language model: one-hot tokens -> recurrent layers -> a linear layer to the
    vocabulary. ``forward(x Tensor[B, T] ids, state=None) -> (logits Tensor[B, T, V], state)``.

    Args:
        cell: ``"rnn"``, ``"lstm"`` or ``"gru"``.
        impl: ``"scratch"`` (:class:`Recurrent`) or ``"torch"`` (``nn.RNN/LSTM/GRU``, the
            same computation in C++; no cell options then, except ``nonlinearity``).
    """

    def __init__(self, vocab_size: int, hidden_size: int = 256, cell: str = "rnn", num_layers: int = 1,
                 dropout: float = 0.0, impl: str = "scratch", **options: Any) -> None:
        super().__init__()
        if impl not in ("scratch", "torch"):
            raise ValueError(f"impl must be 'scratch' or 'torch', got {impl!r}")
        if impl == "scratch":
            self.rnn = Recurrent(cell, vocab_size, hidden_size, num_layers, dropout, **options)
        else:
            self.rnn = _TORCH[cell](vocab_size, hidden_size, num_layers, dropout=dropout, batch_first=True, **options)
        self.head = nn.Linear(hidden_size, vocab_size)
        self.vocab_size = vocab_size

    def forward(self, x: Tensor, state: Any = None) -> tuple[Tensor, Any]:
        out, state = self.rnn(F.one_hot(x, self.vocab_size).float(), state)
        return self.head(out), state


@torch.no_grad()
def generate(model: nn.Module, prefix: Tensor, n: int, *, temperature: float = 1.0,
             generator: torch.Generator | None = None) -> Tensor:
    """Continue ``prefix`` (Tensor[P] ids, P >= 1) by ``n`` tokens sampled from
    ``softmax(logits / temperature)`` (``temperature=0``: the most likely token).

    The prefix is read in one call (warm-up), then one token at a time is fed back.
    Returns Tensor[P + n] int64.
    """
    _check_prefix(prefix)
    device = next(model.parameters()).device
    out = prefix.to(device).tolist()
    logits, state = model(prefix.to(device)[None], None)
    for _ in range(n):
        last = logits[0, -1]
        if temperature == 0:
            token = int(last.argmax())
        else:
            p = torch.softmax(last / temperature, -1).cpu()
            token = int(torch.multinomial(p, 1, generator=generator))
        out.append(token)
        logits, state = model(torch.tensor([[token]], device=device), state)
    return torch.tensor(out)


def _check_prefix(prefix: Tensor) -> None:
    if prefix.ndim != 1 or len(prefix) < 1:
        raise ValueError(f"prefix must be a non-empty 1-D tensor of ids, got shape {tuple(prefix.shape)}")


def copy_torch_weights(ours: Recurrent, theirs: nn.RNNBase) -> Recurrent:
    """Load ``theirs``' (an ``nn.RNN``, ``nn.LSTM`` or ``nn.GRU``) weights into ``ours``
    (same kind, sizes and layers; no peepholes or coupling). Returns ``ours``."""
    kinds = {nn.RNN: "rnn", nn.LSTM: "lstm", nn.GRU: "gru"}
    if kinds.get(type(theirs)) != ours.kind or theirs.num_layers != len(ours.cells) or theirs.bidirectional:
        raise ValueError(f"cannot copy a {type(theirs).__name__} ({theirs.num_layers} layers) into "
                         f"{len(ours.cells)} {ours.kind} cells")
    with torch.no_grad():
        for k, cell in enumerate(ours.cells):
            if cell.ih.weight.shape != getattr(theirs, f"weight_ih_l{k}").shape:
                raise ValueError(f"layer {k}: sizes differ, {tuple(cell.ih.weight.shape)} vs "
                                 f"{tuple(getattr(theirs, f'weight_ih_l{k}').shape)}")
            for ours_p, name in ((cell.ih.weight, "weight_ih"), (cell.hh.weight, "weight_hh"),
                                 (cell.ih.bias, "bias_ih"), (cell.hh.bias, "bias_hh")):
                ours_p.copy_(getattr(theirs, f"{name}_l{k}"))
    return ours
