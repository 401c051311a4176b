"""Seeded subsets of a labelled dataset: class-balanced, or chosen classes relabelled."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

__all__ = ["balanced_indices", "class_indices"]


def balanced_indices(
    targets: Sequence[int] | np.ndarray | torch.Tensor,
    n: int,
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """A seeded, class-balanced random subset of indices.

    Each of the C classes present gets ``n // C`` indices, and the first ``n % C`` classes
    (by label) one more, drawn without replacement.

    Args:
        targets: int labels, shape [N].
        n: subset size, 0 <= n <= N; no class may have fewer examples than its share.
        generator: the source of randomness (None: torch's global generator).

    Returns:
        Tensor[n] (int64): indices into ``targets``, sorted ascending.
    """
    y = torch.as_tensor(np.asarray(targets), dtype=torch.int64)
    if y.ndim != 1:
        raise ValueError(f"targets must be 1-D, got shape {tuple(y.shape)}")
    if not 0 <= n <= len(y):
        raise ValueError(f"n must be in [0, {len(y)}], got {n}")
    classes = torch.unique(y)
    if n == 0 or len(classes) == 0:
        return torch.empty(0, dtype=torch.int64)
    share, extra = divmod(n, len(classes))
    picked = []
    for k, c in enumerate(classes.tolist()):
        pool = torch.nonzero(y == c).flatten()
        want = share + (k < extra)
        if want > len(pool):
            raise ValueError(f"class {c} has {len(pool)} examples, fewer than its share {want} of n={n}")
        picked.append(pool[torch.randperm(len(pool), generator=generator)[:want]])
    return torch.cat(picked).sort().values


def class_indices(
    targets: Sequence[int] | np.ndarray | torch.Tensor,
    classes: Sequence[int],
    n_per_class: int | None = None,
    *,
    generator: torch.Generator | None = None,
    from_end: bool = False,
) -> tuple[np.ndarray, torch.Tensor]:
    """Some classes of a dataset, relabelled ``0 .. len(classes) - 1`` in the order given.

    Per class, the examples are put in a random order drawn from ``generator``; the first
    ``n_per_class`` are taken, or the last ones with ``from_end=True``. The same seed thus
    gives disjoint examples to two tasks, one taking from the start and one from the end,
    as long as together they ask for at most the class's size.

    Args:
        targets: int labels, shape [N].
        classes: the labels to keep, in the order of the new labels.
        n_per_class: examples per class (None: all of them).

    Returns:
        ``(indices ndarray[M], new_labels Tensor[M] int64)``, class after class.
    """
    targets = np.asarray(targets)
    picked = []
    for c in classes:
        pool = np.flatnonzero(targets == c)
        order = pool[torch.randperm(len(pool), generator=generator).numpy()]
        n = len(order) if n_per_class is None else n_per_class
        if not 0 <= n <= len(order):
            raise ValueError(f"n_per_class must be in [0, {len(order)}] for class {c}, got {n}")
        picked.append(order[len(order) - n:] if from_end else order[:n])
    idx = np.concatenate(picked) if picked else np.empty(0, dtype=np.int64)
    labels = torch.arange(len(classes)).repeat_interleave(torch.tensor([len(p) for p in picked], dtype=torch.int64))
    return idx, labels
