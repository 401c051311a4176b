"""Model surgery for fine-tuning: which parts of a network train, and a new classifier.

* A *stage* is a top-level child module that owns parameters or buffers: ``stem``,
  ``stage1`` ... ``stage4``, ``fc`` for :class:`d2lcv.models.ResNetCIFAR`; ``conv1``,
  ``bn1``, ``layer1`` ... ``layer4``, ``fc`` for torchvision's ResNets. It is the unit that
  :func:`freeze` freezes and that :func:`d2lcv.engine.param_groups` gives a learning rate.
* :func:`freeze` stops a stage's gradients and replaces its BatchNorm layers with
  ``torchvision.ops.FrozenBatchNorm2d`` (fixed statistics, whatever the model's mode);
  :func:`unfreeze` undoes both.
* :func:`get_head`, :func:`replace_head`: a new classifier for the target's classes;
  :func:`map_class_rows`, :func:`init_head_from_source`: start the rows of classes the
  source already knows from the source classifier's rows.

References: Yosinski et al., How transferable are features in deep neural networks?,
NeurIPS 2014; Kornblith et al., Do Better ImageNet Models Transfer Better?, CVPR 2019.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import torch
from torch import nn
from torchvision.ops import FrozenBatchNorm2d

__all__ = [
    "stage_names",
    "check_stages",
    "freeze",
    "unfreeze",
    "frozen_stages",
    "get_head",
    "replace_head",
    "map_class_rows",
    "init_head_from_source",
]

_HEAD_NAMES = ("fc", "classifier", "head")


def stage_names(model: nn.Module) -> list[str]:
    """The model's stages: its top-level children that own parameters or buffers, in order.

    ``["stem", "stage1", "stage2", "stage3", "stage4", "fc"]`` for
    :func:`d2lcv.models.resnet_cifar` (``pool`` owns nothing);
    ``["conv1", "bn1", "layer1", ..., "layer4", "fc"]`` for torchvision's ResNets.
    """
    return [name for name, child in model.named_children()
            if any(True for _ in child.parameters()) or any(True for _ in child.buffers())]


def check_stages(model: nn.Module, stages: str | Iterable[str]) -> list[str]:
    """``stages`` as a list of names, after checking each is one of :func:`stage_names`
    (a ``ValueError`` lists the valid ones)."""
    names = [stages] if isinstance(stages, str) else list(stages)
    valid = stage_names(model)
    for name in names:
        if name not in valid:
            raise ValueError(f"{type(model).__name__} has no stage {name!r}; its stages are {valid}")
    return names


def _frozen_bn(bn: nn.BatchNorm2d) -> FrozenBatchNorm2d:
    """A ``FrozenBatchNorm2d`` with ``bn``'s statistics, scale and shift (same device, dtype)."""
    frozen = FrozenBatchNorm2d(bn.num_features, eps=bn.eps).to(bn.running_mean.device)
    with torch.no_grad():
        frozen.running_mean.copy_(bn.running_mean)
        frozen.running_var.copy_(bn.running_var)
        frozen.weight.copy_(bn.weight if bn.affine else torch.ones_like(bn.running_mean))
        frozen.bias.copy_(bn.bias if bn.affine else torch.zeros_like(bn.running_mean))
    return frozen


def _thawed_bn(frozen: FrozenBatchNorm2d) -> nn.BatchNorm2d:
    """The trainable ``BatchNorm2d`` that ``frozen`` came from (momentum reset to 0.1)."""
    bn = nn.BatchNorm2d(frozen.weight.numel(), eps=frozen.eps).to(frozen.weight.device)
    with torch.no_grad():
        for name in ("running_mean", "running_var", "weight", "bias"):
            getattr(bn, name).copy_(getattr(frozen, name))
    return bn


def _swap_children(module: nn.Module, kind: type, make) -> None:
    for name, child in module.named_children():
        if isinstance(child, kind):
            setattr(module, name, make(child))
        else:
            _swap_children(child, kind, make)


def freeze(model: nn.Module, stages: str | Iterable[str]) -> nn.Module:
    """Stop training the given stages: no gradients for their parameters, and their
    ``BatchNorm2d`` layers replaced by ``torchvision.ops.FrozenBatchNorm2d``.

    A frozen BatchNorm must keep the source's statistics: in training mode an ordinary one
    would normalise with the statistics of each (small, target) batch and overwrite its
    running statistics, so the "frozen" stage would compute a different function even
    though none of its parameters change. ``FrozenBatchNorm2d`` always uses the stored
    statistics, in train and eval mode alike, as torchvision's detection models do.

    Args:
        model: any module; ``stages`` name its top-level children (see :func:`stage_names`).
        stages: one stage name or several.

    Returns:
        ``model``, modified in place.

    Raises:
        ValueError: a name that is not a stage; the message lists the valid ones.
    """
    for name in check_stages(model, stages):
        stage = getattr(model, name)
        if isinstance(stage, nn.BatchNorm2d):
            setattr(model, name, _frozen_bn(stage))
        else:
            _swap_children(stage, nn.BatchNorm2d, _frozen_bn)
            stage.requires_grad_(False)
    return model


