"""Optimizers and schedulers for :func:`~d2lcv.engine.fit`, and per-stage learning rates."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["DEFAULT", "OptimizerSpec", "make_optimizers", "make_schedulers", "param_groups"]

DEFAULT = "default"
"""The name of a single optimizer in :attr:`Context.optimizers <d2lcv.engine.context.Context>`."""
OptimizerSpec = torch.optim.Optimizer | Callable[..., torch.optim.Optimizer]


def make_optimizers(optimizer: Any, model: nn.Module) -> dict[str, torch.optim.Optimizer]:
    """``{name: optimizer}`` from :func:`~d2lcv.engine.fit`'s ``optimizer`` argument.

    Args:
        optimizer: an optimizer; a callable ``params -> optimizer`` (given
            ``model.parameters()``); ``None`` for SGD (lr 0.05, momentum 0.9, weight decay
            5e-4); or ``{name: optimizer or callable}``, a callable getting the parameters
            of the submodule ``model.<name>``. A single one is named :data:`DEFAULT`.

    Raises:
        TypeError: something that is neither an optimizer nor a callable.
        ValueError: an empty dict, or a callable for a submodule ``model`` lacks.
    """
    if optimizer is None:
        return {DEFAULT: torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)}
    if not isinstance(optimizer, Mapping):
        return {DEFAULT: _build(optimizer, model.parameters)}
    if not optimizer:
        raise ValueError("optimizer is an empty dict; give {name: optimizer or callable}")
    built = {}
    for name, spec in optimizer.items():
        part = getattr(model, str(name), None)
        if not isinstance(spec, torch.optim.Optimizer) and not isinstance(part, nn.Module):
            raise ValueError(f"optimizer {name!r} is not an Optimizer, so it needs the submodule model.{name}, "
                             f"which {type(model).__name__} does not have")
        built[str(name)] = _build(spec, lambda part=part: part.parameters())
    return built


def _build(spec: Any, params: Callable[[], Iterable[Tensor]]) -> torch.optim.Optimizer:
    if isinstance(spec, torch.optim.Optimizer):
        return spec
    if callable(spec):
        return spec(params())
    raise TypeError(f"optimizer must be an Optimizer, a callable or None, got {type(spec).__name__}")


def make_schedulers(scheduler: Any, optimizers: Mapping[str, torch.optim.Optimizer]) -> dict[str, Any]:
    """``{optimizer name: scheduler}`` from :func:`~d2lcv.engine.fit`'s ``scheduler`` argument:
    a scheduler or a callable ``optimizer -> scheduler`` (for the one optimizer, or, for a
    scheduler, the one it belongs to), ``{name: either}``, or ``None``."""
    if scheduler is None:
        return {}
    if isinstance(scheduler, Mapping):
        unknown = sorted(set(scheduler) - set(optimizers))
        if unknown:
            raise ValueError(f"schedulers {unknown} name no optimizer; the optimizers are {sorted(optimizers)}")
        return {name: _scheduler(s, optimizers[name]) for name, s in scheduler.items()}
    if len(optimizers) == 1:
        name, opt = next(iter(optimizers.items()))
        return {name: _scheduler(scheduler, opt)}
    owner = [n for n, opt in optimizers.items() if getattr(scheduler, "optimizer", None) is opt]
    if not owner:
        raise ValueError(f"with optimizers {sorted(optimizers)}, give scheduler as {{name: scheduler}}; "
                         f"got a {type(scheduler).__name__} of none of them")
    return {owner[0]: scheduler}


def _scheduler(spec: Any, optimizer: torch.optim.Optimizer) -> Any:
    if hasattr(spec, "step"):
        return spec
    if callable(spec):
        return spec(optimizer)
    raise ValueError(f"scheduler must be a scheduler, a callable optimizer -> scheduler or None, "
                     f"got {type(spec).__name__}")


def param_groups(model: nn.Module, lrs: Mapping[str, float]) -> list[dict[str, Any]]:
    """Optimizer parameter groups with one learning rate per stage (discriminative rates).

    A *stage* is a top-level child module that owns parameters
    (:func:`d2lcv.models.finetune.stage_names`).

    Args:
        model: the model; only parameters that require a gradient are included.
        lrs: ``{stage name: lr}``, plus ``"default"`` for every stage not named, e.g.
            ``{"fc": 10 * lr, "default": lr}`` (a new head learns faster than the pretrained body).

    Returns:
        ``[{"params": [...], "lr": float, "name": str}, ...]`` for ``torch.optim`` optimizers:
        one group per named stage, then the default group; groups without trainable
        parameters are left out.

    Raises:
        ValueError: an unknown stage name, or trainable stages left without a rate.

    Reference: Howard & Ruder, Universal Language Model Fine-tuning for Text
    Classification, ACL 2018 (discriminative fine-tuning).
    """
    from d2lcv.models.finetune import (  # models load only when used
        check_stages,
        stage_names,
    )

    named = check_stages(model, [k for k in lrs if k != "default"])
    groups, rest = [], []
    for name in stage_names(model):
        params = [p for p in getattr(model, name).parameters() if p.requires_grad]
        if name in named:
            groups.append({"params": params, "lr": float(lrs[name]), "name": name})
        elif params:
            rest.append((name, params))
    if rest and "default" not in lrs:
        raise ValueError(
            f"stages {[n for n, _ in rest]} are trainable but have no rate; add a "
            "'default' to lrs"
        )
    if rest:
        groups.append(
            {
                "params": [p for _, ps in rest for p in ps],
                "lr": float(lrs["default"]),
                "name": "default",
            }
        )
    return [g for g in groups if g["params"]]
