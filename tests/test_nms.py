"""d2lcv.ops.nms: greedy, batched and soft NMS; parity with torchvision.ops, ties included."""

import pytest
import torch
import torchvision.ops as tvops

from d2lcv.ops import batched_nms, nms, soft_nms


def _case(n, seed, tie_decimals=1):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * 200
    wh = torch.rand(n, 2, generator=g) * 60 + 1
    scores = torch.rand(n, generator=g).round(decimals=tie_decimals)  # many equal scores
    return torch.cat([xy, xy + wh], 1), scores, torch.randint(0, 3, (n,), generator=g)


class TestNMS:
    def test_hand_worked(self):
        # box 1 overlaps box 0 with IoU 81/119 > 0.5 and is dropped; box 2 is far away
        boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [1.0, 1.0, 11.0, 11.0], [50.0, 50.0, 60.0, 60.0]])
        scores = torch.tensor([0.9, 0.8, 0.7])
        assert nms(boxes, scores, 0.5).tolist() == [0, 2]
        assert nms(boxes, scores, 0.7).tolist() == [0, 1, 2]

    def test_chain(self):
        # 0 suppresses 1, so 1 cannot suppress 2: greedy keeps 0 and 2
        boxes = torch.tensor([[0.0, 0, 10, 10], [5.0, 0, 15, 10], [10.0, 0, 20, 10]])
        assert nms(boxes, torch.tensor([0.9, 0.8, 0.7]), 0.3).tolist() == [0, 2]

    @pytest.mark.parametrize("threshold", [0.0, 0.3, 0.5, 0.7, 1.0])
    @pytest.mark.parametrize("n", [1, 2, 50, 700])
    def test_parity_with_torchvision(self, n, threshold):
        for seed in range(3):
            boxes, scores, _ = _case(n, seed)
            assert torch.equal(nms(boxes, scores, threshold), tvops.nms(boxes, scores, threshold))

    @pytest.mark.parametrize("block_size", [1, 7, 64, 10_000])
    def test_block_size_does_not_matter(self, block_size):
        boxes, scores, _ = _case(300, 5)
        assert torch.equal(nms(boxes, scores, 0.4, block_size=block_size), tvops.nms(boxes, scores, 0.4))

    def test_all_scores_equal_and_identical_boxes(self):
        boxes = torch.tensor([[0.0, 0, 10, 10]] * 4)
        assert nms(boxes, torch.ones(4), 0.5).tolist() == tvops.nms(boxes, torch.ones(4), 0.5).tolist() == [0]

    def test_empty_and_zero_area(self):
        out = nms(torch.zeros(0, 4), torch.zeros(0), 0.5)
        assert out.dtype == torch.long and out.shape == (0,)
        points = torch.tensor([[1.0, 1, 1, 1], [1.0, 1, 1, 1]])  # zero area: IoU 0, both kept
        assert nms(points, torch.tensor([0.5, 0.4]), 0.5).tolist() == [0, 1]

    def test_bad(self):
        boxes, scores, _ = _case(5, 0)
        with pytest.raises(ValueError, match="NaN"):
            nms(boxes, torch.tensor([0.1, float("nan"), 0.2, 0.3, 0.4]), 0.5)
        with pytest.raises(ValueError, match="one per box"):
            nms(boxes, scores[:3], 0.5)
        with pytest.raises(ValueError, match="x1 <= x2"):
            nms(boxes.flip(1), scores, 0.5)
        with pytest.raises(ValueError, match="iou_threshold"):
            nms(boxes, scores, 1.5)


class TestBatchedNMS:
    def test_classes_do_not_suppress_each_other(self):
        boxes = torch.tensor([[0.0, 0, 10, 10], [1.0, 1, 11, 11]])
        scores = torch.tensor([0.9, 0.8])
        assert batched_nms(boxes, scores, torch.tensor([0, 1]), 0.5).tolist() == [0, 1]
        assert batched_nms(boxes, scores, torch.tensor([2, 2]), 0.5).tolist() == [0]

    @pytest.mark.parametrize("n", [0, 1, 30, 900])
    def test_parity_with_torchvision(self, n):
        for seed in range(3):
            boxes, scores, idxs = _case(n, seed)
            assert torch.equal(batched_nms(boxes, scores, idxs, 0.5), tvops.batched_nms(boxes, scores, idxs, 0.5))

    def test_parity_large_same_set(self):
        # above 1000 boxes (4000 coordinates) torchvision loops over classes and re-sorts with
        # an unstable sort: the same boxes are kept, ties among classes may come in another order
        boxes, scores, idxs = _case(1500, 1)
        ours, theirs = batched_nms(boxes, scores, idxs, 0.5), tvops.batched_nms(boxes, scores, idxs, 0.5)
        assert torch.equal(ours.sort().values, theirs.sort().values)
        assert (scores[ours].diff() <= 0).all()

    def test_bad(self):
        boxes, scores, _ = _case(4, 0)
        with pytest.raises(ValueError, match="idxs"):
            batched_nms(boxes, scores, torch.zeros(3, dtype=torch.long), 0.5)


def _soft_nms_loop(boxes, scores, sigma, thresh, method, iou_thr):
    """Bodla et al.'s Algorithm 1, one box at a time."""
    from d2lcv.ops import box_iou

    s = scores.clone().tolist()
    idx = list(range(len(s)))
    keep, out = [], []
    while idx:
        m = max(idx, key=lambda i: (s[i], -i))
        keep.append(m)
        out.append(s[m])
        idx.remove(m)
        for i in idx:
            o = float(box_iou(boxes[m : m + 1], boxes[i : i + 1]))
            s[i] *= float(torch.exp(torch.tensor(-o * o / sigma))) if method == "gaussian" else (1 - o if o > iou_thr else 1)
        idx = [i for i in idx if s[i] >= thresh]
    return keep, out


class TestSoftNMS:
    @pytest.mark.parametrize("method", ["gaussian", "linear"])
    def test_equals_loop(self, method):
        boxes, _, _ = _case(40, 3)
        scores = torch.rand(40, generator=torch.Generator().manual_seed(9))
        keep, new = soft_nms(boxes, scores, 0.5, 0.05, method)
        k2, s2 = _soft_nms_loop(boxes, scores, 0.5, 0.05, method, 0.3)
        assert keep.tolist() == k2
        torch.testing.assert_close(new, torch.tensor(s2), rtol=1e-5, atol=1e-6)

    def test_keeps_overlapping_box_with_lower_score(self):
        boxes = torch.tensor([[0.0, 0, 10, 10], [1.0, 1, 11, 11]])
        keep, new = soft_nms(boxes, torch.tensor([0.9, 0.8]), sigma=0.5)
        iou = 81 / 119
        assert keep.tolist() == [0, 1]
        torch.testing.assert_close(new, torch.tensor([0.9, 0.8 * torch.exp(torch.tensor(-iou**2 / 0.5)).item()]))

    def test_empty_and_bad(self):
        keep, new = soft_nms(torch.zeros(0, 4), torch.zeros(0))
        assert keep.shape == new.shape == (0,) and keep.dtype == torch.long
        with pytest.raises(ValueError, match="method"):
            soft_nms(*_case(3, 0)[:2], method="hard")
