"""Tiny YOLOs for a CPU: v1 (one grid, a fully connected head) and a v3-style model
(three scales, a top-down path like a feature pyramid, anchors).

::

    v1 = YOLOv1(num_classes=20, grid=6)
    pred = v1(images)                        # [N, 6, 6, B * 5 + C], activated
    v3 = TinyYOLOv3(num_classes=20, anchors=anchors)  # anchors [3, A, 2]
    pred, priors = v3(images)                # [N, P, 5 + C] raw, [P, 5]
    detections = yolo_predict(v3, images)    # dicts of boxes, scores, labels

The losses are :func:`~d2lcv.losses.yolo_v1_loss` and
:func:`~d2lcv.losses.yolo_v3_loss`, the training recipe
:func:`~d2lcv.recipes.train_yolo`.

References: Redmon et al., You Only Look Once, CVPR 2016; Redmon and Farhadi, YOLOv3: An
Incremental Improvement, arXiv 2018; Lin et al., Feature Pyramid Networks, CVPR 2017.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from d2lcv.config import try_device
from d2lcv.data.detection import detection_collate
from d2lcv.ops.yolo import postprocess_detections, yolo_v1_decode
from d2lcv.ops.yolo_anchors import check_anchors, yolo_priors, yolo_v3_decode

from .ssd import down_sample_blk

__all__ = ["YOLOv1", "TinyYOLOv3", "conv_bn", "yolo_predict", "yolo_detect"]


def conv_bn(in_channels: int, out_channels: int, k: int = 3) -> nn.Sequential:
    """k x k conv (same padding), batch norm, leaky ReLU (0.1, as in YOLO)."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, k, padding=k // 2, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.LeakyReLU(0.1, inplace=True),
    )


def _backbone(widths: Sequence[int], convs: Sequence[int]) -> nn.ModuleList:
    chans = [3, *widths]
    return nn.ModuleList(
        down_sample_blk(chans[i], chans[i + 1], convs[i]) for i in range(len(widths))
    )


class YOLOv1(nn.Module):
    """A small YOLO v1: down-sampling blocks to an ``grid x grid`` map, then fully
    connected layers that see the whole image and output every cell's B boxes and C
    class probabilities.

    Args:
        num_classes: C. grid: S. num_boxes: B.
        widths, convs: channels and convolutions of the down-sampling blocks (each
            halves H, W; the map is then average-pooled to ``grid x grid``).
        hidden: width of the hidden fully connected layer.

    Forward:
        images (Tensor[N, 3, H, W]) in [0, 1] -> Tensor[N, S, S, B * 5 + C]: per box
        ``(x, y, sqrt w, sqrt h, confidence)`` through a sigmoid, class probabilities
        through a softmax (the format of :mod:`d2lcv.ops.yolo`).
    """

    def __init__(
        self,
        num_classes: int,
        *,
        grid: int = 6,
        num_boxes: int = 2,
        widths: Sequence[int] = (16, 32, 64, 128, 128),
        convs: Sequence[int] = (1, 1, 2, 2, 2),
        hidden: int = 256,
    ) -> None:
        super().__init__()
        if num_classes < 1 or grid < 1 or num_boxes < 1 or len(convs) != len(widths):
            raise ValueError(
                f"need num_classes, grid, num_boxes >= 1 and one convs entry "
                f"per width, got {num_classes}, {grid}, {num_boxes}, convs "
                f"{list(convs)}, widths {list(widths)}"
            )
        self.num_classes, self.grid, self.num_boxes = num_classes, grid, num_boxes
        self.features = nn.Sequential(
            *_backbone(widths, convs), nn.AdaptiveAvgPool2d(grid)
        )
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(widths[-1] * grid * grid, hidden),
            nn.LeakyReLU(0.1, inplace=True),
            nn.Linear(hidden, grid * grid * (5 * num_boxes + num_classes)),
        )

    def forward(self, images: Tensor) -> Tensor:
        S, B = self.grid, self.num_boxes
        out = self.head(self.features(images)).reshape(len(images), S, S, -1)
        return torch.cat(
            (out[..., : 5 * B].sigmoid(), out[..., 5 * B :].softmax(dim=-1)), dim=-1
        )

    def decode(self, pred: Tensor) -> tuple[Tensor, Tensor]:
        """``(boxes [N, S*S*B, 4] normalised, scores [N, S*S*B, C])``
        (:func:`~d2lcv.ops.yolo_v1_decode`)."""
        return yolo_v1_decode(pred, self.num_boxes)


