"""Adding up a pass's metrics over batches and processes."""

from __future__ import annotations

from typing import Any

import torch

from .distributed import all_reduce_sum, is_distributed
from .steps import Step, StepOutput

__all__ = ["Totals"]


class Totals:
    """Running sums of the metrics of a pass and the number of examples they are over.

    Python numbers add up as Python floats, 0-d tensors as tensors (in their dtype and on
    their device, no sync per batch); :meth:`means` all-reduces over processes and divides.
    """

    def __init__(self) -> None:
        self.sums: dict[str, Any] = {}
        self.n = 0

    def add(self, out: StepOutput) -> None:
        """Add one batch's :class:`~d2lcv.engine.steps.StepOutput`."""
        for k, v in out.sums.items():
            self.sums[k] = self.sums[k] + v if k in self.sums else 0.0 + v
        self.n += out.n

    def means(self, device: torch.device, step: Step | None = None) -> dict[str, float]:
        """``{name: sum / n}`` over all processes, then ``step.finalize``.

        Raises:
            ValueError: no examples (an empty loader).
        """
        keys = list(self.sums)
        values: list[Any] = [self.sums[k] for k in keys]
        n: float = self.n
        if is_distributed():
            *values, n = all_reduce_sum([*values, float(self.n)], device)
        if n == 0:
            raise ValueError("the loader yielded no examples")
        means = {k: float(v / n) for k, v in zip(keys, values)}
        return step.finalize(means) if step is not None else means
