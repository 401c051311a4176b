"""Per-epoch records of a training run."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

__all__ = ["History"]


class History:
    """Per-epoch records of a training run, as plain floats.

    Each record is a dict with ``epoch`` (1-based), ``train_<metric>`` for every metric
    the step reports (``train_loss``, ``train_acc`` for classification), ``val_<metric>``
    (only with a validation loader), ``lr`` (of the first parameter group, at the start of
    the epoch; ``lr_<name>`` for each of several named optimisers) and ``time`` (seconds).

    ``history["val_acc"]`` is the list of one key over epochs, ``history.last`` the last
    record, ``history.records`` a list of dicts (``pandas.DataFrame(history.records)``
    makes a table). :meth:`state_dict` is plain lists and dicts, so it can go in a
    checkpoint that loads with ``torch.load(weights_only=True)``.

    Example::

        >>> h = History()
        >>> h.append(epoch=1, train_loss=0.5)
        >>> h["train_loss"], h.last["epoch"]
        ([0.5], 1.0)
    """

    def __init__(self, records: Iterable[dict[str, float]] = ()) -> None:
        self.records: list[dict[str, float]] = [dict(r) for r in records]

    def append(self, **values: Any) -> None:
        """Add one epoch's record; values (numbers or 0-d tensors) are stored as Python floats."""
        self.records.append({k: float(v) for k, v in values.items()})

    def __len__(self) -> int:
        return len(self.records)

    def __contains__(self, key: object) -> bool:
        return any(key in r for r in self.records)

    def __getitem__(self, key: str) -> list[float]:
        if key not in self:
            raise KeyError(f"history has no {key!r}; it has {self.keys()}")
        return [r[key] for r in self.records if key in r]

    def keys(self) -> list[str]:
        """The keys of all records, in first-seen order."""
        return list(dict.fromkeys(k for r in self.records for k in r))

    @property
    def last(self) -> dict[str, float]:
        """The record of the last epoch."""
        if not self.records:
            raise IndexError("history is empty: no epoch has finished")
        return self.records[-1]

    @property
    def epochs_done(self) -> int:
        """The number of the last finished epoch: the last record's ``epoch`` (its count of
        records if it has none), 0 when empty. :func:`~d2lcv.engine.fit` continues from it."""
        if not self.records:
            return 0
        return int(self.records[-1].get("epoch", len(self.records)))

    def state_dict(self) -> dict[str, list[dict[str, float]]]:
        """``{"records": [...]}``, plain lists and dicts of floats."""
        return {"records": [dict(r) for r in self.records]}

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> History:
        """The inverse of :meth:`state_dict`."""
        return cls(state["records"])

    def __repr__(self) -> str:
        keys = self.keys()
        rows = ["  ".join(f"{k:>10}" for k in keys)]
        for r in self.records:
            rows.append("  ".join(_fmt(k, r.get(k, math.nan)) for k in keys))
        return "\n".join(rows)


def _fmt(key: str, value: float) -> str:
    if key == "epoch" and math.isfinite(value):
        return f"{int(value):>10d}"
    return f"{value:>10.3g}" if key == "lr" or key.startswith("lr_") else f"{value:>10.4f}"
