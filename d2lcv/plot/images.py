"""Image grids."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from PIL import Image
from torch import Tensor

__all__ = ["to_numpy_image", "show_images"]


def to_numpy_image(img: Tensor | np.ndarray | Image.Image) -> np.ndarray:
    """An image as a numpy array [H, W] or [H, W, C] that ``imshow`` accepts.

    Tensors are [C, H, W] or [H, W] (float in [0, 1], or uint8); numpy arrays are
    [H, W, C] or [H, W]; PIL images are converted as they are.
    """
    if isinstance(img, Image.Image):
        return np.asarray(img)
    if isinstance(img, Tensor):
        img = img.detach().cpu()
        if img.ndim == 3:
            img = img.permute(1, 2, 0)  # [C, H, W] -> [H, W, C]
        img = img.numpy()
    if not isinstance(img, np.ndarray):
        raise TypeError(f"images must be tensors, numpy arrays or PIL images, got {type(img).__name__}")
    if img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]  # [H, W, 1] -> [H, W]
    if img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[-1] not in (3, 4)):
        raise ValueError(f"an image must be [H, W] or [H, W, 3|4] (tensors: [C, H, W]), got shape {img.shape}")
    if img.dtype != np.uint8:
        img = np.clip(img.astype(np.float32), 0.0, 1.0)
    return img


def show_images(
    imgs: Sequence[Tensor | np.ndarray | Image.Image] | Tensor,
    nrows: int,
    ncols: int,
    titles: Sequence[str] | None = None,
    scale: float = 1.5,
) -> np.ndarray:
    """Show images in a grid without axis ticks.

    Args:
        imgs: up to ``nrows * ncols`` images: tensors [C, H, W] or [H, W] (float in
            [0, 1] or uint8; a batch [N, C, H, W] works too), numpy [H, W, C] or [H, W],
            or PIL images. One-channel images are shown in grey.
        titles: one per image.
        scale: inches per subplot.

    Returns:
        np.ndarray[nrows * ncols] of Axes.
    """
    if len(imgs) > nrows * ncols:
        raise ValueError(f"{len(imgs)} images do not fit in a {nrows}x{ncols} grid")
    if titles is not None and len(titles) != len(imgs):
        raise ValueError(f"got {len(titles)} titles for {len(imgs)} images")
    _, axes = plt.subplots(nrows, ncols, figsize=(ncols * scale, nrows * scale), squeeze=False)
    axes = axes.flatten()
    for i, ax in enumerate(axes):
        ax.axis("off")
        if i < len(imgs):
            img = to_numpy_image(imgs[i])
            ax.imshow(img, cmap="gray" if img.ndim == 2 else None)
            if titles is not None:
                ax.set_title(titles[i])
    return axes
