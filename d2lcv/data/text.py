"""Text for language models: tokens, a vocabulary, and the iterator that cuts a long corpus
into minibatches of subsequences, with random or sequential partitioning (as in d2l)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator, Sequence

import torch
from torch import Tensor

__all__ = ["tokenize", "Vocab", "split_corpus", "LMLoader"]


def tokenize(text: str, level: str = "char") -> list[str]:
    """``text`` lower-cased, every run of non-letters made one space, then cut into
    characters (``level="char"``: 26 letters and the space) or words (``"word"``)."""
    if level not in ("char", "word"):
        raise ValueError(f"level must be 'char' or 'word', got {level!r}")
    clean = re.sub("[^a-z]+", " ", text.lower()).strip()
    return list(clean) if level == "char" else clean.split()


class Vocab:
    """Tokens <-> integer ids, most frequent first; id 0 is ``"<unk>"`` (unknown tokens).

    Args:
        tokens: the corpus's tokens (their counts order the vocabulary; ties alphabetically).
        min_freq: tokens seen fewer times map to ``"<unk>"``.
    """

    def __init__(self, tokens: Sequence[str], min_freq: int = 1) -> None:
        counts = Counter(tokens)
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        self.idx_to_token = ["<unk>"] + [t for t, c in ranked if c >= min_freq and t != "<unk>"]
        self.token_to_idx = {t: i for i, t in enumerate(self.idx_to_token)}

    def __len__(self) -> int:
        return len(self.idx_to_token)

    def encode(self, tokens: Sequence[str]) -> Tensor:
        """tokens -> ids (Tensor[N] int64)."""
        return torch.tensor([self.token_to_idx.get(t, 0) for t in tokens], dtype=torch.int64)

    def decode(self, ids: Sequence[int] | Tensor, sep: str = "") -> str:
        """ids -> the tokens joined by ``sep``."""
        return sep.join(self.idx_to_token[int(i)] for i in ids)


def split_corpus(ids: Tensor, val_fraction: float = 0.1) -> tuple[Tensor, Tensor]:
    """The first ``1 - val_fraction`` of the corpus for training, the rest for validation
    (a contiguous tail, so no validation text is seen in training)."""
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    n = round(len(ids) * (1 - val_fraction))
    return ids[:n], ids[n:]


class LMLoader:
    """Minibatches ``(X, Y)`` of ``batch_size`` subsequences of ``num_steps`` tokens, ``Y``
    being ``X`` shifted by one token (Tensor[B, T] int64 each).

    Every epoch starts at a random offset in ``[0, num_steps)`` (so subsequences do not always
    begin at the same tokens), then cuts the corpus into pieces of ``num_steps`` tokens:

    * ``"sequential"``: the corpus is cut into ``batch_size`` long streams and batch ``k + 1``
      continues batch ``k`` row by row, so a model may carry its state across batches
      (:class:`~d2lcv.engine.TBPTTStep`);
    * ``"random"``: the pieces are shuffled, so consecutive batches are unrelated and the
      state must start afresh for each batch.

    Args:
        corpus (Tensor[N]): token ids.
        random_offset: draw the offset each epoch (False: always 0, e.g. for validation).
        seed: seeds the offsets and the shuffling; the k-th epoch's batches depend only on it.
    """

    def __init__(self, corpus: Tensor, batch_size: int, num_steps: int, *, partition: str = "sequential",
                 random_offset: bool = True, seed: int = 0) -> None:
        if partition not in ("sequential", "random"):
            raise ValueError(f"partition must be 'sequential' or 'random', got {partition!r}")
        if batch_size < 1 or num_steps < 1:
            raise ValueError(f"batch_size and num_steps must be >= 1, got {batch_size}, {num_steps}")
        if corpus.ndim != 1 or len(corpus) < batch_size * num_steps + num_steps:
            raise ValueError(f"corpus must be a 1-D tensor of at least (batch_size + 1) * num_steps = "
                             f"{(batch_size + 1) * num_steps} tokens, got shape {tuple(corpus.shape)}")
        self.corpus, self.batch_size, self.num_steps = corpus, batch_size, num_steps
        self.partition, self.random_offset, self.seed, self.epoch = partition, random_offset, seed, 0

    def __len__(self) -> int:
        return (len(self.corpus) - self.num_steps) // (self.batch_size * self.num_steps)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        self.epoch += 1
        B, T, n = self.batch_size, self.num_steps, len(self)
        offset = int(torch.randint(T, (1,), generator=g)) if self.random_offset else 0
        if self.partition == "sequential":
            xs = self.corpus[offset:offset + B * n * T].view(B, n * T)
            ys = self.corpus[offset + 1:offset + 1 + B * n * T].view(B, n * T)
            for k in range(n):
                yield xs[:, k * T:(k + 1) * T], ys[:, k * T:(k + 1) * T]
        else:
            starts = offset + T * torch.randperm(B * n, generator=g)
            for k in range(n):
                s = starts[k * B:(k + 1) * B, None] + torch.arange(T)
                yield self.corpus[s], self.corpus[s + 1]
