"""Pretrained torchvision weights through the book's cache, mirror and downloader, with an
explicit, announced fallback when no weights can be had (e.g. on an offline machine).

Lookup for a weights file ``<name>-<sha256 prefix>.pth`` (torchvision's naming):

1. torch.hub's own cache, ``$TORCH_HOME/hub/checkpoints/<name>`` (read only);
2. ``<cache>/weights/<name>``;
3. ``$D2LCV_MIRROR/weights/<name>`` (read only);
4. a download of the weights' official URL into ``<cache>/weights/``.

Each file is checked against the sha256 prefix in its name, as ``torch.hub`` does.

Example::

    model = load_pretrained("resnet18", fallback="random")
    model.d2lcv_weights   # 'torchvision ResNet18_Weights.IMAGENET1K_V1' or "fallback 'random': ..."
"""

from __future__ import annotations

import inspect
import re
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import torch
import torchvision
from torch import nn
from torchvision.models import WeightsEnum

from d2lcv.data import DatasetNotFoundError, cache_dir, check_file
from d2lcv.data import DatasetInfo, MirrorFile, Resource, fetch

__all__ = [
    "WeightsUnavailableError",
    "PretrainedWeightsWarning",
    "FALLBACKS",
    "resolve_weights",
    "weights_checksum",
    "weights_path",
    "pretrained_transforms",
    "load_pretrained",
]

_HASH = re.compile(r"-([a-f0-9]*)\.")  # torch.hub.HASH_REGEX
_EPS_ZERO = {  # torchvision sets FrozenBatchNorm eps to 0 for these (legacy) weights
    "FasterRCNN_ResNet50_FPN_Weights.COCO_V1", "MaskRCNN_ResNet50_FPN_Weights.COCO_V1",
    "KeypointRCNN_ResNet50_FPN_Weights.COCO_V1", "RetinaNet_ResNet50_FPN_Weights.COCO_V1",
}
_AUX = ("googlenet", "inception_v3")  # trained with aux heads and transform_input=True


class WeightsUnavailableError(RuntimeError):
    """No verified weights file could be found or downloaded, and no fallback was allowed."""


class PretrainedWeightsWarning(UserWarning):
    """A model was built with fallback weights instead of the pretrained ones asked for."""


def _random_init(arch: str, kwargs: dict[str, Any]) -> nn.Module:
    return _build(arch, None, kwargs)


FALLBACKS: Mapping[str, Callable[[str, dict[str, Any]], nn.Module]] = MappingProxyType({
    "random": _random_init,
})
"""Named fallbacks: ``name -> fn(arch, builder_kwargs) -> nn.Module``.
``"random"``: torchvision's default initialisation (no pretrained weights)."""
_FALLBACK_TEXT = {"random": "torchvision's default initialisation, no pretrained weights"}


def resolve_weights(arch: str, weights: str | WeightsEnum = "DEFAULT") -> WeightsEnum:
    """The torchvision weights enum member for ``arch``.

    Args:
        arch: a torchvision model name (``torchvision.models.list_models()``), e.g. ``"resnet18"``.
        weights: ``"DEFAULT"``, a member name (``"IMAGENET1K_V1"``), a full name
            (``"ResNet18_Weights.IMAGENET1K_V1"``), or a ``WeightsEnum`` member (used as is,
            e.g. one of your own for weights you host).
    """
    if isinstance(weights, WeightsEnum):
        return weights
    if arch not in torchvision.models.list_models():
        raise ValueError(f"arch must be a torchvision model name (see torchvision.models.list_models()), got {arch!r}")
    enum = torchvision.models.get_model_weights(arch)
    name = weights.split(".", 1)[1] if weights.startswith(enum.__name__ + ".") else weights
    try:
        return enum[name]
    except KeyError:
        choices = ["DEFAULT", *(m.name for m in enum)]  # iteration skips the DEFAULT alias
        raise ValueError(f"weights for {arch!r} must be one of {choices}, got {weights!r}") from None


def weights_checksum(filename: str) -> str | None:
    """``"sha256:<prefix>"`` from a torchvision/torch.hub file name such as
    ``resnet18-f37072fd.pth`` (None if the name carries no hash)."""
    m = _HASH.search(filename)
    return f"sha256:{m.group(1)}" if m and len(m.group(1)) >= 8 else None


def _weights_info(w: WeightsEnum) -> DatasetInfo:
    filename = w.url.rsplit("/", 1)[-1]
    checksum = weights_checksum(filename)
    if checksum is None:
        raise ValueError(f"cannot verify {w!r}: its file name {filename!r} carries no sha256 prefix")
    return DatasetInfo(
        name=f"weights/{filename}",
        description=f"torchvision {w!r}",
        licence=str(w.meta.get("license", "see torchvision's model documentation")),
        citation=str(w.meta.get("recipe", "torchvision")),
        homepage="https://pytorch.org/vision/stable/models.html",
        sources=(Resource(filename, w.url, checksum),),
        mirror=(MirrorFile(f"weights/{filename}", checksum),),
        folder="weights",
    )


def weights_path(
    arch: str, weights: str | WeightsEnum = "DEFAULT", *, download: bool | None = None, progress: bool = True
) -> Path:
    """The local path of a verified weights file (see the module docstring for the lookup).

    Raises:
        WeightsUnavailableError: nowhere to be found; says where a manual copy must go.
    """
    w = resolve_weights(arch, weights)
    info = _weights_info(w)
    hub = Path(torch.hub.get_dir()) / "checkpoints" / info.sources[0].filename
    if check_file(hub, info.sources[0].checksum) is None:
        return hub
    try:
        return fetch(info, download=download, progress=progress)
    except DatasetNotFoundError as err:
        raise WeightsUnavailableError(
            f"no weights for {arch!r} ({w!r}); torch.hub cache {hub}: {check_file(hub, info.sources[0].checksum)}\n"
            f"{err}"
        ) from None


