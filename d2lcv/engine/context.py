"""What a step sees of the run: the :class:`Context` (device, optimisers, AMP, clipping)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from .history import History

__all__ = ["Context", "amp_setup"]


def amp_setup(amp: bool | None, device: torch.device) -> tuple[torch.dtype | None, torch.amp.GradScaler | None]:
    """The autocast dtype and the ``GradScaler`` for ``amp`` on ``device``.

    ``None`` means on for CUDA and off elsewhere. On CUDA: bfloat16 where supported, else
    float16 with a ``GradScaler``; ``True`` elsewhere (the CPU): bfloat16, no scaler.
    """
    if amp is None:
        amp = device.type == "cuda"
    if not amp:
        return None, None
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return torch.float16, torch.amp.GradScaler("cuda")
    return torch.bfloat16, None


@dataclass(eq=False)
class Context:
    """The state of a run that a :class:`~d2lcv.engine.steps.Step` and callbacks see.

    :func:`~d2lcv.engine.fit` builds one per call; a step uses :meth:`autocast`,
    :meth:`to_device` and :meth:`optimize`, so it needs to know nothing of AMP, gradient
    scaling, clipping or per-batch schedules.

    Attributes:
        model: the model being trained (wrapped in ``DistributedDataParallel`` under a
            process group).
        device: where the model and the batches are.
        optimizers: ``{name: optimizer}``; a single optimizer is named ``"default"``.
        schedulers: ``{optimizer name: scheduler}``.
        scheduler_interval: ``"batch"``: :meth:`optimize` steps the optimizer's scheduler
            after each optimizer step; ``"epoch"``: :func:`~d2lcv.engine.fit` does, after each epoch.
        amp_dtype: the autocast dtype (``None``: full precision); scaler: a float16
            ``GradScaler`` or ``None``; grad_clip: the max global L2 norm of each
            optimizer's gradients, or ``None``.
        history: the run's :class:`~d2lcv.engine.History` (``None`` outside ``fit``).
        epoch: the 0-based index of the current epoch.
        iteration: training batches finished in this call of ``fit``.
        training: True during a training pass, False during evaluation.
        stop: set it in a callback to end ``fit`` after the current epoch.
    """

    model: nn.Module
    device: torch.device
    optimizers: dict[str, torch.optim.Optimizer] = field(default_factory=dict)
    schedulers: dict[str, Any] = field(default_factory=dict)
    scheduler_interval: str = "epoch"
    amp_dtype: torch.dtype | None = None
    scaler: torch.amp.GradScaler | None = None
    grad_clip: float | None = None
    history: History | None = None
    epoch: int = 0
    iteration: int = 0
    training: bool = False
    stop: bool = False

    @property
    def optimizer(self) -> torch.optim.Optimizer:
        """The optimizer, when there is exactly one."""
        return self.optimizers[self._name(None)]

    def autocast(self) -> torch.autocast:
        """``torch.autocast`` to :attr:`amp_dtype` (a disabled one without AMP)."""
        return torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None)

    def to_device(self, batch: Any) -> Any:
        """``batch`` with every tensor moved to :attr:`device` (``non_blocking=True``), through
        tuples, lists and dicts; anything else is returned as it is."""
        if isinstance(batch, Tensor):
            return batch.to(self.device, non_blocking=True)
        if isinstance(batch, Mapping):
            return type(batch)({k: self.to_device(v) for k, v in batch.items()})
        if isinstance(batch, tuple) and hasattr(batch, "_fields"):  # a NamedTuple
            return type(batch)(*(self.to_device(v) for v in batch))
        if isinstance(batch, (tuple, list)):
            return type(batch)(self.to_device(v) for v in batch)
        return batch

    def optimize(
        self,
        loss: Tensor | None = None,
        *,
        closure: Callable[[], Tensor] | None = None,
        name: str | None = None,
    ) -> Tensor:
        """One optimizer step on ``loss``, or with ``closure`` for L-BFGS-like optimizers.

        With ``loss``: ``zero_grad(set_to_none=True)``, backward (through the
        ``GradScaler``, then unscaling, if there is one), ``clip_grad_norm_``, the
        optimizer step (``scaler.step`` and ``scaler.update``), then the optimizer's
        scheduler when :attr:`scheduler_interval` is ``"batch"``.

        With ``closure``: ``closure()`` computes the loss (forward only, run here under
        :meth:`autocast`); each time the optimizer calls it, gradients are zeroed, the
        loss is back-propagated and clipped. ``optimizer.step`` may call it several times
        (L-BFGS's line search).

        Args:
            loss (Tensor[]): the scalar to minimise, with its graph.
            closure: ``() -> Tensor[]``, instead of ``loss``.
            name: which optimizer (may be left out when there is only one).

        Returns:
            ``loss``, or what ``optimizer.step(closure)`` returns (the first evaluation's loss).
        """
        if (loss is None) == (closure is None):
            raise ValueError(f"optimize needs a loss or a closure, not both or neither; got "
                             f"loss={type(loss).__name__}, closure={type(closure).__name__}")
        name = self._name(name)
        opt, scaler = self.optimizers[name], self.scaler
        if closure is None:
            opt.zero_grad(set_to_none=True)
            self._backward(loss, opt)
            if scaler is not None:
                scaler.step(opt)
                scaler.update()
            else:
                opt.step()
        else:
            if scaler is not None:
                raise ValueError("a GradScaler (float16 AMP) cannot step with a closure; use amp=False or bfloat16")

            def run() -> Tensor:
                opt.zero_grad(set_to_none=True)
                with self.autocast():
                    value = closure()
                self._backward(value, opt)
                return value

            loss = opt.step(run)
        scheduler = self.schedulers.get(name)
        if scheduler is not None and self.scheduler_interval == "batch":
            scheduler.step()
        return loss

    def _name(self, name: str | None) -> str:
        if name is None:
            if len(self.optimizers) != 1:
                raise ValueError(f"there are {len(self.optimizers)} optimizers {sorted(self.optimizers)}; "
                                 f"name the one to step, got name=None")
            return next(iter(self.optimizers))
        if name not in self.optimizers:
            raise ValueError(f"no optimizer named {name!r}; the optimizers are {sorted(self.optimizers)}")
        return name

    def _backward(self, loss: Tensor, opt: torch.optim.Optimizer) -> None:
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(opt)  # clip the true gradients, not the scaled ones
        else:
            loss.backward()
        if self.grad_clip is not None:
            nn.utils.clip_grad_norm_(self._clip_params(opt), self.grad_clip)

    def _clip_params(self, opt: torch.optim.Optimizer) -> list[Tensor]:
        """The optimizer's parameters, in the model's order when they all belong to it (so
        that one optimizer over the whole model clips exactly as ``model.parameters()``)."""
        ids = {id(p) for group in opt.param_groups for p in group["params"]}
        ordered = [p for p in self.model.parameters() if id(p) in ids]
        if len(ordered) == len(ids):
            return ordered
        return list({id(p): p for group in opt.param_groups for p in group["params"]}.values())
