"""Optimising an input instead of a network: :class:`Pixels` and :class:`ClosureStep`.

For style transfer (Gatys et al.) or feature visualisation, the "model" that
:func:`~d2lcv.engine.fit` trains is an image: :class:`Pixels` holds it as a parameter,
and the loss is a function of it through a frozen network. L-BFGS needs a closure that
re-evaluates the loss; :class:`ClosureStep` gives it one (through
:meth:`Context.optimize(closure=...) <d2lcv.engine.context.Context.optimize>`) and
reports the first evaluation's metrics, i.e. the loss at the start of the step::

    x = Pixels(content)                                   # Tensor[1, 3, H, W]
    opt = torch.optim.LBFGS(x.parameters(), max_iter=1, line_search_fn="strong_wolfe")
    step = ClosureStep(lambda model, _: loss_and_parts(model()),
                       project=lambda model: model.image.clamp_(0, 1))
    log = StepLog()
    fit(x, range(steps), epochs=1, step=step, optimizer=opt, device=content.device,
        amp=False, callbacks=[log])
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor, nn

from .context import Context
from .steps import Step, StepOutput, weighted_sums

__all__ = ["Pixels", "ClosureStep"]


class Pixels(nn.Module):
    """A tensor to optimise, as a module: ``forward()`` returns it.

    Args:
        init: the starting value (e.g. an image Tensor[1, 3, H, W] in [0, 1]); it is
            copied (contiguous) into the parameter :attr:`image`, so ``init`` is not changed.
    """

    def __init__(self, init: Tensor) -> None:
        super().__init__()
        if not isinstance(init, Tensor) or not init.is_floating_point():
            got = init.dtype if isinstance(init, Tensor) else type(init).__name__
            raise ValueError(f"init must be a floating-point tensor, got {got}")
        self.image = nn.Parameter(init.detach().clone(memory_format=torch.contiguous_format))

    def forward(self) -> Tensor:
        return self.image

    def extra_repr(self) -> str:
        return f"shape={tuple(self.image.shape)}"


class ClosureStep(Step):
    """A step whose optimizer may evaluate the loss several times (L-BFGS), through a closure.

    Each training batch is one optimizer step ``optimizer.step(closure)``; each call of the
    closure runs ``fn(model, batch)`` (gradients zeroed before, back-propagated and clipped
    after, see :meth:`Context.optimize`). Works with any optimizer (Adam calls the closure
    once). The reported metrics are those of the *first* evaluation (the loss before the
    step) plus ``evals``, how many evaluations the step took.

    Args:
        fn: ``fn(model, batch) -> (loss Tensor[], {name: value})``; values are numbers or
            0-d tensors, per step (or batch means with ``size``).
        project: ``project(model)``, run under ``torch.no_grad()`` after every step, e.g.
            clamping the pixels to [0, 1] (projected gradient descent).
        size: ``size(batch) -> int``, what the metrics are weighted by (default 1: per step).
        loss_name: the name the loss is reported under; ``None`` when ``fn``'s metrics
            already hold it.
    """

    def __init__(
        self,
        fn: Callable[[nn.Module, Any], tuple[Tensor, Mapping[str, Any]]],
        *,
        project: Callable[[nn.Module], Any] | None = None,
        size: Callable[[Any], int] | None = None,
        loss_name: str | None = "loss",
    ) -> None:
        if not callable(fn):
            raise ValueError(f"fn must be callable, got {type(fn).__name__}")
        for arg, value in (("project", project), ("size", size)):
            if value is not None and not callable(value):
                raise ValueError(f"{arg} must be callable or None, got {type(value).__name__}")
        self.fn, self.project, self.size, self.loss_name = fn, project, size, loss_name

    def _values(self, loss: Tensor, metrics: Mapping[str, Any]) -> dict[str, Any]:
        return {self.loss_name: loss, **metrics} if self.loss_name is not None else dict(metrics)

    def update(self, model: nn.Module, batch: Any, ctx: Context) -> StepOutput:
        batch = ctx.to_device(batch)
        evaluations: list[dict[str, Any]] = []

        def closure() -> Tensor:
            loss, metrics = self.fn(model, batch)
            evaluations.append(self._values(loss.detach(), metrics))
            return loss

        loss = ctx.optimize(closure=closure)
        if self.project is not None:
            with torch.no_grad():
                self.project(model)
        n = 1 if self.size is None else self.size(batch)
        return StepOutput(loss, weighted_sums({**evaluations[0], "evals": len(evaluations)}, n), n)

    def loss(self, model: nn.Module, batch: Any, ctx: Context) -> StepOutput:
        batch = ctx.to_device(batch)
        loss, metrics = self.fn(model, batch)
        n = 1 if self.size is None else self.size(batch)
        return StepOutput(loss, weighted_sums(self._values(loss, metrics), n), n)