def pretrained_transforms(arch: str, weights: str | WeightsEnum = "DEFAULT") -> Callable[..., Any]:
    """The preprocessing the weights were trained with (``weights.transforms()``): resize,
    crop, scale to [0, 1] and normalise; needs no weights file."""
    return resolve_weights(arch, weights).transforms()


def _build(arch: str, w: WeightsEnum | None, kwargs: dict[str, Any]) -> nn.Module:
    params = inspect.signature(torchvision.models.get_model_builder(arch)).parameters
    config: dict[str, Any] = {"weights": None}
    if "weights_backbone" in params:
        config["weights_backbone"] = None  # never fetch a backbone behind the caller's back
    categories = w.meta.get("categories") if w is not None else None
    if categories:
        given = kwargs.get("num_classes", len(categories))
        if given != len(categories):
            raise ValueError(
                f"num_classes={given} does not match the {len(categories)} categories of {w!r}; "
                f"load the weights first, then replace the head"
            )
        config["num_classes"] = len(categories)
    return torchvision.models.get_model(arch, **{**config, **kwargs})


def _load(arch: str, w: WeightsEnum, path: Path, kwargs: dict[str, Any]) -> nn.Module:
    kwargs = dict(kwargs)
    want_aux = kwargs.get("aux_logits", False)
    if arch in _AUX:  # as torchvision's googlenet()/inception_v3() do with weights
        kwargs.setdefault("transform_input", True)
        kwargs.update(aux_logits=True, init_weights=False)
    model = _build(arch, w, kwargs)
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    if arch in _AUX and not want_aux:
        model.aux_logits = False
        for name in ("aux1", "aux2", "AuxLogits"):
            if hasattr(model, name):
                setattr(model, name, None)
    if repr(w) in _EPS_ZERO:
        from torchvision.models.detection._utils import overwrite_eps

        overwrite_eps(model, 0.0)
    return model


def load_pretrained(
    arch: str,
    weights: str | WeightsEnum = "DEFAULT",
    *,
    fallback: str | Callable[[str, dict[str, Any]], nn.Module] | None = None,
    download: bool | None = None,
    progress: bool = True,
    **kwargs: Any,
) -> nn.Module:
    """A torchvision model with pretrained weights, or an announced fallback.

    Args:
        arch: a torchvision model name, e.g. ``"resnet18"`` (quantized models are not supported).
        weights: which weights (see :func:`resolve_weights`).
        fallback: what to build when no weights can be had: a name in :data:`FALLBACKS`
            (``"random"``), a callable ``fn(arch, kwargs) -> nn.Module``, or None to raise.
            A fallback is announced with a :class:`PretrainedWeightsWarning`.
        download: allow downloading; None means "unless ``$D2LCV_OFFLINE`` is set".
        progress: show a download progress bar.
        **kwargs: passed to the torchvision model builder (``num_classes`` must match the weights).

    Returns:
        The model (in training mode, like torchvision's builders), with attribute
        ``d2lcv_weights: str`` saying exactly what it holds: ``"torchvision
        ResNet18_Weights.IMAGENET1K_V1"`` or ``"fallback 'random': ..."``.

    Raises:
        WeightsUnavailableError: no weights and no fallback; says what was tried and
            where to put a manually downloaded file.
    """
    if arch.startswith("quantized_"):
        raise ValueError(f"quantized models are not supported, got arch={arch!r}")
    if isinstance(fallback, str) and fallback not in FALLBACKS:
        raise ValueError(f"fallback must be one of {sorted(FALLBACKS)}, a callable or None, got {fallback!r}")
    w = resolve_weights(arch, weights)
    try:
        path = weights_path(arch, w, download=download, progress=progress)
    except WeightsUnavailableError:
        if fallback is None:
            raise
        if isinstance(fallback, str):
            fn, label, what = FALLBACKS[fallback], fallback, _FALLBACK_TEXT.get(fallback, "")
        else:
            fn, label, what = fallback, getattr(fallback, "__name__", repr(fallback)), "user-supplied"
        model = fn(arch, _fallback_kwargs(w, kwargs))
        model.d2lcv_weights = f"fallback {label!r}: {what} ({w!r} unavailable)"
        info = _weights_info(w)
        reason = (
            f"To use them, put {cache_dir() / info.cache_folder / info.sources[0].filename} "
            f"(from {w.url}) or set $D2LCV_MIRROR to a folder holding {info.mirror[0].path}."
        )
        warnings.warn(
            f"{arch}: pretrained weights {w!r} are unavailable, so this model uses "
            f"fallback {label!r} ({what}); results will differ from the pretrained model's. {reason}",
            PretrainedWeightsWarning,
            stacklevel=2,
        )
        return model
    model = _load(arch, w, path, kwargs)
    model.d2lcv_weights = f"torchvision {w!r}"
    return model


def _fallback_kwargs(w: WeightsEnum, kwargs: dict[str, Any]) -> dict[str, Any]:
    # same output size as the pretrained model, so downstream code runs unchanged
    categories = w.meta.get("categories")
    return {"num_classes": len(categories), **kwargs} if categories else dict(kwargs)
