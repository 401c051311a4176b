"""d2lcv.metrics.detection: AP variants by hand, the worked example of AI Computing Systems (Chen et al.), parity with pycocotools."""


import numpy as np
import pytest
import torch

from d2lcv import metrics

# The worked example of AI Computing Systems, ch. 3: 20 detections of class A, 25 ground-truth boxes, true positives at ranks
# 1, 2, 4, 9, 11, 13, 17 -> AP = (1 + 1 + 3/4 + 6/13 + 6/13 + 6/13 + 7/17) / 25 (all-point).
SEED_TP_RANKS = (1, 2, 4, 9, 11, 13, 17)


def seed_example():
    tp = torch.zeros(20, dtype=torch.bool)
    tp[[r - 1 for r in SEED_TP_RANKS]] = True
    return metrics.precision_recall(tp, 25)


def synthetic(num_images, num_classes, seed, size=300.0):
    """Ground truth, and detections made from it: jittered copies (some twice, some with the
    wrong class), missed boxes and false positives; scores rounded so that ties occur."""
    g = torch.Generator().manual_seed(seed)
    dets, gts = [], []
    for _ in range(num_images):
        G = int(torch.randint(0, 6, (1,), generator=g))
        xy = torch.rand(G, 2, generator=g) * size * 0.7
        wh = torch.rand(G, 2, generator=g) * size * 0.3 + 4
        boxes, labels = torch.cat([xy, xy + wh], 1), torch.randint(0, num_classes, (G,), generator=g)
        src = torch.repeat_interleave(torch.arange(G), torch.randint(0, 3, (G,), generator=g))
        jit = boxes[src] + torch.randn(len(src), 4, generator=g) * wh[src].repeat(1, 2) * 0.15
        jit = torch.cat([jit[:, :2].minimum(jit[:, 2:]), jit[:, :2].maximum(jit[:, 2:])], 1)
        dl = labels[src].clone()
        flip = torch.rand(len(src), generator=g) < 0.1
        dl[flip] = torch.randint(0, num_classes, (int(flip.sum()),), generator=g)
        F = int(torch.randint(0, 5, (1,), generator=g))
        fxy = torch.rand(F, 2, generator=g) * size * 0.8
        fp = torch.cat([fxy, fxy + torch.rand(F, 2, generator=g) * size * 0.2 + 2], 1)
        db, dl = torch.cat([jit, fp]), torch.cat([dl, torch.randint(0, num_classes, (F,), generator=g)])
        dets.append(dict(boxes=db, scores=torch.rand(len(db), generator=g).round(decimals=2), labels=dl))
        gts.append(dict(boxes=boxes, labels=labels))
    return dets, gts


def coco_eval(dets, gts, num_classes):
    return metrics.coco_evaluator(dets, gts, num_classes)


class TestAveragePrecision:
    def test_seed_worked_example(self):
        rec, prec = seed_example()
        expected = (1 + 1 + 3 / 4 + 6 / 13 + 6 / 13 + 6 / 13 + 7 / 17) / 25
        assert metrics.average_precision(rec, prec, "voc_all") == pytest.approx(expected, abs=1e-12)
        assert round(expected, 4) == 0.1819
        # without interpolation the 4th and 5th true positives count 4/9 and 5/11
        plain = (1 + 1 + 3 / 4 + 4 / 9 + 5 / 11 + 6 / 13 + 7 / 17) / 25
        assert metrics.average_precision(rec, prec, "uninterpolated") == pytest.approx(plain, abs=1e-12)

    def test_seed_example_11_and_101_point(self):
        rec, prec = seed_example()
        # recall reaches 0.1 at the 3rd TP (3/25 = 0.12, p_interp 3/4), 0.2 at the 5th (6/13);
        # 0.3 is never reached: VOC11 = (1 + 3/4 + 6/13) / 11
        assert metrics.average_precision(rec, prec, "voc11") == pytest.approx((1 + 0.75 + 6 / 13) / 11, abs=1e-12)
        # COCO: levels 0..0.28 (29 of 101) by the envelope at the first rank reaching each
        env = {1: 1.0, 2: 1.0, 3: 0.75, 4: 6 / 13, 5: 6 / 13, 6: 6 / 13, 7: 7 / 17}
        levels = np.linspace(0, 1, 101)
        want = sum(env[max(1, int(np.ceil(r * 25 - 1e-9)))] for r in levels if r <= 7 / 25 + 1e-12) / 101
        assert metrics.average_precision(rec, prec, "coco101") == pytest.approx(want, abs=1e-12)

    def test_perfect_and_empty(self):
        rec, prec = metrics.precision_recall(torch.ones(5, dtype=torch.bool), 5)
        for method in metrics.AP_METHODS:
            assert metrics.average_precision(rec, prec, method) == pytest.approx(1.0)
            assert metrics.average_precision(torch.zeros(0), torch.zeros(0), method) == 0.0

    def test_bad(self):
        with pytest.raises(ValueError, match="method"):
            metrics.average_precision(torch.zeros(2), torch.zeros(2), "voc12")
        with pytest.raises(ValueError, match="num_gt"):
            metrics.precision_recall(torch.ones(3, dtype=torch.bool), 0)


