"""Layer 4, losses: soft-target cross-entropy, SSD's multibox loss, the style-transfer
losses, and (re-exported from :mod:`d2lcv.ops.iou`, where they live with IoU) the IoU losses."""

from __future__ import annotations

from d2lcv.ops.iou import ciou_loss, diou_loss, giou_loss, iou_loss

from .classification import soft_target_cross_entropy
from .detection import ssd_loss
from .yolo import yolo_v1_loss, yolo_v3_loss
from .gan import critic_generator_loss, critic_loss, discriminator_loss, generator_loss, gradient_penalty
from .style import CONTENT_LAYER, STYLE_LAYERS, content_loss, gram_matrix, perceptual_loss, style_loss, tv_loss

__all__ = [
    "soft_target_cross_entropy",
    "ssd_loss", "yolo_v1_loss", "yolo_v3_loss",
    "discriminator_loss", "generator_loss", "critic_loss", "critic_generator_loss", "gradient_penalty",
    "iou_loss", "giou_loss", "diou_loss", "ciou_loss",
    "CONTENT_LAYER", "STYLE_LAYERS", "gram_matrix", "content_loss", "style_loss", "tv_loss", "perceptual_loss",
]
