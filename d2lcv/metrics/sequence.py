"""Scores for sequence models: perplexity of a language model, and for reading strings the
character error rate (edit distance) and whole-string accuracy."""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import Tensor

__all__ = ["perplexity", "edit_distance", "char_error_rate", "string_accuracy"]


def perplexity(mean_nll: float | Tensor) -> float:
    """``exp`` of the mean negative log-likelihood per token (natural log): the number of
    equally likely tokens the model is, on average, as unsure as. 1 is a perfect model; a
    uniform guess over V tokens scores V."""
    value = float(mean_nll)
    if value < 0 or math.isnan(value):
        raise ValueError(f"mean_nll must be a mean negative log-likelihood >= 0, got {value}")
    return math.exp(value) if value < 700 else math.inf


def edit_distance(a: Sequence, b: Sequence) -> int:
    """Levenshtein distance: the fewest insertions, deletions and substitutions that turn
    ``a`` into ``b`` (dynamic programming, one row at a time)."""
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (x != y))
    return row[-1]


def _pairs(preds: Sequence[str], targets: Sequence[str]) -> None:
    if len(preds) != len(targets):
        raise ValueError(f"preds and targets must have the same length, got {len(preds)} and {len(targets)}")


def char_error_rate(preds: Sequence[str], targets: Sequence[str]) -> float:
    """Total edit distance over total target length (can exceed 1); NaN when empty."""
    _pairs(preds, targets)
    chars = sum(len(t) for t in targets)
    return sum(edit_distance(p, t) for p, t in zip(preds, targets)) / chars if chars else math.nan


def string_accuracy(preds: Sequence[str], targets: Sequence[str]) -> float:
    """The fraction of strings read exactly right; NaN when empty."""
    _pairs(preds, targets)
    return sum(p == t for p, t in zip(preds, targets)) / len(targets) if targets else math.nan