class TestEvaluateDetections:
    @pytest.mark.parametrize("seed", range(12))
    def test_parity_with_pycocotools(self, seed):
        C = 4
        dets, gts = synthetic(15, C, seed)
        E, r = coco_eval(dets, gts, C), metrics.evaluate_detections(dets, gts, C)
        for ours, theirs in ((r.map, E.stats[0]), (r.map_50, E.stats[1]), (r.map_75, E.stats[2])):
            assert ours == pytest.approx(theirs, abs=1e-4)
        p = E.eval["precision"][:, :, :, 0, -1]  # [T, R, K], all areas, maxDets=100
        coco_ap = np.where(p.min(axis=(0, 1))[:, None] > -1, p.mean(axis=1).T, np.nan)  # [K, T]
        np.testing.assert_allclose(r.ap.numpy(), coco_ap, atol=1e-4)

    def test_max_dets_and_many_detections(self):
        # 150 detections in one image and class: only the top 100 count, as in COCOeval
        dets, gts = synthetic(3, 2, 7)
        g = torch.Generator().manual_seed(1)
        xy = torch.rand(150, 2, generator=g) * 250
        dets[0] = dict(boxes=torch.cat([xy, xy + 40], 1), scores=torch.rand(150, generator=g), labels=torch.zeros(150, dtype=torch.long))
        E, r = coco_eval(dets, gts, 2), metrics.evaluate_detections(dets, gts, 2)
        assert r.map == pytest.approx(E.stats[0], abs=1e-4)

    def test_hand_worked(self):
        gt = [dict(boxes=torch.tensor([[0.0, 0, 10, 10], [20.0, 20, 30, 30]]), labels=torch.tensor([0, 0]))]
        # a hit, a duplicate of it (FP), and a miss of the second box
        det = [dict(boxes=torch.tensor([[0.0, 0, 10, 10], [0.0, 0, 10, 9], [50.0, 50, 60, 60]]),
                    scores=torch.tensor([0.9, 0.8, 0.7]), labels=torch.tensor([0, 0, 0]))]
        r = metrics.evaluate_detections(det, gt, 1, iou_thresholds=[0.5], method="voc_all")
        assert r.ap[0, 0].item() == pytest.approx(0.5)  # recall 1/2 at precision 1
        torch.testing.assert_close(r.precision[0][0], torch.tensor([1.0, 0.5, 1 / 3], dtype=torch.float64))

    def test_no_detections_no_ground_truth(self):
        empty_d = dict(boxes=torch.zeros(0, 4), scores=torch.zeros(0), labels=torch.zeros(0, dtype=torch.long))
        gt = dict(boxes=torch.tensor([[0.0, 0, 5, 5]]), labels=torch.tensor([1]))
        r = metrics.evaluate_detections([empty_d], [gt], 3)
        assert r.map == 0.0 and torch.isnan(r.ap[0]).all() and (r.ap[1] == 0).all()
        empty_g = dict(boxes=torch.zeros(0, 4), labels=torch.zeros(0, dtype=torch.long))
        assert np.isnan(metrics.evaluate_detections([empty_d], [empty_g], 3).map)
        assert np.isnan(metrics.evaluate_detections([], [], 3).map)

    def test_bad(self):
        dets, gts = synthetic(2, 2, 0)
        with pytest.raises(ValueError, match="one detections dict per image"):
            metrics.evaluate_detections(dets[:1], gts, 2)
        bad = [dict(d) for d in dets]
        bad[0]["scores"] = torch.full_like(bad[0]["scores"], float("nan"))
        if len(bad[0]["scores"]):
            with pytest.raises(ValueError, match="NaN"):
                metrics.evaluate_detections(bad, gts, 2)
        with pytest.raises(ValueError, match="labels outside"):
            metrics.evaluate_detections(dets, gts, 1)
        with pytest.raises(ValueError, match="lacks"):
            metrics.evaluate_detections([dict(boxes=torch.zeros(0, 4))], gts[:1], 2)
        with pytest.raises(ValueError, match="x1 <= x2"):
            metrics.evaluate_detections([dict(boxes=torch.tensor([[5.0, 0, 1, 1]]), scores=torch.ones(1), labels=torch.zeros(1, dtype=torch.long))], gts[:1], 2)


class TestSimulatedDetector:
    @pytest.mark.parametrize("seed", range(20))
    def test_parity_with_pycocotools(self, seed):
        dets, gts = metrics.simulate_detections(25, 5, torch.Generator().manual_seed(seed))
        E, r = coco_eval(dets, gts, 5), metrics.evaluate_detections(dets, gts, 5)
        assert r.map == pytest.approx(E.stats[0], abs=1e-4) and r.map_50 == pytest.approx(E.stats[1], abs=1e-4)

    def test_seeded_and_better_detector_scores_higher(self):
        run = lambda seed, **kw: metrics.simulate_detections(40, 3, torch.Generator().manual_seed(seed), **kw)
        a, b = run(0), run(0)
        assert all(torch.equal(x["boxes"], y["boxes"]) and torch.equal(x["scores"], y["scores"]) for x, y in zip(a[0], b[0]))
        sloppy = metrics.evaluate_detections(*run(1, jitter=0.2), 3).map
        sharp = metrics.evaluate_detections(*run(1, jitter=0.03), 3).map
        assert sharp > sloppy + 0.1
