"""d2lcv.ops.anchors: generation, greedy matching, offsets, batched labelling; parity with d2l."""

import pytest
import torch
from d2l import torch as d2l

from d2lcv import ops
from d2lcv.ops import box_iou


def _gt(B, G, seed):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(B, G, 2, generator=g) * 0.7
    wh = torch.rand(B, G, 2, generator=g) * 0.3 + 0.02
    return torch.cat([xy, xy + wh], -1), torch.randint(0, 3, (B, G), generator=g)


def _greedy_loop(iou, threshold):
    """The seeds' algorithm, literally: a reference for the vectorised one."""
    x = iou.clone()
    A_, G = x.shape
    match = torch.full((A_,), -1, dtype=torch.long)
    for _ in range(min(A_, G)):
        k = int(x.argmax())
        i, j = k // G, k % G
        match[i] = j
        x[i, :] = -1
        x[:, j] = -1
    best, arg = iou.max(1)
    return torch.where((match < 0) & (best >= threshold), arg, match)


class TestGenerateAnchors:
    def test_hand_worked_order_and_shape(self):
        # one cell, sizes (0.5, 0.25), ratios (1, 4): (0.5,1), (0.25,1), (0.5,4)
        a = ops.generate_anchors(1, 1, [0.5, 0.25], [1, 4])
        w, h = a[:, 2] - a[:, 0], a[:, 3] - a[:, 1]
        torch.testing.assert_close(w, torch.tensor([0.5, 0.25, 1.0]))  # s * sqrt(r)
        torch.testing.assert_close(h, torch.tensor([0.5, 0.25, 0.25]))  # s / sqrt(r)
        torch.testing.assert_close((a[:, :2] + a[:, 2:]) / 2, torch.full((3, 2), 0.5))

    @pytest.mark.parametrize("hw", [(4, 4), (5, 7), (6, 3), (1, 1)])
    def test_parity_with_d2l_multibox_prior(self, hw):
        sizes, ratios = [0.75, 0.5, 0.25], [1, 2, 0.5]
        ours = ops.generate_anchors(*hw, sizes, ratios)
        theirs = d2l.multibox_prior(torch.zeros(1, 3, *hw), sizes, ratios)[0]
        assert ours.shape == (hw[0] * hw[1] * 5, 4)
        torch.testing.assert_close(ours, theirs)

    def test_pixel_aspect_ratio_is_r(self):
        # on a 6 x 12 map (image twice as wide as high), r stays the aspect ratio in pixels
        a = ops.generate_anchors(6, 12, [0.5], [1, 2, 0.5])[:3]
        w_px, h_px = (a[:, 2] - a[:, 0]) * 12, (a[:, 3] - a[:, 1]) * 6
        torch.testing.assert_close(w_px / h_px, torch.tensor([1.0, 2.0, 0.5]))

    def test_bad(self):
        with pytest.raises(ValueError, match="fmap_h"):
            ops.generate_anchors(0, 3, [0.5], [1])
        with pytest.raises(ValueError, match="positive"):
            ops.generate_anchors(2, 2, [0.5], [0])
        with pytest.raises(ValueError, match="at least one"):
            ops.generate_anchors(2, 2, [], [1])


class TestMatchAnchors:
    def test_hand_worked_greedy(self):
        # the largest entry 0.9 gives box 1 to anchor 2; then 0.6 gives box 0 to anchor 0
        # (not anchor 2, already taken); anchor 1 (0.55 with box 0) passes the threshold
        iou = torch.tensor([[0.6, 0.1], [0.55, 0.2], [0.8, 0.9], [0.1, 0.3]])
        assert ops.match_anchors(iou).tolist() == [0, 0, 1, -1]

    def test_low_iou_box_still_gets_an_anchor(self):
        iou = torch.tensor([[0.1], [0.2], [0.0]])
        assert ops.match_anchors(iou).tolist() == [-1, 0, -1]

    @pytest.mark.parametrize("seed", range(20))
    def test_vectorised_equals_loop(self, seed):
        g = torch.Generator().manual_seed(seed)
        iou = torch.rand(30, 6, generator=g).round(decimals=1)  # many ties
        iou[torch.rand(30, 6, generator=g) < 0.5] = 0.0
        assert torch.equal(ops.match_anchors(iou, 0.5), _greedy_loop(iou, 0.5))

    def test_more_boxes_than_anchors_and_empty(self):
        iou = torch.rand(2, 5, generator=torch.Generator().manual_seed(0))
        assert torch.equal(ops.match_anchors(iou, 0.5), _greedy_loop(iou, 0.5))
        assert ops.match_anchors(torch.zeros(4, 0)).tolist() == [-1] * 4
        assert ops.match_anchors(torch.zeros(0, 3)).shape == (0,)

    def test_bad(self):
        with pytest.raises(ValueError, match=r"Tensor\[A, G\]"):
            ops.match_anchors(torch.zeros(3))
        with pytest.raises(ValueError, match="NaN"):
            ops.match_anchors(torch.tensor([[float("nan")]]))


