"""The Noto emoji as GAN training data: images on white, coarse groups, a split by base emoji,
and the features of a classifier for the Fréchet distance.

Many emoji come in variants (five skin tones, genders) that share their first codepoint.
:func:`split_by_base` keeps all variants of one emoji on the same side of a split, so that
held-out images are not near-copies of training images.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from PIL import Image
from torch import Tensor, nn

from d2lcv.data.images import emoji, emoji_codepoints

__all__ = ["EMOJI_GROUPS", "EMOJI_MEMBER", "emoji_base", "emoji_groups", "emoji_images", "split_by_base", "classifier_features"]

EMOJI_GROUPS: tuple[str, ...] = ("faces", "people", "animals", "food", "transport", "other")
"""The coarse groups of :func:`emoji_groups`, by Unicode ranges of the base codepoint:
faces (smileys), people (anything with a skin-tone modifier), animals, food, transport, other."""

EMOJI_MEMBER = "noto-emoji/png/72/emoji_u{}.png"
"""Where one emoji's PNG lies inside the Noto zip."""

_SKIN = {"1f3fb", "1f3fc", "1f3fd", "1f3fe", "1f3ff"}
_RANGES = {  # group -> inclusive ranges of the base codepoint
    "faces": ((0x1F600, 0x1F644), (0x1F910, 0x1F92F), (0x1F970, 0x1F97A)),
    "animals": ((0x1F400, 0x1F43F), (0x1F980, 0x1F9AE)),
    "food": ((0x1F345, 0x1F37F), (0x1F950, 0x1F96F), (0x1F9C0, 0x1F9CB)),
    "transport": ((0x1F680, 0x1F6FF),),
}


def emoji_base(codepoint: str) -> str:
    """The emoji a codepoint sequence is a variant of: its first codepoint (``"1f44b_1f3fb"``
    -> ``"1f44b"``), so that skin-tone and other variants share one base."""
    return codepoint.split("_")[0]


def _group(codepoint: str) -> int:
    parts = codepoint.split("_")
    if _SKIN & set(parts):
        return EMOJI_GROUPS.index("people")
    base = int(parts[0], 16)
    for name, ranges in _RANGES.items():
        if any(lo <= base <= hi for lo, hi in ranges):
            return EMOJI_GROUPS.index(name)
    return EMOJI_GROUPS.index("other")


def emoji_groups(codepoints: Sequence[str]) -> Tensor:
    """Tensor[N] (int64): each codepoint's index in :data:`EMOJI_GROUPS`."""
    return torch.tensor([_group(cp) for cp in codepoints], dtype=torch.long)


def split_by_base(codepoints: Sequence[str], fraction: float, *, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Indices (train, held out) with about ``fraction`` of the *base emoji* held out.

    All variants of a base emoji (see :func:`emoji_base`) fall on the same side.
    """
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    bases = sorted({emoji_base(cp) for cp in codepoints})
    order = torch.randperm(len(bases), generator=torch.Generator().manual_seed(seed)).tolist()
    held = {bases[i] for i in order[: round(fraction * len(bases))]}
    out = torch.tensor([emoji_base(cp) in held for cp in codepoints], dtype=torch.bool)
    return (~out).nonzero().flatten(), out.nonzero().flatten()


def _read_rgba(codepoints: list[str], size: int, download: bool | None) -> list[Image.Image]:
    """The emoji as RGBA images of ``size`` pixels (``data.emoji`` reads the zip in one pass)."""
    return emoji(codepoints, size=size, download=download)


def emoji_images(size: int = 32, codepoints: Sequence[str] | None = None, *, background: float = 1.0,
                 download: bool | None = None) -> tuple[Tensor, list[str]]:
    """The Noto emoji as a float tensor in [-1, 1], composited over a plain background.

    Args:
        size: the side in pixels (resized from 72 with bilinear filtering).
        codepoints: which emoji, as in the zip (e.g. ``"1f600"``; default: all, see
            :func:`~d2lcv.data.emoji_codepoints`).
        background: the grey level in [0, 1] behind the transparent pixels (1: white).

    Returns:
        (Tensor[N, 3, size, size] in [-1, 1], the N codepoints).
    """
    if not 0 <= background <= 1:
        raise ValueError(f"background must be in [0, 1], got {background}")
    if size < 1:
        raise ValueError(f"size must be positive, got {size}")
    cps = list(emoji_codepoints(download=download) if codepoints is None else codepoints)
    if not cps:
        return torch.zeros(0, 3, size, size), []
    rgba = torch.stack([torch.frombuffer(bytearray(im.tobytes()), dtype=torch.uint8).view(size, size, 4)
                        for im in _read_rgba(cps, size, download)]).permute(0, 3, 1, 2).float() / 255
    alpha = rgba[:, 3:]
    rgb = rgba[:, :3] * alpha + background * (1 - alpha)
    return rgb * 2 - 1, cps


def classifier_features(model: nn.Module, images: Tensor, *, layer: str = "fc", batch_size: int = 500) -> Tensor:
    """The inputs of ``model.<layer>`` (e.g. the features a classifier's last linear layer
    sees) for ``images`` Tensor[N, C, H, W], as Tensor[N, F]; the model is run in eval mode
    without gradients and left in the mode it was in."""
    module = getattr(model, layer, None)
    if not isinstance(module, nn.Module):
        raise ValueError(f"{type(model).__name__} has no submodule {layer!r}")
    grabbed: list[Tensor] = []
    hook = module.register_forward_pre_hook(lambda m, args: grabbed.append(args[0].flatten(1)))
    mode = model.training
    model.eval()
    try:
        with torch.no_grad():
            for batch in images.split(batch_size):
                model(batch)
    finally:
        hook.remove()
        model.train(mode)
    return torch.cat(grabbed) if grabbed else images.new_zeros(0, module.in_features if hasattr(module, "in_features") else 0)
