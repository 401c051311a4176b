"""SSD, the single shot multibox detector, small enough to train on a CPU.

A base network turns the image into a feature map; further down-sampling blocks make smaller
maps. On every map, each cell carries a few anchor boxes, and two 3x3 convolutions predict,
for every anchor, the class scores (background + C classes) and four offsets that move the
anchor onto the object. Large maps with small anchors find small objects; small maps with
large anchors find large ones::

    model = SSD(num_classes=5)
    anchors, cls_logits, box_offsets = model(images)     # [A, 4], [B, A, C + 1], [B, A, 4]
    labels, offsets, mask = ssd_targets(anchors, targets, images.shape[-2:])
    loss, cls_loss, box_loss = ssd_loss(cls_logits, box_offsets, labels, offsets, mask)   # d2lcv.losses
    detections = predict(model, images)                    # list of dict(boxes, scores, labels)

:func:`~d2lcv.losses.ssd_loss` is the loss, :func:`~d2lcv.recipes.train_ssd` the training recipe.

The loss is cross-entropy over the positives and the hardest negatives (3 per positive) plus
smooth L1 on the positives' offsets, both divided by the number of positives.

Reference: Liu et al., SSD: Single Shot MultiBox Detector, ECCV 2016.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from d2lcv.config import try_device
from d2lcv.data.detection import detection_collate
from d2lcv.ops.anchors import decode_offsets, generate_anchors, label_anchors
from d2lcv.ops.nms import batched_nms

__all__ = [
    "SIZES",
    "RATIOS",
    "down_sample_blk",
    "class_predictor",
    "box_predictor",
    "flatten_predictions",
    "SSD",
    "pad_targets",
    "pad_weights",
    "ssd_targets",
    "predict",
    "detect",
]

SIZES: tuple[tuple[float, float], ...] = ((0.14, 0.2), (0.28, 0.36), (0.5, 0.62))
"""Anchor sizes per feature map (fractions of the image side), from the largest map down."""


RATIOS: tuple[float, ...] = (1.0, 2.0, 0.5)
"""Anchor aspect ratios (width / height), the same on every map."""


def down_sample_blk(
    in_channels: int, out_channels: int, num_convs: int = 2
) -> nn.Sequential:
    """``num_convs`` x (3x3 conv, batch norm, ReLU), then 2x2 max pooling: halves H and W."""
    layers: list[nn.Module] = []
    for i in range(num_convs):
        layers += [
            nn.Conv2d(
                in_channels if i == 0 else out_channels,
                out_channels,
                3,
                padding=1,
                bias=False,
            ),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        ]
    layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


def class_predictor(in_channels: int, num_anchors: int, num_classes: int) -> nn.Conv2d:
    """3x3 conv giving ``num_anchors * (num_classes + 1)`` class scores per cell (class 0: background)."""
    return nn.Conv2d(in_channels, num_anchors * (num_classes + 1), 3, padding=1)


def box_predictor(in_channels: int, num_anchors: int) -> nn.Conv2d:
    """3x3 conv giving ``num_anchors * 4`` box offsets per cell."""
    return nn.Conv2d(in_channels, num_anchors * 4, 3, padding=1)


def flatten_predictions(pred: Tensor, k: int) -> Tensor:
    """``[B, a * k, H, W]`` -> ``[B, H * W * a, k]``, in the order of
    :func:`~d2lcv.ops.generate_anchors` (cells row-major, then the anchors of a cell)."""
    B = pred.shape[0]
    return pred.permute(0, 2, 3, 1).reshape(B, -1, k)


class SSD(nn.Module):
    """A small SSD: a base network of down-sampling blocks, then one block per extra scale.

    With the default ``widths=(16, 32, 64, 64, 64)`` and three scales, a 128x128 image gives
    feature maps of 16x16, 8x8 and 4x4 cells (strides 8, 16, 32), each cell with
    ``len(sizes[i]) + len(ratios) - 1`` anchors.

    Args:
        num_classes: C, the object classes (background is added).
        widths: output channels of each down-sampling block; the first
            ``len(widths) - len(sizes) + 1`` blocks form the base network, each later block
            adds one scale.
        sizes: anchor sizes per scale, from the largest feature map down (:data:`SIZES`).
        ratios: anchor aspect ratios (:data:`RATIOS`).
        convs: convolutions in each block (one in the high-resolution blocks keeps them cheap).

    Forward:
        images (Tensor[B, 3, H, W]): float, in [0, 1].
        Returns ``(anchors, cls_logits, box_offsets)``: anchors Tensor[A, 4] xyxy normalised,
        cls_logits Tensor[B, A, C + 1], box_offsets Tensor[B, A, 4].
    """

    def __init__(
        self,
        num_classes: int,
        *,
        widths: Sequence[int] = (16, 32, 64, 64, 64),
        sizes: Sequence[Sequence[float]] = SIZES,
        ratios: Sequence[float] = RATIOS,
        convs: Sequence[int] = (1, 1, 2, 2, 2),
    ) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        if len(widths) < len(sizes):
            raise ValueError(f"need at least one block per scale: {len(widths)} widths for {len(sizes)} scales")
        if len(convs) != len(widths):
            raise ValueError(f"need one entry of convs per block, got {len(convs)} for {len(widths)} widths")
        self.num_classes = num_classes
        self.sizes = [tuple(float(s) for s in ss) for ss in sizes]
        self.ratios = tuple(float(r) for r in ratios)
        n_base = len(widths) - len(sizes) + 1
        chans = [3, *widths]
        blocks = [down_sample_blk(chans[i], chans[i + 1], convs[i]) for i in range(len(widths))]
        self.base = nn.Sequential(*blocks[:n_base])
        self.blocks = nn.ModuleList(blocks[n_base:])
        self.num_anchors = [len(s) + len(self.ratios) - 1 for s in self.sizes]
        scale_chans = widths[n_base - 1:]
        self.cls_preds = nn.ModuleList([
            class_predictor(c, a, num_classes) for c, a in zip(scale_chans, self.num_anchors)
        ])
        self.box_preds = nn.ModuleList([box_predictor(c, a) for c, a in zip(scale_chans, self.num_anchors)])

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        x = self.base(images)
        anchors, cls_logits, box_offsets = [], [], []
        for i in range(len(self.sizes)):
            if i > 0:
                x = self.blocks[i - 1](x)
            H, W = x.shape[-2:]
            anchors.append(
                generate_anchors(H, W, self.sizes[i], self.ratios).to(x.device)
            )
            cls_logits.append(
                flatten_predictions(self.cls_preds[i](x), self.num_classes + 1)
            )
            box_offsets.append(flatten_predictions(self.box_preds[i](x), 4))
        return (
            torch.cat(anchors),
            torch.cat(cls_logits, dim=1),
            torch.cat(box_offsets, dim=1),
        )


def pad_targets(targets: Sequence[dict[str, Tensor]], image_size: tuple[int, int]) -> tuple[Tensor, Tensor]:
    """Stack per-image boxes into padded batch tensors, normalised by the image size.

    Args:
        targets: B dicts with ``boxes`` Tensor[G_i, 4] (xyxy pixels) and ``labels`` Tensor[G_i].
        image_size: ``(H, W)`` of the images.

    Returns:
        ``(boxes Tensor[B, G, 4] normalised, labels Tensor[B, G] int64, -1 for padding)``, G = max G_i.
    """
    H, W = image_size
    G = max([len(t["labels"]) for t in targets], default=0)
    boxes = torch.zeros(len(targets), G, 4)
    labels = torch.full((len(targets), G), -1, dtype=torch.int64)
    scale = torch.tensor([W, H, W, H], dtype=torch.float32)
    for i, t in enumerate(targets):
        n = len(t["labels"])
        boxes[i, :n] = t["boxes"].float() / scale
        labels[i, :n] = t["labels"]
    return boxes, labels


def pad_weights(targets: Sequence[dict[str, Tensor]]) -> Tensor:
    """The per-object loss weights of a batch, padded as :func:`pad_targets` pads boxes:
    Tensor[B, G] float, each dict's ``weights`` (e.g. from
    :func:`~d2lcv.transforms.detection_mixup`) or 1, and 0 for padding."""
    G = max([len(t["labels"]) for t in targets], default=0)
    weights = torch.zeros(len(targets), G)
    for i, t in enumerate(targets):
        n = len(t["labels"])
        weights[i, :n] = t["weights"].float() if "weights" in t else 1.0
    return weights


def ssd_targets(
    anchors: Tensor, targets: Sequence[dict[str, Tensor]], image_size: tuple[int, int], iou_threshold: float = 0.5
) -> tuple[Tensor, Tensor, Tensor]:
    """Anchor labels and offsets for a batch (see :func:`~d2lcv.ops.label_anchors`).

    Returns:
        ``(labels Tensor[B, A] int64 (0 = background), offsets Tensor[B, A, 4], mask Tensor[B, A, 4])``.
    """
    boxes, labels = pad_targets(targets, image_size)
    anchor_labels, offsets, mask = label_anchors(anchors, boxes.to(anchors.device), labels.to(anchors.device),
                                                 iou_threshold)
    return anchor_labels, offsets, mask


@torch.no_grad()
def predict(
    model: SSD,
    images: Tensor,
    *,
    score_threshold: float = 0.01,
    iou_threshold: float = 0.45,
    max_detections: int = 100,
) -> list[dict[str, Tensor]]:
    """Detections for a batch: decode the offsets, drop low scores, class-wise NMS.

    Every (anchor, class) pair whose softmax probability exceeds ``score_threshold`` is a
    candidate box; :func:`~d2lcv.ops.batched_nms` removes, within each class, the boxes that
    overlap a higher-scoring one by more than ``iou_threshold``; the ``max_detections`` best
    remain.

    Args:
        model: a trained SSD (run in eval mode; its mode is restored afterwards).
        images (Tensor[B, 3, H, W]): float in [0, 1].

    Returns:
        B dicts with ``boxes`` Tensor[K, 4] (xyxy pixels, clipped to the image), ``scores``
        Tensor[K] and ``labels`` Tensor[K] (int64, 0..C-1), by decreasing score: the format of
        :func:`~d2lcv.metrics.evaluate_detections`.
    """
    was_training = model.training
    model.eval()
    try:
        anchors, cls_logits, box_offsets = model(images)
    finally:
        model.train(was_training)
    H, W = images.shape[-2:]
    probs = cls_logits.softmax(dim=-1)[..., 1:]  # [B, A, C] without the background
    scale = torch.tensor([W, H, W, H], dtype=probs.dtype, device=probs.device)
    # [B, A, 4] pixels
    boxes = (decode_offsets(anchors, box_offsets) * scale).clamp(min=0)
    boxes = torch.minimum(boxes, scale)
    out = []
    for b in range(len(images)):
        anchor_idx, cls = (probs[b] > score_threshold).nonzero(as_tuple=True)
        scores = probs[b, anchor_idx, cls]
        cand = boxes[b, anchor_idx]
        keep = batched_nms(cand, scores, cls, iou_threshold)[:max_detections]
        out.append(
            {
                "boxes": cand[keep].cpu(),
                "scores": scores[keep].cpu(),
                "labels": cls[keep].cpu(),
            }
        )
    return out


def detect(
    model: SSD,
    dataset: Dataset,
    *,
    batch_size: int = 64,
    device: torch.device | str | None = None,
    **kwargs: float,
) -> list[dict[str, Tensor]]:
    """:func:`predict` over a whole dataset of ``(image, target)`` items (uint8 or float images).

    Returns:
        one detection dict per item, in order; ``kwargs`` go to :func:`predict`.
    """
    device = try_device() if device is None else torch.device(device)
    model.to(device)
    detections: list[dict[str, Tensor]] = []
    for images, _ in DataLoader(dataset, batch_size=batch_size, collate_fn=detection_collate):
        if images.dtype == torch.uint8:
            images = images.float() / 255
        detections += predict(model, images.to(device), **kwargs)
    return detections