class TestOffsets:
    def test_hand_worked(self):
        anchor = torch.tensor([[0.0, 0.0, 2.0, 2.0]])  # centre (1, 1), 2 x 2
        box = torch.tensor([[1.0, 0.0, 3.0, 4.0]])  # centre (2, 2), 2 x 4
        expected = torch.tensor([[0.5 / 0.1, 0.5 / 0.1, 0.0, torch.log(torch.tensor(2.0)) / 0.2]])
        torch.testing.assert_close(ops.encode_offsets(anchor, box), expected)

    def test_round_trip_and_d2l(self):
        anchors = ops.generate_anchors(3, 3, [0.4, 0.2], [1, 2])
        boxes, _ = _gt(1, len(anchors), 0)
        off = ops.encode_offsets(anchors, boxes[0])
        torch.testing.assert_close(ops.decode_offsets(anchors, off), boxes[0], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(off, d2l.offset_boxes(anchors, boxes[0]), atol=1e-3, rtol=1e-4)  # d2l adds eps in log
        torch.testing.assert_close(ops.decode_offsets(anchors, off), d2l.offset_inverse(anchors, off))

    def test_batched_decode(self):
        anchors = ops.generate_anchors(2, 2, [0.4], [1, 2])
        off = torch.randn(3, len(anchors), 4, generator=torch.Generator().manual_seed(0))
        out = ops.decode_offsets(anchors, off)
        assert out.shape == (3, len(anchors), 4)
        torch.testing.assert_close(out[1], ops.decode_offsets(anchors, off[1]))
        with pytest.raises(ValueError, match="offsets must be"):
            ops.decode_offsets(anchors, off[:, :3])


class TestLabelAnchors:
    @pytest.mark.parametrize("seed", range(15))
    def test_parity_with_d2l_multibox_target(self, seed):
        g = torch.Generator().manual_seed(seed)
        G = int(torch.randint(1, 8, (1,), generator=g))
        anchors = ops.generate_anchors(5, 5, [0.3, 0.15], [1, 2, 0.5])
        boxes, cls = _gt(4, G, seed)
        o1, m1, l1 = d2l.multibox_target(anchors[None], torch.cat([cls[..., None].float(), boxes], -1))
        l2, o2, m2 = ops.label_anchors(anchors, boxes, cls)
        assert torch.equal(l1, l2) and torch.equal(m1, m2.reshape(4, -1))
        torch.testing.assert_close(o1, o2.reshape(4, -1), atol=1e-3, rtol=1e-4)

    @pytest.mark.parametrize("seed", range(5))
    def test_properties_with_padding(self, seed):
        anchors = ops.generate_anchors(6, 6, [0.3, 0.15], [1, 2, 0.5])
        boxes, cls = _gt(3, 6, seed)
        cls[0, 4:] = -1  # image 0 has 4 boxes, image 2 none
        cls[2] = -1
        boxes[cls < 0] = -1.0  # padding coordinates do not matter
        labels, offsets, mask = ops.label_anchors(anchors, boxes, cls, iou_threshold=0.5)
        assert (labels[2] == 0).all() and (mask[2] == 0).all()
        for b in range(2):
            valid = cls[b] >= 0
            iou = box_iou(anchors, boxes[b][valid])
            match = ops.match_anchors(iou, 0.5)
            # same as the single-image matcher; every real box got an anchor of its class
            assert torch.equal(labels[b], torch.where(match >= 0, cls[b][valid][match.clamp(min=0)] + 1, 0))
            assert set(match[match >= 0].tolist()) == set(range(int(valid.sum())))
            # a positive either passes the threshold or is its box's greedy pick; negatives are below it
            assert (iou.max(1).values[match < 0] < 0.5).all()
            assert torch.equal(mask[b, :, 0] > 0, match >= 0) and (offsets[b][match < 0] == 0).all()

    def test_bad(self):
        anchors = ops.generate_anchors(2, 2, [0.5], [1])
        with pytest.raises(ValueError, match=r"\[B, G, 4\]"):
            ops.label_anchors(anchors, torch.zeros(3, 4), torch.zeros(3, dtype=torch.long))
        with pytest.raises(ValueError, match="x1 <= x2"):
            ops.label_anchors(anchors, torch.tensor([[[0.5, 0.5, 0.1, 0.9]]]), torch.tensor([[0]]))


class TestHardNegativeMining:
    def test_hand_worked(self):
        loss = torch.tensor([[0.1, 0.9, 0.5, 0.8, 0.2, 0.7, 0.05, 0.6]])
        labels = torch.tensor([[2, 0, 0, 0, 0, 0, 0, 0]])
        # 1 positive -> the 3 hardest negatives: losses 0.9, 0.8, 0.7
        keep = ops.hard_negative_mining(loss, labels)
        assert keep.tolist() == [[True, True, False, True, False, True, False, False]]

    def test_ratio_per_image_and_no_positives(self):
        g = torch.Generator().manual_seed(0)
        loss = torch.rand(3, 100, generator=g)
        labels = torch.zeros(3, 100, dtype=torch.long)
        labels[0, :5] = 1
        labels[1, :40] = 1  # 120 negatives wanted, only 60 exist
        keep = ops.hard_negative_mining(loss, labels)
        assert keep.sum(1).tolist() == [20, 100, 0]
        neg0 = keep[0] & (labels[0] == 0)
        assert loss[0][neg0].min() >= loss[0][(labels[0] == 0) & ~neg0].max()

    def test_bad(self):
        with pytest.raises(ValueError, match=r"\[B, A\]"):
            ops.hard_negative_mining(torch.zeros(2, 3), torch.zeros(2, 4, dtype=torch.long))
