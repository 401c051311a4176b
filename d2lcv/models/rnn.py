"""Recurrent cells from scratch: the plain RNN, the LSTM (with peephole and coupled-gate
variants) and the GRU. One call is one time step: ``cell(x, state) -> (h, state)``.

The weights are laid out as in ``torch.nn.RNN/LSTM/GRU`` (``ih`` acts on the input, ``hh``
on the previous hidden state, gates stacked in torch's order), so that
:func:`~d2lcv.models.copy_torch_weights` can load a torch module's weights and the outputs
can be compared with torch's.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["RNNCell", "LSTMCell", "GRUCell", "make_cell", "CELLS"]


class _Cell(nn.Module):
    """Shared parts: ``ih`` (input -> gates) and ``hh`` (hidden -> gates), torch's init."""

    gates = 1

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        if input_size < 1 or hidden_size < 1:
            raise ValueError(f"input_size and hidden_size must be >= 1, got {input_size}, {hidden_size}")
        self.input_size, self.hidden_size = input_size, hidden_size
        self.ih = nn.Linear(input_size, self.gates * hidden_size)
        self.hh = nn.Linear(hidden_size, self.gates * hidden_size)
        bound = 1 / math.sqrt(hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def init_state(self, batch_size: int, device: Any = None) -> Any:
        """The state at t = 0: zeros, Tensor[B, hidden_size] (an LSTM: a pair of them)."""
        return torch.zeros(batch_size, self.hidden_size, device=device)


class RNNCell(_Cell):
    """The plain recurrence ``h_t = f(U x_t + W h_{t-1} + b)``, f = tanh or ReLU.

    ``U`` is ``ih.weight``, ``W`` is ``hh.weight``; ``b = ih.bias + hh.bias`` (two biases, as
    in torch). Input x Tensor[B, input_size], state h Tensor[B, hidden_size].
    """

    def __init__(self, input_size: int, hidden_size: int, nonlinearity: str = "tanh") -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        super().__init__(input_size, hidden_size)
        self.f = torch.tanh if nonlinearity == "tanh" else torch.relu

    def forward(self, x: Tensor, h: Tensor) -> tuple[Tensor, Tensor]:
        h = self.f(self.ih(x) + self.hh(h))
        return h, h


class LSTMCell(_Cell):
    """Long short-term memory: a cell state ``c`` written and read through gates.

    ``i, f, o`` (input, forget, output gates) are sigmoids and ``g`` (the candidate) a tanh
    of ``U x_t + W h_{t-1} + b``; then ``c_t = f * c_{t-1} + i * g`` and
    ``h_t = o * tanh(c_t)``. Options:

    * ``peephole``: the gates also see the cell state (Gers and Schmidhuber, 2000):
      ``i, f`` get ``+ p_i * c_{t-1}``, ``+ p_f * c_{t-1}``, ``o`` gets ``+ p_o * c_t``;
    * ``coupled``: no input gate, ``i = 1 - f``: what is forgotten is replaced.

    State ``(h, c)``, each Tensor[B, hidden_size]. :meth:`gates` returns the gate values.
    """

    def __init__(self, input_size: int, hidden_size: int, peephole: bool = False, coupled: bool = False) -> None:
        self.gates = 3 if coupled else 4
        super().__init__(input_size, hidden_size)
        self.peephole, self.coupled = peephole, coupled
        self.p = nn.Parameter(torch.zeros(3, hidden_size)) if peephole else None  # p_i, p_f, p_o

    def init_state(self, batch_size: int, device: Any = None) -> tuple[Tensor, Tensor]:
        zeros = torch.zeros(batch_size, self.hidden_size, device=device)
        return zeros, zeros

    def forward(self, x: Tensor, state: tuple[Tensor, Tensor]) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        h, c = self.step(x, state)[:2]
        return h, (h, c)

    def step(self, x: Tensor, state: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor, dict]:
        """One step and its gates: ``(h_t, c_t, {"input", "forget", "output", "cell"})``."""
        h, c = state
        z = self.ih(x) + self.hh(h)
        if self.coupled:
            zf, zg, zo = z.chunk(3, 1)
        else:
            zi, zf, zg, zo = z.chunk(4, 1)
        if self.peephole:
            zf = zf + self.p[1] * c
        f = torch.sigmoid(zf)
        if self.coupled:
            i = 1 - f
        else:
            i = torch.sigmoid(zi + self.p[0] * c if self.peephole else zi)
        c = f * c + i * torch.tanh(zg)
        o = torch.sigmoid(zo + self.p[2] * c if self.peephole else zo)
        h = o * torch.tanh(c)
        return h, c, {"input": i, "forget": f, "output": o, "cell": c}


class GRUCell(_Cell):
    """The gated recurrent unit, in torch's (and cuDNN's) form.

    ``r`` (reset) and ``z`` (update) are sigmoids of ``U x_t + W h_{t-1} + b``; the candidate
    ``n = tanh(U_n x_t + b_n + r * (W_n h_{t-1} + b'_n))``; ``h_t = (1 - z) * n + z * h_{t-1}``:
    ``z`` near 1 keeps the old state. State h Tensor[B, hidden_size].
    """

    gates = 3

    def forward(self, x: Tensor, h: Tensor) -> tuple[Tensor, Tensor]:
        h = self.step(x, h)[0]
        return h, h

    def step(self, x: Tensor, h: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """One step with its gates: ``(h_t, {"reset", "update"})``."""
        xr, xz, xn = self.ih(x).chunk(3, 1)
        hr, hz, hn = self.hh(h).chunk(3, 1)
        r = torch.sigmoid(xr + hr)
        z = torch.sigmoid(xz + hz)
        n = torch.tanh(xn + r * hn)
        return (1 - z) * n + z * h, {"reset": r, "update": z}


CELLS = {"rnn": RNNCell, "lstm": LSTMCell, "gru": GRUCell}
"""Cell classes by name."""


def make_cell(kind: str, input_size: int, hidden_size: int, **options: Any) -> nn.Module:
    """A cell by name: ``"rnn"`` (options ``nonlinearity``), ``"lstm"`` (``peephole``,
    ``coupled``) or ``"gru"``."""
    if kind not in CELLS:
        raise ValueError(f"cell must be one of {sorted(CELLS)}, got {kind!r}")
    return CELLS[kind](input_size, hidden_size, **options)
