"""Issue #12, item 9: AP for small, medium and large objects (COCO's area ranges), checked
against pycocotools' COCOeval (``stats[3:6]``)."""

import math

import pytest
import torch

from d2lcv import metrics

SIZES = ("small", "medium", "large")


def _box(x, y, w, h):
    return [x, y, x + w, y + h]


def _det(boxes, labels, scores):
    return {"boxes": torch.tensor(boxes, dtype=torch.float32), "labels": torch.tensor(labels), "scores": torch.tensor(scores)}


def _gt(boxes, labels):
    return {"boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4), "labels": torch.tensor(labels, dtype=torch.long)}


def _assert_like_coco(result, coco):
    for size in SIZES:
        ours, theirs = result[f"map_{size}"], coco[f"map_{size}"]
        if theirs == -1:  # pycocotools: no ground truth of that size
            assert math.isnan(ours), size
        else:
            assert ours == pytest.approx(theirs, abs=1e-12), size


class TestSizeAP:
    def test_ranges_are_cocos(self):
        assert metrics.AREA_RANGES == {"small": (0.0, 32.0**2), "medium": (32.0**2, 96.0**2), "large": (96.0**2, 1e10)}

    def test_hand_worked(self):
        # one small (20 x 20) and one large (100 x 100) object of class 0, both found, plus
        # a small false positive. For "small", the large object and the detection on it are
        # ignored (neither a miss nor a false positive); the small false positive counts.
        gts = [_gt([_box(0, 0, 20, 20), _box(200, 200, 100, 100)], [0, 0])]
        dets = [_det([_box(200, 200, 100, 100), _box(0, 0, 20, 20), _box(500, 500, 10, 10)], [0, 0, 0], [0.9, 0.8, 0.7])]
        r = metrics.evaluate_detections(dets, gts, 1)
        assert r.map_small == pytest.approx(1.0)  # ranking: (ignored), TP, FP: AP 1
        assert r.map_large == pytest.approx(1.0)  # TP, then two detections outside the range: ignored
        assert math.isnan(r.map_medium)  # no medium object: COCOeval says -1, we say NaN
        assert r.ap_by_size.shape == (3, 1, 10) and r.num_gt_by_size.tolist() == [[1], [0], [1]]
        _assert_like_coco(r, metrics.coco_map(dets, gts, 1))

    def test_detection_on_an_ignored_object_is_not_a_false_positive(self):
        # a detection whose best match is a large object: for "small" it is ignored even
        # though it ranks first, so small AP stays 1
        gts = [_gt([_box(0, 0, 10, 10), _box(100, 100, 120, 120)], [0, 0])]
        dets = [_det([_box(100, 100, 120, 120), _box(0, 0, 10, 10)], [0, 0], [0.95, 0.5])]
        r = metrics.evaluate_detections(dets, gts, 1)
        assert r.map_small == pytest.approx(1.0) and r.map_large == pytest.approx(1.0)
        _assert_like_coco(r, metrics.coco_map(dets, gts, 1))

    def test_a_regular_object_is_preferred_to_an_ignored_one(self):
        # the detection overlaps a small object (IoU 0.6) and a large one (IoU 0.8): for
        # "small" it takes the small one, as COCOeval does, and is a true positive
        small, large = _box(0, 0, 30, 30), _box(0, 0, 100, 100)
        gts = [_gt([large, small], [0, 0])]
        dets = [_det([_box(0, 0, 30, 30)], [0], [0.9])]
        r = metrics.evaluate_detections(dets, gts, 1, iou_thresholds=[0.05, 0.5])
        _assert_like_coco(metrics.evaluate_detections(dets, gts, 1), metrics.coco_map(dets, gts, 1))
        assert r.ap_by_size[0, 0].tolist() == pytest.approx([1.0, 1.0])

    def test_boundaries_are_inclusive(self):
        # a 32 x 32 object (area 1024) is both small and medium, as in COCOeval
        gts = [_gt([_box(0, 0, 32, 32), _box(100, 100, 96, 96)], [0, 1])]
        dets = [_det([_box(0, 0, 32, 32), _box(100, 100, 96, 96)], [0, 1], [0.9, 0.8])]
        r = metrics.evaluate_detections(dets, gts, 2)
        assert r.num_gt_by_size.tolist() == [[1, 0], [1, 1], [0, 1]]
        _assert_like_coco(r, metrics.coco_map(dets, gts, 2))

    def test_no_ground_truth_of_any_size(self):
        gts = [_gt([], [])]
        dets = [_det([_box(0, 0, 10, 10)], [0], [0.9])]
        r = metrics.evaluate_detections(dets, gts, 1)
        assert all(math.isnan(r[f"map_{s}"]) for s in SIZES) and math.isnan(r.map)
        _assert_like_coco(r, metrics.coco_map(dets, gts, 1))

    @pytest.mark.parametrize("seed", range(8))
    def test_parity_with_pycocotools(self, seed):
        g = torch.Generator().manual_seed(seed)
        image_size = (150.0, 300.0, 600.0)[seed % 3]  # more small or more large objects
        dets, gts = metrics.simulate_detections(12, 3, g, image_size=image_size, max_objects=8)
        r, coco = metrics.evaluate_detections(dets, gts, 3), metrics.coco_map(dets, gts, 3)
        _assert_like_coco(r, coco)
        assert r.map == pytest.approx(coco["map"], abs=1e-12)  # the all-sizes numbers are unchanged

    def test_parity_with_max_dets_and_a_class_missing_in_a_range(self):
        g = torch.Generator().manual_seed(11)
        dets, gts = metrics.simulate_detections(6, 2, g, image_size=200.0, duplicate_rate=0.9, false_positives=6.0)
        # class 1 only has small objects here
        for gt in gts:
            small = (gt["boxes"][:, 2:] - gt["boxes"][:, :2]).prod(1) < 900
            keep = (gt["labels"] == 0) | small
            gt["boxes"], gt["labels"] = gt["boxes"][keep], gt["labels"][keep]
        r, coco = metrics.evaluate_detections(dets, gts, 2), metrics.coco_map(dets, gts, 2)
        _assert_like_coco(r, coco)
        assert bool(r.ap_by_size[2, 1].isnan().all()) and r.num_gt_by_size[2, 1] == 0

    def test_readable_like_a_dict(self):
        r = metrics.evaluate_detections([_det([_box(0, 0, 50, 50)], [0], [0.9])], [_gt([_box(0, 0, 50, 50)], [0])], 1)
        assert r["map_medium"] == pytest.approx(1.0)
