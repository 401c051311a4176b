"""Issue #12, item 5: d2lcv.ops.anchors on degenerate input: zero-size ground-truth boxes,
boxes that overlap no anchor, float labels, NaN or infinite anchor sizes and ratios."""

import math

import pytest
import torch

from d2lcv import ops


def _anchors():
    return ops.generate_anchors(2, 2, [0.5], [1.0])  # four 0.5 x 0.5 anchors tiling the image


class TestZeroSizeGroundTruth:
    # a zero-width box has log(w_box / w_anchor) = -inf: its offsets, then the loss, are infinite.
    # Decision: refuse it at the entry point, naming the box (torchvision's detectors do the
    # same); the augmentation pipeline drops such boxes (SanitizeBoundingBoxes) before this.
    @pytest.mark.parametrize("box, what", [
        ([0.1, 0.1, 0.1, 0.4], "zero width"), ([0.1, 0.2, 0.4, 0.2], "zero height"), ([0.3, 0.3, 0.3, 0.3], "a point"),
    ])
    def test_refused_with_the_box_named(self, box, what):
        gt = torch.tensor([[[0.0, 0.0, 0.5, 0.5], box]])
        with pytest.raises(ValueError, match=r"gt_boxes must have positive width and height .* got image 0, "
                           rf"box 1: \[{box[0]}, {box[1]}"):
            ops.label_anchors(_anchors(), gt, torch.tensor([[0, 1]]))

    def test_padding_rows_may_be_degenerate(self):
        gt = torch.tensor([[[0.0, 0.0, 0.5, 0.5], [0.0, 0.0, 0.0, 0.0]]])
        labels, offsets, _ = ops.label_anchors(_anchors(), gt, torch.tensor([[2, -1]]))
        assert labels.tolist() == [[3, 0, 0, 0]] and torch.isfinite(offsets).all()

    def test_encode_offsets_refuses_them_too(self):
        with pytest.raises(ValueError, match=r"boxes must have positive width and height .* got box 0: \[0\.1, 0\.1, 0\.1, 0\.4\]"):
            ops.encode_offsets(torch.tensor([[0.0, 0.0, 0.5, 0.5]]), torch.tensor([[0.1, 0.1, 0.1, 0.4]]))
        with pytest.raises(ValueError, match=r"anchors must have positive width and height"):
            ops.encode_offsets(torch.tensor([[0.0, 0.0, 0.0, 0.5]]), torch.tensor([[0.1, 0.1, 0.2, 0.4]]))


class TestBoxOverlappingNoAnchor:
    # Before: the greedy step gave every box its "best" anchor even at IoU 0, so a box that
    # overlaps no anchor claimed the first free one (anchor 0 if free) as a positive, with
    # offsets of tens of units. Now a box needs IoU > 0 with its anchor; one that overlaps
    # no anchor is left out of the targets (no anchor can regress it).
    def test_lone_box_claims_nothing(self):
        anchors = torch.tensor([[0.0, 0.0, 0.2, 0.2], [0.3, 0.0, 0.5, 0.2]])
        gt = torch.tensor([[[0.8, 0.8, 0.9, 0.9]]])  # far from both anchors
        labels, offsets, mask = ops.label_anchors(anchors, gt, torch.tensor([[4]]))
        assert labels.tolist() == [[0, 0]] and (offsets == 0).all() and (mask == 0).all()

    def test_other_boxes_are_unaffected(self):
        anchors = torch.tensor([[0.0, 0.0, 0.5, 0.5], [0.5, 0.0, 0.9, 0.4]])
        gt = torch.tensor([[[0.95, 0.95, 0.99, 0.99], [0.0, 0.0, 0.5, 0.5]]])
        labels, offsets, mask = ops.label_anchors(anchors, gt, torch.tensor([[0, 1]]))
        assert labels.tolist() == [[2, 0]]  # anchor 1 stays background (it claimed box 0 before)
        assert mask[0, :, 0].tolist() == [1.0, 0.0] and (offsets[0, 1] == 0).all()

    def test_match_anchors_zero_column(self):
        iou = torch.tensor([[0.0, 0.7], [0.0, 0.1], [0.0, 0.0]])
        assert ops.match_anchors(iou).tolist() == [1, -1, -1]  # box 0 overlaps nothing: no anchor


class TestLabelsAndSizes:
    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bool])
    def test_non_integer_labels(self, dtype):
        gt = torch.tensor([[[0.0, 0.0, 0.5, 0.5]]])
        with pytest.raises(TypeError, match=rf"gt_labels must be an integer tensor .*, got {dtype}"):
            ops.label_anchors(_anchors(), gt, torch.tensor([[1]]).to(dtype))

    @pytest.mark.parametrize("dtype", [torch.int32, torch.int16, torch.uint8])
    def test_any_integer_dtype(self, dtype):
        labels, _, _ = ops.label_anchors(_anchors(), torch.tensor([[[0.0, 0.0, 0.5, 0.5]]]), torch.tensor([[1]], dtype=dtype))
        assert labels.dtype == torch.int64 and labels.tolist() == [[2, 0, 0, 0]]

    def test_non_tensor_input(self):
        with pytest.raises(TypeError, match=r"gt_boxes and gt_labels must be tensors, got list and Tensor"):
            ops.label_anchors(_anchors(), [[[0.0, 0.0, 0.5, 0.5]]], torch.tensor([[1]]))

    @pytest.mark.parametrize("sizes, ratios", [
        ([math.nan], [1.0]), ([0.5], [math.nan]), ([math.inf], [1.0]), ([0.5], [1.0, math.inf]), ([0.5, -math.inf], [1.0]),
    ])
    def test_non_finite_sizes_and_ratios(self, sizes, ratios):
        with pytest.raises(ValueError, match=r"sizes and ratios must be positive and finite, got sizes=\[.*\], ratios=\[.*\]"):
            ops.generate_anchors(2, 2, sizes, ratios)

    def test_finite_anchors_still_fine(self):
        a = ops.generate_anchors(3, 3, [0.75, 0.5], [1, 2, 0.5])
        assert a.shape == (36, 4) and torch.isfinite(a).all()
