"""Sequence models: truncated backpropagation through time with a carried state
(:class:`TBPTTStep`), gradient clipping by global norm written out (:func:`clip_grad_norm`),
and CTC training for reading strings (:class:`CTCStep`)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from d2lcv.ops.ctc import ctc_greedy_decode

from .context import Context
from .steps import Step, StepOutput

__all__ = ["TBPTTStep", "detach_state", "clip_grad_norm", "CTCStep"]


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
        carry: carry the state from batch to batch in training; ``False`` starts every
            training batch from ``None`` (for random partitioning, where consecutive batches
            are unrelated). Evaluation always carries it.
    """

    def __init__(self, loss_fn: Callable[[Tensor, Tensor], Tensor] = F.cross_entropy, carry: bool = True) -> None:
        if not callable(loss_fn):
            raise ValueError(f"loss_fn must be callable, got {type(loss_fn).__name__}")
        self.loss_fn, self.carry = loss_fn, carry
        self.state: Any = None

    def reset(self, ctx: Context) -> None:
        self.state = None

    def loss(self, model: nn.Module, batch: Any, ctx: Context) -> StepOutput:
        x, y = (t.to(ctx.device, non_blocking=True) for t in batch)
        logits, state = model(x, self.state)
        carry = self.carry or not ctx.training
        self.state = detach_state(state) if carry else None  # no gradient flows back
        if logits.shape[:-1] != y.shape:
            y_shape = ", ".join(map(str, y.shape))
            raise ValueError(f"logits must be [*y.shape, V] = [{y_shape}, V], "
                             f"got {tuple(logits.shape)}")
        loss = self.loss_fn(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        n = y.numel()
        return StepOutput(loss, {"loss": loss.item() * n}, n)

    def finalize(self, means: dict[str, float]) -> dict[str, float]:
        return {**means, "ppl": math.exp(means["loss"]) if means["loss"] < 700 else math.inf}


def clip_grad_norm(parameters: Iterable[Tensor], max_norm: float) -> float:
    """Rescale all gradients together so that their global L2 norm is at most
    ``max_norm`` (Pascanu et al., 2013): ``g <- g * max_norm / ||g||`` when
    ``||g|| > max_norm``. Same result as ``torch.nn.utils.clip_grad_norm_``;
    returns the norm before clipping."""
    if not max_norm > 0:
        raise ValueError(f"max_norm must be positive, got {max_norm!r}")
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return 0.0
    norm = torch.sqrt(sum((g.detach().float() ** 2).sum() for g in grads))
    scale = (max_norm / (norm + 1e-6)).clamp(max=1.0)  # torch's 1e-6 guards a zero norm
    for g in grads:
        g.detach().mul_(scale.to(g.dtype))
    return float(norm)


class CTCStep(Step):
    """Reading strings with CTC: the network outputs a class per column, ``F.ctc_loss``
    sums over the alignments of the target to the columns.

    Batches are ``(x, targets, lengths)``: inputs (e.g. Tensor[B, 3, H, W]), targets
    Tensor[B, S] int64 (labels 1..C-1, padded after ``lengths[b]`` with anything) and
    lengths Tensor[B]. The model returns logits Tensor[B, T, C] (class ``blank`` = the blank).
    Reports ``loss`` (CTC, mean over the batch of the per-string loss divided by its length,
    as ``F.ctc_loss``'s default) and ``acc``, the fraction of strings read exactly right by
    greedy decoding.
    """

    def __init__(self, blank: int = 0) -> None:
        if blank < 0:
            raise ValueError(f"blank must be a class index >= 0, got {blank}")
        self.blank = blank

    def loss(self, model: nn.Module, batch: Any, ctx: Context) -> StepOutput:
        x, targets, lengths = ctx.to_device(batch)
        log_probs = model(x).float().log_softmax(-1)  # [B, T, C]
        B, T, _ = log_probs.shape
        columns = torch.full((B,), T, dtype=torch.int64)  # every column is used
        loss = F.ctc_loss(log_probs.transpose(0, 1), targets, columns, lengths,
                          blank=self.blank, zero_infinity=True)
        reads = ctc_greedy_decode(log_probs.detach(), self.blank)
        truth = [t[:n] for t, n in zip(targets.tolist(), lengths.tolist())]
        right = sum(r == t for r, t in zip(reads, truth))
        return StepOutput(loss, {"loss": loss.item() * B, "acc": float(right)}, B)
