"""Box-aware augmentation for object detection, with ``torchvision.transforms.v2``.

A geometric augmentation of a detection sample must move the boxes with the pixels. The v2
transforms do this for inputs wrapped as ``tv_tensors.BoundingBoxes``; after cropping, some
boxes are cut down to slivers or lie outside the image, so the pipeline clamps boxes to the
canvas and drops degenerate ones, together with their labels::

    transform = detection_transforms(train=True, size=300)
    image, boxes, labels = apply_detection_transform(transform, photo, boxes, labels)

The v2 transforms draw from torch's global RNG: seed with ``torch.manual_seed``.
"""

from __future__ import annotations

import PIL.Image
import torch
from torch import Tensor
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from d2lcv.ops.boxes import check_boxes

__all__ = ["detection_transforms", "ssd_transforms", "apply_detection_transform"]


def detection_transforms(
    train: bool, size: int, *, photometric: bool = True, zoom_out: bool = True
) -> v2.Compose:
    """The SSD-style training pipeline, or the evaluation one, for (image, boxes, labels) samples.

    Training: ``RandomPhotometricDistort`` (if ``photometric``), ``RandomZoomOut`` (if
    ``zoom_out``: the image placed on a canvas up to 4x larger, filled with 0, half of the
    time), ``RandomIoUCrop`` (a crop that overlaps some box by at least a random IoU),
    ``RandomHorizontalFlip``, ``Resize((size, size))``, ``ClampBoundingBoxes`` and
    ``SanitizeBoundingBoxes`` (drops boxes under 1 pixel wide or high, and their labels).
    Evaluation: ``Resize((size, size))`` only. Both start with ``ToImage`` and end with
    ``ToDtype(torch.float32, scale=True)``.

    Args:
        train: the training pipeline if True, else the evaluation one.
        size: side of the square output image.
        photometric: include ``RandomPhotometricDistort``.
        zoom_out: include ``RandomZoomOut``.

    Returns:
        ``v2.Compose``; call it as ``transform(image, {"boxes": BoundingBoxes, "labels": labels})``,
        or use :func:`apply_detection_transform`.

    Reference: Liu et al., SSD: Single Shot MultiBox Detector, ECCV 2016.
    """
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"size must be a positive int, got {size!r}")
    steps: list[v2.Transform] = [v2.ToImage()]
    if train:
        if photometric:
            steps.append(v2.RandomPhotometricDistort(p=0.5))
        if zoom_out:
            steps.append(v2.RandomZoomOut(fill=0, side_range=(1.0, 4.0), p=0.5))
        steps += [v2.RandomIoUCrop(), v2.RandomHorizontalFlip()]
    steps.append(v2.Resize((size, size)))
    if train:
        steps += [v2.ClampBoundingBoxes(), v2.SanitizeBoundingBoxes()]
    steps.append(v2.ToDtype(torch.float32, scale=True))
    return v2.Compose(steps)


def apply_detection_transform(
    transform: v2.Transform, image: PIL.Image.Image | Tensor, boxes: Tensor, labels: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """Apply a v2 detection pipeline to one image with its boxes and labels.

    Args:
        transform: e.g. :func:`detection_transforms`.
        image: a PIL image, or Tensor[C, H, W] (uint8, or float in [0, 1]).
        boxes (Tensor[N, 4]): absolute pixel coordinates, xyxy, x1 <= x2, y1 <= y2.
        labels (Tensor[N]): one class index per box.

    Returns:
        ``(image, boxes, labels)``: plain tensors, the image as ``transform`` leaves it
        (float32 Tensor[C, size, size] for :func:`detection_transforms`), boxes float32
        Tensor[M, 4] xyxy in the new image's pixels and labels Tensor[M], M <= N.
    """
    if isinstance(image, Tensor):
        if image.ndim != 3:
            raise ValueError(f"image must be Tensor[C, H, W], got shape {tuple(image.shape)}")
        H, W = image.shape[-2:]
    elif isinstance(image, PIL.Image.Image):
        W, H = image.size
    else:
        raise TypeError(f"image must be a PIL image or a Tensor[C, H, W], got {type(image).__name__}")
    check_boxes(boxes, labels)
    bb = tv_tensors.BoundingBoxes(boxes.float(), format="XYXY", canvas_size=(H, W))
    out_image, target = transform(image, {"boxes": bb, "labels": labels})
    if isinstance(out_image, PIL.Image.Image):
        out_image = TF.pil_to_tensor(out_image)
    return out_image.as_subclass(Tensor), target["boxes"].as_subclass(Tensor), target["labels"]


def ssd_transforms(train: bool, size: int) -> v2.Compose:
    """Box-aware augmentation for SSD training, mild because the anchors cover a fixed range of sizes.

    Training: a light colour jitter, a zoom-out onto a canvas up to 1.5x larger (objects
    shrink) for 30% of the images, a random crop of 50-100% of the area (objects grow) for
    half of them, a horizontal flip, resizing to ``size x size``, then clamping the boxes and
    dropping slivers. Evaluation: resizing only. Both return float32 images in [0, 1]. Apply
    them with :func:`apply_detection_transform` (the datasets of
    :mod:`d2lcv.data.detection` do). Unlike :func:`detection_transforms`, there
    is no ``RandomIoUCrop``: its rejection sampling costs about 25 ms per image on a CPU,
    ten times the rest of the pipeline.
    """
    if not train:
        return v2.Compose(
            [
                v2.ToImage(),
                v2.Resize((size, size)),
                v2.ToDtype(torch.float32, scale=True),
            ]
        )
    return v2.Compose(
        [
            v2.ToImage(),
            v2.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2),
            v2.RandomZoomOut(fill=0, side_range=(1.0, 1.5), p=0.3),
            v2.RandomApply(
                [v2.RandomResizedCrop(size, scale=(0.5, 1.0), ratio=(0.8, 1.25))], p=0.5
            ),
            v2.RandomHorizontalFlip(),
            v2.Resize((size, size)),
            v2.ClampBoundingBoxes(),
            v2.SanitizeBoundingBoxes(min_size=2),
            v2.ToDtype(torch.float32, scale=True),
        ]
    )