class TinyYOLOv3(nn.Module):
    """A small YOLO v3: a backbone of down-sampling blocks, a top-down path that
    upsamples the coarsest map and concatenates it with finer ones (strides 32 -> 16 ->
    8), and a head per scale predicting ``A x (4 box + 1 objectness + C class)`` logits
    per cell.

    Args:
        num_classes: C.
        anchors (Tensor[3, A, 2]): normalised anchor widths and heights for the strides
            8, 16, 32 (small anchors on the fine map), e.g. from
            :func:`~d2lcv.ops.kmeans_anchors`.
        widths, convs: the five down-sampling blocks (strides 2 to 32).
        neck: channels of the top-down path and the heads.
        prior_prob: initial objectness and class probability (biases, as RetinaNet
            does).

    Forward:
        images (Tensor[N, 3, H, W]), H and W multiples of 32 -> ``(pred Tensor[N, P, 5 +
        C] raw, priors Tensor[P, 5])`` (:func:`~d2lcv.ops.yolo_priors`, scales fine to
        coarse).
    """

    def __init__(
        self,
        num_classes: int,
        anchors: Tensor,
        *,
        widths: Sequence[int] = (16, 32, 64, 128, 256),
        convs: Sequence[int] = (1, 1, 2, 2, 2),
        neck: int = 96,
        prior_prob: float = 0.01,
    ) -> None:
        super().__init__()
        check_anchors(anchors, [1, 1, 1])
        if num_classes < 1 or len(widths) != 5 or len(convs) != 5:
            raise ValueError(
                f"need num_classes >= 1 and five widths and convs, got {num_classes}, "
                f"{list(widths)}, {list(convs)}"
            )
        self.num_classes = num_classes
        self.register_buffer("anchors", anchors.float().clone())
        self.blocks = _backbone(widths, convs)
        self.lateral5 = conv_bn(widths[4], neck, 1)
        self.merge4 = conv_bn(neck + widths[3], neck)
        self.merge3 = conv_bn(neck + widths[2], neck)
        A, bias = anchors.shape[1], -math.log((1 - prior_prob) / prior_prob)
        self.heads = nn.ModuleList(self._head(neck, A, bias) for _ in range(3))

    def _head(self, neck: int, A: int, bias: float) -> nn.Sequential:
        out = nn.Conv2d(neck, A * (5 + self.num_classes), 1)
        with torch.no_grad():
            out.bias.view(A, -1)[:, 4:] = bias
        return nn.Sequential(conv_bn(neck, neck), out)

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        if (
            images.ndim != 4
            or images.shape[-1] != images.shape[-2]
            or images.shape[-1] % 32
        ):
            got = tuple(images.shape)
            raise ValueError(
                f"images must be [N, 3, H, H], H a multiple of 32, got {got}"
            )
        x, maps = images, []
        for block in self.blocks:
            x = block(x)
            maps.append(x)
        up = nn.functional.interpolate
        p5 = self.lateral5(maps[4])
        p4 = self.merge4(torch.cat((up(p5, scale_factor=2.0), maps[3]), dim=1))
        p3 = self.merge3(torch.cat((up(p4, scale_factor=2.0), maps[2]), dim=1))
        preds = [head(p) for head, p in zip(self.heads, (p3, p4, p5))]
        N, K = len(images), 5 + self.num_classes
        pred = torch.cat(
            [p.permute(0, 2, 3, 1).reshape(N, -1, K) for p in preds], dim=1
        )
        return pred, yolo_priors([p.shape[-1] for p in preds], self.anchors)

    def decode(self, output: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        """``(boxes [N, P, 4] normalised, scores [N, P, C])``
        (:func:`~d2lcv.ops.yolo_v3_decode`)."""
        return yolo_v3_decode(*output)


@torch.no_grad()
def yolo_predict(
    model: YOLOv1 | TinyYOLOv3, images: Tensor, **kwargs: float
) -> list[dict[str, Tensor]]:
    """Detections for a batch: the model (in eval mode), its decoder, then
    :func:`~d2lcv.ops.postprocess_detections` (``kwargs``: its thresholds).

    Args:
        images (Tensor[N, 3, H, W]): float in [0, 1].

    Returns:
        N dicts of ``boxes`` (xyxy pixels), ``scores``, ``labels`` (on the CPU), by
        decreasing score.
    """
    was_training = model.training
    model.eval()
    try:
        boxes, scores = model.decode(model(images))
    finally:
        model.train(was_training)
    size = (images.shape[-2], images.shape[-1])
    out = postprocess_detections(boxes, scores, size, **kwargs)  # type: ignore[arg-type]
    return [{k: v.cpu() for k, v in d.items()} for d in out]


def yolo_detect(
    model: YOLOv1 | TinyYOLOv3,
    dataset: Dataset,
    *,
    batch_size: int = 64,
    device: torch.device | str | None = None,
    input_size: int | None = None,
    **kwargs: float,
) -> list[dict[str, Tensor]]:
    """:func:`yolo_predict` over a dataset of ``(image, target)`` items (uint8 or float
    images): one detection dict per item, in order.

    ``input_size``: resize every image to ``input_size x input_size`` (bilinear,
    antialiased) before the model, and the boxes back to the image's own pixels: the
    same detector tested at another scale (a multiple of the model's stride)."""
    device = try_device() if device is None else torch.device(device)
    model.to(device)
    detections: list[dict[str, Tensor]] = []
    for images, _ in DataLoader(
        dataset, batch_size=batch_size, collate_fn=detection_collate
    ):
        if images.dtype == torch.uint8:
            images = images.float() / 255
        H, W = images.shape[-2:]
        if input_size is not None and (H, W) != (input_size, input_size):
            images = nn.functional.interpolate(
                images, size=(input_size, input_size), mode="bilinear", antialias=True
            )
        found = yolo_predict(model, images.to(device), **kwargs)
        if input_size is not None:
            back = torch.tensor([W, H, W, H]) / input_size
            found = [dict(d, boxes=d["boxes"] * back) for d in found]
        detections += found
    return detections
