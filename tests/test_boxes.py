"""d2lcv.ops.boxes and d2lcv.ops.iou: formats, IoU and its variants, the losses; parity with torchvision.ops."""

import pytest
import torch
import torchvision.ops as tvops

from d2lcv import ops


def _random_boxes(n, seed, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * 100
    wh = torch.rand(n, 2, generator=g) * 50 + 0.5
    return torch.cat([xy, xy + wh], 1).to(dtype)


class TestBoxConvert:
    def test_hand_worked(self):
        xyxy = torch.tensor([[10.0, 20.0, 30.0, 60.0]])  # 20 wide, 40 high, centre (20, 40)
        torch.testing.assert_close(ops.box_convert(xyxy, "xyxy", "cxcywh"), torch.tensor([[20.0, 40.0, 20.0, 40.0]]))
        torch.testing.assert_close(ops.box_convert(xyxy, "xyxy", "xywh"), torch.tensor([[10.0, 20.0, 20.0, 40.0]]))

    @pytest.mark.parametrize("fin", ops.FORMATS)
    @pytest.mark.parametrize("fout", ops.FORMATS)
    def test_parity_and_round_trip(self, fin, fout):
        x = _random_boxes(50, 0)
        torch.testing.assert_close(ops.box_convert(x, fin, fout), tvops.box_convert(x, fin, fout))
        torch.testing.assert_close(ops.box_convert(ops.box_convert(x, fin, fout), fout, fin), x)

    def test_batched_shape_and_bad_format(self):
        assert ops.box_convert(torch.zeros(2, 3, 4), "xyxy", "cxcywh").shape == (2, 3, 4)
        with pytest.raises(ValueError, match="in_fmt must be one of"):
            ops.box_convert(torch.zeros(1, 4), "xyx", "xyxy")
        with pytest.raises(ValueError, match=r"Tensor\[..., 4\]"):
            ops.box_convert(torch.zeros(1, 3), "xyxy", "xywh")


class TestPairwise:
    FUNCS = [
        (ops.box_iou, tvops.box_iou),
        (ops.generalized_box_iou, tvops.generalized_box_iou),
        (ops.distance_box_iou, tvops.distance_box_iou),
        (ops.complete_box_iou, tvops.complete_box_iou),
    ]

    def test_hand_worked(self):
        a = torch.tensor([[0.0, 0.0, 2.0, 2.0]])
        b = torch.tensor([[1.0, 1.0, 3.0, 3.0], [4.0, 0.0, 6.0, 2.0]])
        # overlap 1x1, union 4 + 4 - 1 = 7; disjoint box: IoU 0, enclosing box 6x2 = 12, union 8
        torch.testing.assert_close(ops.box_iou(a, b), torch.tensor([[1 / 7, 0.0]]))
        torch.testing.assert_close(ops.generalized_box_iou(a, b), torch.tensor([[1 / 7 - (9 - 7) / 9, -(12 - 8) / 12]]))
        # DIoU of the disjoint pair: centres 4 apart, enclosing diagonal^2 = 36 + 4
        torch.testing.assert_close(ops.distance_box_iou(a, b)[0, 1], torch.tensor(-16 / 40))

    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
    @pytest.mark.parametrize("i", range(4))
    def test_parity_with_torchvision(self, i, dtype):
        ours, theirs = self.FUNCS[i]
        for seed in range(5):
            a, b = _random_boxes(30, seed, dtype), _random_boxes(20, seed + 100, dtype)
            torch.testing.assert_close(ours(a, b), theirs(a, b))

    @pytest.mark.parametrize("i", range(4))
    def test_empty(self, i):
        ours, _ = self.FUNCS[i]
        assert ours(torch.zeros(0, 4), _random_boxes(3, 0)).shape == (0, 3)
        assert ours(_random_boxes(3, 0), torch.zeros(0, 4)).shape == (3, 0)

    def test_zero_area_is_defined(self):
        point = torch.tensor([[1.0, 1.0, 1.0, 1.0]])
        assert ops.box_iou(point, point).item() == 0.0  # torchvision: 0 / 0 = NaN
        assert ops.generalized_box_iou(point, point).item() == 0.0
        assert torch.isfinite(ops.distance_box_iou(point, point)).all()

    def test_inverted_and_nan_boxes_raise(self):
        with pytest.raises(ValueError, match="x1 <= x2"):
            ops.box_iou(torch.tensor([[2.0, 0.0, 1.0, 1.0]]), _random_boxes(2, 0))
        with pytest.raises(ValueError, match="x1 <= x2"):
            ops.generalized_box_iou(_random_boxes(2, 0), torch.tensor([[0.0, float("nan"), 1.0, 1.0]]))
        with pytest.raises(ValueError, match=r"Tensor\[N, 4\]"):
            ops.box_iou(torch.zeros(3), torch.zeros(1, 4))

    def test_variants_order_and_ranges(self):
        # GIoU <= IoU, DIoU <= IoU, CIoU <= DIoU, all in [-1, 1]
        a, b = _random_boxes(40, 1), _random_boxes(40, 2)
        iou, giou = ops.box_iou(a, b), ops.generalized_box_iou(a, b)
        diou, ciou = ops.distance_box_iou(a, b), ops.complete_box_iou(a, b)
        assert (giou <= iou + 1e-6).all() and (diou <= iou + 1e-6).all() and (ciou <= diou + 1e-6).all()
        assert (giou >= -1).all() and (ciou >= -1.5).all() and (diou >= -1).all()


class TestLosses:
    FUNCS = [
        (ops.giou_loss, tvops.generalized_box_iou_loss),
        (ops.diou_loss, tvops.distance_box_iou_loss),
        (ops.ciou_loss, tvops.complete_box_iou_loss),
    ]

    @pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
    @pytest.mark.parametrize("i", range(3))
    def test_parity_with_torchvision(self, i, reduction):
        ours, theirs = self.FUNCS[i]
        a, b = _random_boxes(50, 3), _random_boxes(50, 4)
        torch.testing.assert_close(ours(a, b, reduction), theirs(a, b, reduction))

    @pytest.mark.parametrize("i", range(3))
    def test_gradients_match(self, i):
        ours, theirs = self.FUNCS[i]
        a, b = _random_boxes(20, 5).requires_grad_(), _random_boxes(20, 6)
        g1 = torch.autograd.grad(ours(a, b, "sum"), a)[0]
        g2 = torch.autograd.grad(theirs(a, b, "sum"), a)[0]
        torch.testing.assert_close(g1, g2)

    @pytest.mark.parametrize("i", range(3))
    def test_identical_is_zero_disjoint_is_positive_gradient(self, i):
        ours, _ = self.FUNCS[i]
        a = _random_boxes(10, 7)
        torch.testing.assert_close(ours(a, a), torch.zeros(10), atol=1e-5, rtol=0)
        # a box left of its target: IoU loss has zero gradient there, these do not
        p = torch.tensor([[0.0, 0.0, 1.0, 1.0]], requires_grad=True)
        loss = ours(p, torch.tensor([[3.0, 0.0, 4.0, 1.0]]), "sum")
        (g,) = torch.autograd.grad(loss, p)
        assert loss.item() > 1 and g[0, 2] < 0  # moving the right edge right lowers the loss

    def test_empty_and_bad(self):
        assert ops.giou_loss(torch.zeros(0, 4), torch.zeros(0, 4), "mean").item() == 0.0
        with pytest.raises(ValueError, match="row by row"):
            ops.diou_loss(_random_boxes(3, 0), _random_boxes(4, 0))
        with pytest.raises(ValueError, match="reduction"):
            ops.ciou_loss(_random_boxes(3, 0), _random_boxes(3, 1), "max")


class TestCheckBoxes:
    def test_reexported_by_boxaug(self):
        
        assert ops.check_boxes is ops.check_boxes

    def test_area(self):
        torch.testing.assert_close(ops.box_area(torch.tensor([[1.0, 2.0, 4.0, 6.0]])), torch.tensor([12.0]))
        torch.testing.assert_close(ops.box_area(_random_boxes(9, 0)), tvops.box_area(_random_boxes(9, 0)))
