"""Layer 1, operators: boxes and their IoU variants, NMS, anchors, and convolution by hand.

Everything is a plain function on tensors (no ``nn.Module`` state), like
``torchvision.ops``; ``from d2lcv.ops import nms, box_iou`` works for every public name.
"""

from __future__ import annotations

from .anchors import decode_offsets, encode_offsets, generate_anchors, label_anchors, match_anchors
from .sampling import hard_negative_mining
from .boxes import FORMATS, box_area, box_convert, check_box_shape, check_boxes, float_boxes
from .conv import (
    col2im,
    conv2d_im2col,
    conv2d_macs,
    conv2d_params,
    conv_output_size,
    corr2d,
    im2col,
    pool2d,
    receptive_field,
)
from .iou import (
    box_inter_union,
    box_iou,
    ciou_loss,
    complete_box_iou,
    diou_loss,
    distance_box_iou,
    generalized_box_iou,
    giou_loss,
    iou_loss,
    safe_div,
)
from .ctc import ctc_beam_decode, ctc_collapse, ctc_greedy_decode
from .nms import batched_nms, nms, soft_nms
from .kmeans_anchors import anchor_mean_iou, check_wh, kmeans_anchors, shape_iou
from .yolo import (
    cell_of,
    check_yolo_targets,
    first_per_slot,
    postprocess_detections,
    yolo_v1_boxes,
    yolo_v1_decode,
    yolo_v1_targets,
)
from .yolo_anchors import (
    YoloTargets,
    check_anchors,
    yolo_decode,
    yolo_encode,
    yolo_priors,
    yolo_v3_decode,
    yolo_v3_targets,
)

__all__ = [
    # boxes
    "FORMATS", "check_boxes", "check_box_shape", "float_boxes", "box_convert", "box_area",
    # IoU and its losses
    "safe_div", "box_inter_union", "box_iou", "generalized_box_iou", "distance_box_iou", "complete_box_iou",
    "iou_loss", "giou_loss", "diou_loss", "ciou_loss",
    # NMS
    "nms", "batched_nms", "soft_nms",
    # CTC decoding
    "ctc_collapse", "ctc_greedy_decode", "ctc_beam_decode",
    # anchors
    "generate_anchors", "match_anchors", "encode_offsets", "decode_offsets", "label_anchors",
    "hard_negative_mining",
    # YOLO: grids, anchor assignment, decoding, k-means anchors
    "check_yolo_targets", "cell_of", "first_per_slot", "yolo_v1_targets", "yolo_v1_boxes",
    "yolo_v1_decode", "postprocess_detections", "YoloTargets", "check_anchors", "yolo_priors",
    "yolo_encode", "yolo_decode", "yolo_v3_targets", "yolo_v3_decode",
    "check_wh", "shape_iou", "anchor_mean_iou", "kmeans_anchors",
    # convolution
    "corr2d", "conv_output_size", "im2col", "col2im", "conv2d_im2col", "pool2d", "conv2d_params",
    "conv2d_macs", "receptive_field",
]
