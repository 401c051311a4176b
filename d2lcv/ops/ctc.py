"""Decoding the outputs of a network trained with CTC, connectionist temporal
classification (Graves et al., ICML 2006); the loss itself is ``torch.nn.functional.ctc_loss``.

A CTC network outputs, at each of T steps, a distribution over the C - 1 labels and a
*blank*. A path (one class per step) is read as a labelling by merging repeated classes and
then removing blanks: ``- 4 4 - 4 2 2`` is ``4 4 2`` (a blank separates the two 4s).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence

from torch import Tensor

__all__ = ["ctc_collapse", "ctc_greedy_decode", "ctc_beam_decode"]


def ctc_collapse(path: Sequence[int] | Tensor, blank: int = 0) -> list[int]:
    """The labelling a path stands for: repeats merged, then blanks removed."""
    out, prev = [], None
    for c in (path.tolist() if isinstance(path, Tensor) else path):
        if c != prev and c != blank:
            out.append(int(c))
        prev = c
    return out


def _check(log_probs: Tensor, blank: int) -> None:
    if log_probs.ndim != 3:
        raise ValueError(f"log_probs must be [B, T, C], got shape {tuple(log_probs.shape)}")
    if not 0 <= blank < log_probs.shape[-1]:
        raise ValueError(f"blank must be a class index in [0, {log_probs.shape[-1]}), got {blank}")


def ctc_greedy_decode(log_probs: Tensor, blank: int = 0) -> list[list[int]]:
    """Best-path decoding: the most likely class at every step, collapsed.

    Args:
        log_probs (Tensor[B, T, C]): per-step scores (log-probabilities or logits: only the
            argmax matters).

    Returns:
        B labellings, lists of class indices (blank excluded).
    """
    _check(log_probs, blank)
    return [ctc_collapse(path, blank) for path in log_probs.argmax(-1)]


def _add(a: float, b: float) -> float:
    """log(exp(a) + exp(b))"""
    if a < b:
        a, b = b, a
    return a if b == -math.inf else a + math.log1p(math.exp(b - a))


def _beam_one(lp: list[list[float]], beam_width: int, blank: int) -> list[int]:
    beams = {(): (0.0, -math.inf)}  # prefix -> (log p ending in blank, log p ending in a label)
    for row in lp:
        nxt: dict[tuple[int, ...], list[float]] = defaultdict(lambda: [-math.inf, -math.inf])
        for prefix, (pb, pn) in beams.items():
            total = _add(pb, pn)
            nxt[prefix][0] = _add(nxt[prefix][0], total + row[blank])  # a blank: same prefix
            for c, p in enumerate(row):
                if c == blank:
                    continue
                if prefix and prefix[-1] == c:
                    nxt[prefix][1] = _add(nxt[prefix][1], pn + p)  # a repeat merges with the last label
                    nxt[prefix + (c,)][1] = _add(nxt[prefix + (c,)][1], pb + p)  # after a blank: a new label
                else:
                    nxt[prefix + (c,)][1] = _add(nxt[prefix + (c,)][1], total + p)
        best = sorted(nxt.items(), key=lambda kv: _add(*kv[1]), reverse=True)[:beam_width]
        beams = {k: (v[0], v[1]) for k, v in best}
    return list(max(beams.items(), key=lambda kv: _add(*kv[1]))[0])


def ctc_beam_decode(log_probs: Tensor, beam_width: int = 10, blank: int = 0) -> list[list[int]]:
    """Prefix beam search: the most likely *labelling*, summing over the paths that
    spell it, keeping the ``beam_width`` most likely prefixes at every step.

    Greedy decoding finds the most likely path, which need not spell the most likely
    labelling: many mediocre paths to one labelling can outweigh a single good path to
    another. With ``beam_width`` at least the number of labellings, the search is exact.

    Args:
        log_probs (Tensor[B, T, C]): log-probabilities (``log_softmax`` over C).
        beam_width: prefixes kept per step.

    Returns:
        B labellings, lists of class indices (blank excluded).
    """
    _check(log_probs, blank)
    if beam_width < 1:
        raise ValueError(f"beam_width must be >= 1, got {beam_width}")
    return [_beam_one(lp, beam_width, blank) for lp in log_probs.detach().double().cpu().tolist()]
