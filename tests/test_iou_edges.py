"""Issue #12, item 6: d2lcv.ops.iou on degenerate and huge boxes: CIoU of point and
zero-height boxes (values and gradients defined), identical boxes at coordinates of 1e20."""

import pytest
import torch
import torchvision.ops as tvops

from d2lcv import ops

SQUARE = torch.tensor([[0.0, 0.0, 2.0, 2.0]])
PAIRWISE = [ops.box_iou, ops.generalized_box_iou, ops.distance_box_iou, ops.complete_box_iou]
LOSSES = [ops.iou_loss, ops.giou_loss, ops.diou_loss, ops.ciou_loss]


def _value_and_grad(fn, box, other):
    box = box.clone().requires_grad_(True)
    value = fn(box, other)
    (grad,) = torch.autograd.grad(value.sum(), box)
    return value.detach(), grad


class TestCompleteIoUDegenerate:
    # v = 4/pi^2 (atan(w2/h2) - atan(w1/h1))^2 is 0/0 for a point box and has an infinite
    # derivative for a zero-height one. Now the angles are atan2(w, h) (pi/2 for a flat box,
    # as torchvision's atan(w / 0)), and a point box has no aspect ratio: its v is 0.
    @pytest.mark.parametrize("fn", [ops.complete_box_iou, ops.ciou_loss], ids=["complete_box_iou", "ciou_loss"])
    def test_point_box(self, fn):
        point = torch.tensor([[1.0, 1.0, 1.0, 1.0]])  # at the square's centre
        value, grad = _value_and_grad(fn, point, SQUARE)
        assert torch.isfinite(value).all() and torch.isfinite(grad).all()
        # IoU 0, same centre (d = 0), no aspect term: CIoU = DIoU = 0, the loss 1
        assert value.item() == pytest.approx(0.0 if fn is ops.complete_box_iou else 1.0, abs=1e-6)

    @pytest.mark.parametrize("fn", [ops.complete_box_iou, ops.ciou_loss], ids=["complete_box_iou", "ciou_loss"])
    def test_zero_height_box(self, fn):
        flat = torch.tensor([[0.0, 1.0, 2.0, 1.0]])  # 2 wide, 0 high, centred on the square
        value, grad = _value_and_grad(fn, flat, SQUARE)
        assert torch.isfinite(value).all() and torch.isfinite(grad).all()
        # angles pi/2 and pi/4: v = 4/pi^2 * (pi/4)^2 = 1/4; IoU 0, so alpha = v / (1 + v) = 1/5
        ciou = 0.0 - 0.0 - 0.2 * 0.25
        assert value.item() == pytest.approx(ciou if fn is ops.complete_box_iou else 1 - ciou, abs=1e-6)
        theirs = tvops.complete_box_iou(flat, SQUARE) if fn is ops.complete_box_iou else tvops.complete_box_iou_loss(flat, SQUARE)
        torch.testing.assert_close(value, theirs)  # torchvision's value is finite here, its gradient is not

    def test_two_points_and_both_orders(self):
        p, q = torch.tensor([[1.0, 1.0, 1.0, 1.0]]), torch.tensor([[3.0, 1.0, 3.0, 1.0]])
        for a, b in ((p, q), (q, p), (p, p), (p, SQUARE), (SQUARE, p)):
            value, grad = _value_and_grad(ops.complete_box_iou, a, b)
            assert torch.isfinite(value).all() and torch.isfinite(grad).all()
            torch.testing.assert_close(value, ops.distance_box_iou(a, b))  # v = 0 with a point

    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
    def test_still_torchvision_on_valid_boxes(self, dtype):
        g = torch.Generator().manual_seed(0)
        xy = torch.rand(40, 2, generator=g) * 100
        boxes = torch.cat([xy, xy + torch.rand(40, 2, generator=g) * 50 + 0.5], 1).to(dtype)
        a, b = boxes[:20], boxes[20:]
        torch.testing.assert_close(ops.complete_box_iou(a, b), tvops.complete_box_iou(a, b))
        ga = a.clone().requires_grad_(True)
        gb = a.clone().requires_grad_(True)
        (g1,) = torch.autograd.grad(ops.ciou_loss(ga, b, "sum"), ga)
        (g2,) = torch.autograd.grad(tvops.complete_box_iou_loss(gb, b, "sum"), gb)
        torch.testing.assert_close(g1, g2)


class TestHugeCoordinates:
    # areas of boxes 1e20 wide overflow float32 (1e40 > 3.4e38): inf - inf = NaN, and the
    # IoU of a box with itself came out 0. IoU and its variants are scale-free, so the
    # boxes are now divided by a power of two first when their areas could overflow.
    BIG = torch.tensor([[1e20, 1e20, 2e20, 2e20]])

    @pytest.mark.parametrize("fn", PAIRWISE)
    def test_identical_boxes(self, fn):
        assert fn(self.BIG, self.BIG).item() == pytest.approx(1.0)

    @pytest.mark.parametrize("fn", LOSSES)
    def test_identical_boxes_loss(self, fn):
        assert fn(self.BIG, self.BIG).item() == pytest.approx(0.0, abs=1e-6)

    @pytest.mark.parametrize("fn", PAIRWISE)
    @pytest.mark.parametrize("scale", [2.0**64, 2.0**100])
    def test_scale_invariance(self, fn, scale):
        a = torch.tensor([[0.0, 0.0, 2.0, 2.0], [1.0, 0.5, 3.0, 4.0]])
        b = torch.tensor([[1.0, 1.0, 3.0, 3.0], [4.0, 0.0, 6.0, 2.0], [0.0, 0.0, 2.0, 2.0]])
        torch.testing.assert_close(fn(a * scale, b * scale), fn(a, b), atol=1e-6, rtol=1e-5)

    def test_half_precision_pixels(self):
        # float16 overflows at 65504: a 300 x 300 box's area (90,000) already does
        a = torch.tensor([[0.0, 0.0, 300.0, 300.0]], dtype=torch.float16)
        assert ops.box_iou(a, a).item() == 1.0

    def test_an_infinite_coordinate_does_not_spoil_the_other_pairs(self):
        a = torch.cat([SQUARE, torch.tensor([[0.0, 0.0, float("inf"), 1.0]])])
        assert ops.box_iou(a, SQUARE)[0].item() == 1.0  # not rescaled by an infinite factor