def unfreeze(model: nn.Module, stages: str | Iterable[str] | None = None) -> nn.Module:
    """Undo :func:`freeze` for the given stages (None: all of them): gradients on, and
    ``FrozenBatchNorm2d`` layers back to trainable ``BatchNorm2d`` with the same values."""
    for name in check_stages(model, stage_names(model) if stages is None else stages):
        stage = getattr(model, name)
        if isinstance(stage, FrozenBatchNorm2d):
            setattr(model, name, _thawed_bn(stage))
        else:
            _swap_children(stage, FrozenBatchNorm2d, _thawed_bn)
            stage.requires_grad_(True)
    return model


def frozen_stages(model: nn.Module) -> list[str]:
    """The stages with no parameter that requires a gradient (a stage that is only a frozen
    BatchNorm has no parameters left, and counts as frozen)."""
    return [n for n in stage_names(model) if not any(p.requires_grad for p in getattr(model, n).parameters())]


def _head_name(model: nn.Module) -> str:
    for name in _HEAD_NAMES:
        head = getattr(model, name, None)
        if isinstance(head, nn.Linear):
            return name
    raise ValueError(
        f"{type(model).__name__} has no linear classifier named one of {_HEAD_NAMES}; "
        f"its children are {[n for n, _ in model.named_children()]}"
    )


def get_head(model: nn.Module) -> nn.Linear:
    """The model's final linear classifier (``fc``, ``classifier`` or ``head``)."""
    return getattr(model, _head_name(model))


def replace_head(model: nn.Module, num_classes: int) -> nn.Linear:
    """Put a new, freshly initialised ``nn.Linear(in_features, num_classes)`` in place of
    the classifier (same attribute, device and dtype).

    Returns:
        The new head; the old one is no longer part of ``model`` (take it with
        :func:`get_head` first to copy rows from it).
    """
    if (
        isinstance(num_classes, bool)
        or not isinstance(num_classes, int)
        or num_classes < 1
    ):
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
    name = _head_name(model)
    old = getattr(model, name)
    new = nn.Linear(old.in_features, num_classes, bias=old.bias is not None)
    new = new.to(device=old.weight.device, dtype=old.weight.dtype)
    setattr(model, name, new)
    return new


def map_class_rows(
    source_classes: Sequence[str], target_classes: Sequence[str], *, rename: Mapping[str, str] | None = None
) -> dict[int, int]:
    """Which target classes the source classifier already knows, as row indices.

    Args:
        source_classes: the source classifier's class names, row by row.
        target_classes: the new classifier's class names, row by row.
        rename: ``{target name: source name}`` for classes named differently in the two
            (e.g. ``{"hotdog": "hotdog, hot dog, red hot"}``).

    Returns:
        ``{target row: source row}`` for every target class found in the source (after
        ``rename``), in target order; classes the source does not know are left out.

    Raises:
        ValueError: duplicate names, or a ``rename`` entry naming a class that is not a
            target (or not a source) class; the message lists the valid names.
    """
    for what, names in (("source_classes", source_classes), ("target_classes", target_classes)):
        if len(set(names)) != len(names):
            raise ValueError(f"{what} has duplicate names: {sorted({n for n in names if list(names).count(n) > 1})}")
    rename = dict(rename or {})
    for t, s in rename.items():
        if t not in target_classes:
            raise ValueError(f"rename names target class {t!r}, which is not one of {list(target_classes)}")
        if s not in source_classes:
            raise ValueError(f"rename maps {t!r} to {s!r}, which is not a source class; choose one of "
                             f"{list(source_classes)}")
    row = {name: i for i, name in enumerate(source_classes)}
    return {t: row[rename.get(name, name)] for t, name in enumerate(target_classes) if rename.get(name, name) in row}


@torch.no_grad()
def init_head_from_source(
    new_head: nn.Linear, old_head: nn.Linear, mapping: Mapping[int, int]
) -> nn.Linear:
    """Copy the source classifier's rows (weight row and bias) into the new classifier.

    For each ``t -> s`` in ``mapping``: ``new.weight[t] = old.weight[s]`` and
    ``new.bias[t] = old.bias[s]``; the other rows of ``new_head`` are left as they are.

    Args:
        new_head: ``nn.Linear(D, C_target)``, modified in place.
        old_head: ``nn.Linear(D, C_source)``, the source classifier.
        mapping: ``{target row: source row}``, e.g. from :func:`map_class_rows`.

    Returns:
        ``new_head``.
    """
    if new_head.in_features != old_head.in_features:
        raise ValueError(
            f"the heads read different features: new {new_head.in_features}, "
            f"old {old_head.in_features}"
        )
    for t, s in mapping.items():
        if not (0 <= t < new_head.out_features and 0 <= s < old_head.out_features):
            raise ValueError(
                f"row mapping {t} -> {s} is out of range: new head has "
                f"{new_head.out_features} "
                f"rows, old head {old_head.out_features}"
            )
    if not mapping:
        return new_head
    t_rows = torch.tensor(list(mapping.keys()))
    s_rows = torch.tensor(list(mapping.values())).to(old_head.weight.device)
    new_head.weight[t_rows.to(new_head.weight.device)] = old_head.weight[s_rows].to(
        new_head.weight
    )
    if new_head.bias is not None and old_head.bias is not None:
        new_head.bias[t_rows.to(new_head.bias.device)] = old_head.bias[s_rows].to(
            new_head.bias
        )
    return new_head
