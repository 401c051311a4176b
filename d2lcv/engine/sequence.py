"""Language models: truncated backpropagation through time with a carried state."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from .context import Context
from .steps import Step, StepOutput

__all__ = ["TBPTTStep", "detach_state"]


def detach_state(state: Any) -> Any:
    """``state`` with every tensor detached, through tuples and lists (an LSTM's ``(h, c)``)."""
    if isinstance(state, Tensor):
        return state.detach()
    if isinstance(state, (tuple, list)):
        return type(state)(detach_state(s) for s in state)
    return state


class TBPTTStep(Step):
    """Truncated backpropagation through time for a recurrent language model.

    The loader yields consecutive pieces of the same streams: batch ``k + 1``'s row ``b``
    continues batch ``k``'s row ``b`` (sequential partitioning), ``(x, y)`` with ``x``
    Tensor[B, T] int64 token ids and ``y`` Tensor[B, T] the next tokens. The model is called
    as ``model(x, state) -> (logits, new_state)`` with ``logits`` Tensor[B, T, V] (any
    ``[*y.shape, V]``) and ``state`` ``None`` at the start of a pass.

    The state is carried from batch to batch but *detached*: the gradient of a batch's loss
    stops at its first time step (truncation after T steps), so memory and time per batch
    do not grow. It is reset (to ``None``) at the start of every training epoch and every
    evaluation pass. All batches of a pass must have the same B (``drop_last=True``).

    Reports ``loss`` (mean cross-entropy per token, natural log) and ``ppl``, the
    perplexity ``exp(loss)`` of the epoch (not a mean of per-batch perplexities).

    Args:
        loss_fn: ``loss_fn(logits Tensor[N, V], targets Tensor[N])``, a mean over tokens.
    """

    def __init__(self, loss_fn: Callable[[Tensor, Tensor], Tensor] = F.cross_entropy) -> None:
        if not callable(loss_fn):
            raise ValueError(f"loss_fn must be callable, got {type(loss_fn).__name__}")
        self.loss_fn = loss_fn
        self.state: Any = None

    def reset(self, ctx: Context) -> None:
        self.state = None

    def loss(self, model: nn.Module, batch: Any, ctx: Context) -> StepOutput:
        x, y = (t.to(ctx.device, non_blocking=True) for t in batch)
        logits, state = model(x, self.state)
        self.state = detach_state(state)  # carried, but no gradient flows back into this batch
        if logits.shape[:-1] != y.shape:
            raise ValueError(f"logits must be [*y.shape, V] = [{', '.join(map(str, y.shape))}, V], "
                             f"got {tuple(logits.shape)}")
        loss = self.loss_fn(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        n = y.numel()
        return StepOutput(loss, {"loss": loss.item() * n}, n)

    def finalize(self, means: dict[str, float]) -> dict[str, float]:
        return {**means, "ppl": math.exp(means["loss"]) if means["loss"] < 700 else math.inf}
