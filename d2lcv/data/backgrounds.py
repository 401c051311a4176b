"""Backgrounds for generated scenes: random crops of real photos and paintings, or upscaled
CIFAR-10 images."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image

from .cifar10 import CIFAR10
from .images import CONTENT_PHOTOS, PAINTINGS, PHOTOS, content_photo, load_image, painting

__all__ = ["background_pools", "random_background"]


def background_pools(backgrounds: Sequence[str], download: bool | None) -> dict[str, Any]:
    """The pictures to crop backgrounds from; CIFAR-10 as ``{"train": images, "test": images}``."""
    pools: dict[str, Any] = {}
    if "photos" in backgrounds:
        pools["photos"] = [load_image(n, download=download) for n in PHOTOS] + [
            content_photo(n, download=download) for n in CONTENT_PHOTOS
        ]
    if "paintings" in backgrounds:
        pools["paintings"] = [painting(n, download=download) for n in PAINTINGS]
    if "cifar10" in backgrounds:
        pools["cifar10"] = {s: CIFAR10(s, download=download).data for s in ("train", "test")}
    return pools


def random_background(pools: dict[str, Any], size: int, rng: np.random.Generator) -> Image.Image:
    """A size x size RGB background: a random crop of a big picture, or an upscaled CIFAR image."""
    kinds = sorted(pools)
    kind = kinds[rng.integers(len(kinds))]
    if kind == "cifar10":
        images = pools[kind]  # uint8 [N, 32, 32, 3]
        img = Image.fromarray(images[rng.integers(len(images))])
        return img.resize((size, size), Image.Resampling.BICUBIC)
    pictures = pools[kind]
    img = pictures[rng.integers(len(pictures))]
    W, H = img.size
    side = int(rng.integers(min(size, W, H), min(W, H) + 1))  # crop side: from `size` px to the whole
    x, y = int(rng.integers(W - side + 1)), int(rng.integers(H - side + 1))
    crop = img.crop((x, y, x + side, y + side)).resize((size, size), Image.Resampling.BILINEAR)
    return crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if rng.random() < 0.5 else crop
