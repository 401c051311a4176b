"""Issue #12, items 7 and 8: NMS and the detection metrics compute in the input's dtype
(float64 stays float64, as in torchvision and pycocotools), and bad input gets a clear
ValueError/TypeError naming what was received."""

import pytest
import torch
import torchvision.ops as tvops

from d2lcv import metrics, ops

F64 = torch.float64
# two 10 x 10 boxes at 1e6 (where float32's spacing is 1/16): box 1 is 10 x 5.000001, so its
# IoU with box 0 is 0.5000001 in float64 but exactly 0.5 once rounded to float32
NEAR_TIE = torch.tensor([[1e6, 1e6, 1e6 + 10, 1e6 + 10], [1e6, 1e6, 1e6 + 10, 1e6 + 5.000001]], dtype=F64)


class TestNmsInFloat64:
    def test_near_tie_like_torchvision(self):
        scores = torch.tensor([0.9, 0.8], dtype=F64)
        assert tvops.nms(NEAR_TIE, scores, 0.5).tolist() == [0]  # 0.5000001 > 0.5: suppressed
        assert ops.nms(NEAR_TIE, scores, 0.5).tolist() == [0]
        assert ops.nms(NEAR_TIE.float(), scores.float(), 0.5).tolist() == [0, 1]  # float32: IoU 0.5, kept

    def test_batched_near_tie(self):
        boxes = torch.cat([NEAR_TIE, NEAR_TIE])
        scores = torch.tensor([0.9, 0.8, 0.7, 0.6], dtype=F64)
        idxs = torch.tensor([0, 0, 1, 1])
        assert ops.batched_nms(boxes, scores, idxs, 0.5).tolist() == tvops.batched_nms(boxes, scores, idxs, 0.5).tolist() == [0, 2]

    def test_score_near_tie(self):
        # scores 1e-12 apart are equal in float32; the ranking must use them as given
        boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 10.0, 9.0]], dtype=F64)
        scores = torch.tensor([0.5, 0.5 + 1e-12], dtype=F64)
        assert ops.nms(boxes, scores, 0.5).tolist() == tvops.nms(boxes, scores, 0.5).tolist() == [1]

    @pytest.mark.parametrize("seed", range(5))
    def test_random_float64_parity(self, seed):
        g = torch.Generator().manual_seed(seed)
        xy = torch.rand(300, 2, generator=g, dtype=F64) * 1e6
        boxes = torch.cat([xy, xy + torch.rand(300, 2, generator=g, dtype=F64) * 3e5], 1)
        scores = torch.rand(300, generator=g, dtype=F64)
        for t in (0.3, 0.5, 0.7):
            assert torch.equal(ops.nms(boxes, scores, t), tvops.nms(boxes, scores, t))

    def test_soft_nms_keeps_the_dtype(self):
        keep, new_scores = ops.soft_nms(NEAR_TIE, torch.tensor([0.9, 0.8], dtype=F64))
        assert new_scores.dtype == F64 and keep.tolist() == [0, 1]


def _image(boxes, labels, scores=None, dtype=F64):
    d = {"boxes": torch.tensor(boxes, dtype=dtype), "labels": torch.tensor(labels)}
    if scores is not None:
        d["scores"] = torch.tensor(scores, dtype=dtype)
    return d


class TestMetricsInFloat64:
    def test_box_near_tie_matches_pycocotools(self):
        # gt A at 1e6 and B at the origin; detection a covers 4.999999 / 10 of A: IoU 0.4999999,
        # a false positive in float64 but a true positive (IoU 0.5) in float32
        gts = [_image([[1e6, 1e6, 1e6 + 10, 1e6 + 10], [0, 0, 10, 10]], [0, 0])]
        dets = [_image([[0, 0, 10, 10], [1e6, 1e6, 1e6 + 10, 1e6 + 4.999999]], [0, 0], [0.9, 0.8])]
        ours = metrics.evaluate_detections(dets, gts, 1)
        coco = metrics.coco_map(dets, gts, 1)
        # recall 0.5 at precision 1, then a false positive: AP@0.5 = 51 / 101
        assert ours.map_50 == pytest.approx(51 / 101) == coco["map_50"]
        assert ours.map == pytest.approx(coco["map"])
        as32 = [{k: v.float() if v.is_floating_point() else v for k, v in d.items()} for d in dets]
        gts32 = [{k: v.float() if v.is_floating_point() else v for k, v in g.items()} for g in gts]
        assert metrics.evaluate_detections(as32, gts32, 1).map_50 == pytest.approx(1.0)  # what float32 says

    def test_score_near_tie_matches_pycocotools(self):
        gts = [_image([[0, 0, 10, 10]], [0])]
        # the true positive comes first in the input but scores 1e-12 lower than the false one
        dets = [_image([[0, 0, 10, 10], [50, 50, 60, 60]], [0, 0], [0.5, 0.5 + 1e-12])]
        ours = metrics.evaluate_detections(dets, gts, 1)
        # false positive first: precision 1/2 at recall 1, AP 0.5 (float32 would tie and say 1.0)
        assert ours.map_50 == pytest.approx(0.5) and ours.map_50 == pytest.approx(metrics.coco_map(dets, gts, 1)["map_50"])
        as32 = [{k: v.float() if v.is_floating_point() else v for k, v in d.items()} for d in dets]
        assert metrics.evaluate_detections(as32, gts, 1).map_50 == pytest.approx(1.0)

    @pytest.mark.parametrize("seed", range(3))
    def test_random_float64_parity(self, seed):
        dets, gts = metrics.simulate_detections(8, 3, torch.Generator().manual_seed(seed))
        dets = [{**d, "boxes": d["boxes"].double() + 1e6, "scores": d["scores"].double()} for d in dets]
        gts = [{**g, "boxes": g["boxes"].double() + 1e6} for g in gts]
        ours, coco = metrics.evaluate_detections(dets, gts, 3), metrics.coco_map(dets, gts, 3)
        assert ours.map == pytest.approx(coco["map"], abs=1e-12)
        assert ours.map_50 == pytest.approx(coco["map_50"], abs=1e-12)


class TestMessages:
    def test_batched_nms_infinite_box_is_named(self):
        boxes = torch.tensor([[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, float("inf"), 1.0]])
        with pytest.raises(ValueError, match=r"boxes must be finite .* got box 1: \[0\.0, 0\.0, inf, 1\.0\]"):
            ops.batched_nms(boxes, torch.tensor([0.9, 0.8]), torch.tensor([0, 1]), 0.5)

    def _one(self, **det):
        gts = [_image([[0, 0, 10, 10]], [0], dtype=torch.float32)]
        base = _image([[0, 0, 10, 10]], [0], [0.9], dtype=torch.float32)
        return [{**base, **det}], gts

    @pytest.mark.parametrize("labels", [torch.tensor([0.7]), torch.tensor([0.0]), torch.tensor([True])])
    def test_float_or_bool_labels(self, labels):
        dets, gts = self._one(labels=labels)
        with pytest.raises(TypeError, match=rf"detections\[0\]\['labels'\] must be an integer tensor .*, got {labels.dtype}"):
            metrics.evaluate_detections(dets, gts, 2)
        with pytest.raises(TypeError, match=r"ground_truths\[0\]\['labels'\] must be an integer tensor"):
            metrics.evaluate_detections(self._one()[0], [{**gts[0], "labels": labels}], 2)

    def test_list_scores(self):
        dets, gts = self._one(scores=[0.9])
        with pytest.raises(TypeError, match=r"detections\[0\]\['scores'\] must be a Tensor\[1\], got list"):
            metrics.evaluate_detections(dets, gts, 1)

    @pytest.mark.parametrize("max_dets", [0, -3, 2.5, True])
    def test_max_dets(self, max_dets):
        dets, gts = self._one()
        with pytest.raises(ValueError, match=rf"max_dets must be a positive int, got {max_dets!r}"):
            metrics.evaluate_detections(dets, gts, 1, max_dets=max_dets)

    def test_valid_input_still_fine(self):
        dets, gts = self._one()
        assert metrics.evaluate_detections(dets, gts, 1, max_dets=1).map == pytest.approx(1.0)
