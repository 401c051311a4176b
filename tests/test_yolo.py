"""Tests for YOLO: the v1 grid (d2lcv.ops.yolo), anchors and the direct location encoding
(d2lcv.ops.yolo_anchors), k-means anchors (d2lcv.ops.kmeans_anchors), the losses
(d2lcv.losses.yolo), the tiny models and the training recipe. Hand-worked cases (a centre on
a cell boundary, two objects in one cell, an object smaller than every anchor), round trips,
k-means against a brute-force check, empty and bad inputs."""

from __future__ import annotations

import math

import pytest
import torch

from d2lcv.losses import yolo_v1_loss, yolo_v3_loss
from d2lcv.models import TinyYOLOv3, YOLOv1
from d2lcv.models.detection import yolo_predict
from d2lcv.ops import (
    anchor_mean_iou,
    cell_of,
    first_per_slot,
    kmeans_anchors,
    postprocess_detections,
    shape_iou,
    yolo_decode,
    yolo_encode,
    yolo_priors,
    yolo_v1_boxes,
    yolo_v1_decode,
    yolo_v1_targets,
    yolo_v3_decode,
    yolo_v3_targets,
)
from d2lcv.recipes import train_yolo, yolo_checkpoint

ANCHORS = torch.tensor([[[0.1, 0.1], [0.2, 0.1]], [[0.5, 0.5], [0.3, 0.6]]])  # 2 scales x 2


def _v1_pred(target: torch.Tensor, num_boxes: int = 2) -> torch.Tensor:
    """A v1 prediction equal to the target: box 0 of each object cell is the object, conf 1."""
    N, S, _, K = target.shape
    pred = torch.zeros(N, S, S, 5 * num_boxes + K - 5)
    pred[..., :2], pred[..., 2:4] = target[..., :2], target[..., 2:4].sqrt()
    pred[..., 4], pred[..., 5 * num_boxes :] = target[..., 4], target[..., 5:]
    return pred


class TestGrid:
    def test_cell_boundaries_are_half_open(self):
        # centres at 0.5 on a 2x2 grid: cell 1 (below / right); at 1.0: the last cell
        boxes = torch.tensor([[0.4, 0.4, 0.6, 0.6], [0.0, 0.0, 0.2, 0.4], [0.9, 0.8, 1.0, 1.0]])
        i, j = cell_of(boxes, 2)
        assert i.tolist() == [1, 0, 1] and j.tolist() == [1, 0, 1]
        i, j = cell_of(boxes, torch.tensor([2, 4, 8]))
        assert i.tolist() == [1, 0, 7] and j.tolist() == [1, 0, 7]

    def test_first_per_slot(self):
        keep = first_per_slot(torch.tensor([3, 1, 3, 3, 1]), torch.tensor([1.0, 2, 5, 5, 2]))
        assert keep.tolist() == [False, True, True, False, False]  # ties: the first
        assert first_per_slot(torch.zeros(0, dtype=torch.long), torch.zeros(0)).shape == (0,)


class TestV1Targets:
    def test_box_centred_on_a_cell_boundary(self):
        # centre (0.25, 0.5) on a 4x4 grid: exactly on the edges of column 1 and row 2
        boxes = torch.tensor([[[0.125, 0.25, 0.375, 0.75]]])
        target, assigned = yolo_v1_targets(boxes, torch.tensor([[2]]), S=4, num_classes=3)
        assert target.shape == (1, 4, 4, 8) and assigned.tolist() == [[True]]
        assert target[0, 2, 1].tolist() == [0.0, 0.0, 0.25, 0.5, 1.0, 0.0, 0.0, 1.0]
        assert target.sum() == target[0, 2, 1].sum()  # every other cell is empty

    def test_two_objects_in_one_cell_the_larger_wins(self):
        boxes = torch.tensor([[[0.05, 0.05, 0.2, 0.2], [0.0, 0.0, 0.4, 0.4], [0.6, 0.6, 0.9, 0.9],
                               [9.0, 9.0, 9.0, 9.0]]])  # the last row is padding
        labels = torch.tensor([[0, 1, 2, -1]])
        target, assigned = yolo_v1_targets(boxes, labels, S=2, num_classes=3)
        assert assigned.tolist() == [[False, True, True, False]]
        assert target[0, 0, 0, 5:].tolist() == [0.0, 1.0, 0.0]  # the larger box's class
        torch.testing.assert_close(target[0, 0, 0, :4], torch.tensor([0.4, 0.4, 0.4, 0.4]))
        assert target[..., 4].sum() == 2

    def test_batched_equals_one_image_at_a_time(self):
        g = torch.Generator().manual_seed(0)
        xy = torch.rand(3, 5, 2, generator=g) * 0.7
        boxes = torch.cat([xy, xy + torch.rand(3, 5, 2, generator=g) * 0.3 + 0.01], -1)
        labels = torch.randint(0, 4, (3, 5), generator=g)
        labels[1, 3:] = -1
        target, assigned = yolo_v1_targets(boxes, labels, 5, 4)
        for b in range(3):
            t, a = yolo_v1_targets(boxes[b : b + 1], labels[b : b + 1], 5, 4)
            assert torch.equal(t[0], target[b]) and torch.equal(a[0], assigned[b])

    def test_empty(self):
        target, assigned = yolo_v1_targets(torch.zeros(2, 0, 4), torch.zeros(2, 0, dtype=torch.long), 3, 2)
        assert target.shape == (2, 3, 3, 7) and target.sum() == 0 and assigned.shape == (2, 0)

    @pytest.mark.parametrize("boxes, labels, match", [
        (torch.zeros(1, 4), torch.zeros(1, dtype=torch.long), r"gt_boxes must be \[B, G, 4\]"),
        (torch.tensor([[[0.1, 0.1, 0.2, 0.2]]]), torch.tensor([[0.0]]), "must be integers"),
        (torch.tensor([[[0.1, 0.1, 0.2, 0.2]]]), torch.tensor([[3]]), r"in 0\.\.2 or -1"),
        (torch.tensor([[[1.0, 1.0, 20.0, 20.0]]]), torch.tensor([[0]]), "normalised"),
        (torch.tensor([[[0.1, 0.1, 0.1, 0.2]]]), torch.tensor([[0]]), "positive width"),
        (torch.tensor([[[0.3, 0.1, 0.1, 0.2]]]), torch.tensor([[0]]), "x1 <= x2"),
    ])
    def test_bad_inputs(self, boxes, labels, match):
        with pytest.raises(ValueError, match=match):
            yolo_v1_targets(boxes, labels, 2, 3)


class TestV1DecodeAndLoss:
    def test_boxes_and_class_specific_scores(self):
        pred = torch.zeros(1, 2, 2, 2 * 5 + 2)
        pred[0, 1, 0, :5] = torch.tensor([0.5, 0.25, 0.5, 0.2, 0.8])  # row 1, column 0, box 0
        pred[0, 1, 0, 10:] = torch.tensor([0.75, 0.25])
        boxes, scores = yolo_v1_decode(pred, num_boxes=2)
        assert boxes.shape == (1, 8, 4) and scores.shape == (1, 8, 2)
        # centre ((0 + 0.5) / 2, (1 + 0.25) / 2), size (0.25, 0.04); it is row 2 * 2 + 0 = 4
        torch.testing.assert_close(boxes[0, 4], torch.tensor([0.125, 0.605, 0.375, 0.645]))
        torch.testing.assert_close(scores[0, 4], torch.tensor([0.6, 0.2]))
        assert scores[0, 5].abs().sum() == 0

    def test_loss_by_hand(self):
        # S = 1, B = 2, C = 2; the object: centre (0.5, 0.5), 0.25 x 0.25, class 0
        target = torch.tensor([[[[0.5, 0.5, 0.25, 0.25, 1.0, 1.0, 0.0]]]])
        pred = torch.tensor([[[[0.6, 0.5, 0.5, 0.5, 0.8, 0.0, 0.0, 0.1, 0.1, 0.3, 0.6, 0.4]]]])
        loss, parts = yolo_v1_loss(pred, target)
        iou = 0.15 * 0.25 / (2 * 0.0625 - 0.15 * 0.25)  # box 0 is responsible
        expected = {"box": 5 * 0.1**2, "obj": (0.8 - iou) ** 2, "noobj": 0.5 * 0.3**2, "cls": 0.32}
        for k, v in expected.items():
            assert math.isclose(float(parts[k]), v, rel_tol=1e-5), (k, float(parts[k]), v)
        assert math.isclose(float(loss), sum(expected.values()), rel_tol=1e-5)

    def test_the_responsible_predictor_has_the_highest_iou(self):
        target = torch.tensor([[[[0.5, 0.5, 0.25, 0.25, 1.0, 1.0]]]])
        pred = torch.tensor([[[[0.1, 0.1, 0.5, 0.5, 0.9, 0.5, 0.5, 0.5, 0.5, 0.9, 1.0]]]])
        _, parts = yolo_v1_loss(pred, target)  # box 1 is exact: its conf 0.9 -> 1
        assert math.isclose(float(parts["obj"]), 0.01, rel_tol=1e-5)
        assert math.isclose(float(parts["noobj"]), 0.5 * 0.81, rel_tol=1e-5)

    def test_zero_loss_when_the_prediction_is_the_target_and_gradients_flow(self):
        boxes = torch.tensor([[[0.1, 0.1, 0.4, 0.5], [0.5, 0.6, 0.9, 0.8]], [[0.2, 0.2, 0.3, 0.3], [0, 0, 0, 0]]])
        target, _ = yolo_v1_targets(boxes, torch.tensor([[0, 2], [1, -1]]), S=3, num_classes=3)
        loss, parts = yolo_v1_loss(_v1_pred(target), target)
        assert float(loss) < 1e-10 and all(float(v) < 1e-10 for v in parts.values())
        pred = (_v1_pred(target) + 0.05).requires_grad_()
        yolo_v1_loss(pred, target)[0].backward()
        assert torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0

    def test_bad_shapes(self):
        with pytest.raises(ValueError, match="do not fit"):
            yolo_v1_loss(torch.zeros(1, 2, 2, 12), torch.zeros(1, 2, 2, 8))
        with pytest.raises(ValueError, match=r"pred must be Tensor\[N, S, S"):
            yolo_v1_decode(torch.zeros(1, 2, 3, 12))
        with pytest.raises(ValueError, match="C >= 1"):
            yolo_v1_decode(torch.zeros(1, 2, 2, 10), num_boxes=2)

    def test_v1_boxes_centre(self):
        xy_sqrt_wh = torch.tensor([0.5, 0.5, 0.5, 0.5]).expand(1, 2, 2, 1, 4)
        b = yolo_v1_boxes(xy_sqrt_wh)
        torch.testing.assert_close(b[0, 0, 1, 0], torch.tensor([0.625, 0.125, 0.875, 0.375]))


class TestAnchorsAndEncoding:
    def test_priors_order(self):
        priors = yolo_priors([2, 1], ANCHORS)
        assert priors.shape == (2 * 2 * 2 + 1 * 1 * 2, 5)
        torch.testing.assert_close(priors[[0, 1, 2, 4, 9]], torch.tensor([
            [0, 0, 2, 0.1, 0.1], [0, 0, 2, 0.2, 0.1], [1, 0, 2, 0.1, 0.1], [0, 1, 2, 0.1, 0.1],
            [0, 0, 1, 0.3, 0.6]]))

    def test_decode_encode_round_trip(self):
        g = torch.Generator().manual_seed(1)
        xy = torch.rand(50, 2, generator=g) * 0.6 + 0.05
        boxes = torch.cat([xy, xy + torch.rand(50, 2, generator=g) * 0.3 + 0.01], -1)
        S = torch.randint(1, 20, (50,), generator=g)
        i, j = cell_of(boxes, S)
        priors = torch.stack([j.float(), i.float(), S.float(), *torch.rand(2, 50, generator=g) * 0.5 + 0.05], 1)
        e = yolo_encode(boxes, priors)
        assert ((e[:, :2] >= 0) & (e[:, :2] < 1)).all()
        t = torch.cat([torch.logit(e[:, :2].double()), e[:, 2:].double()], 1)
        torch.testing.assert_close(yolo_decode(t, priors.double()), boxes.double(), atol=1e-6, rtol=0)
        t = torch.randn(50, 4, generator=g)
        back = yolo_encode(yolo_decode(t, priors), priors)
        torch.testing.assert_close(back, torch.cat([t[:, :2].sigmoid(), t[:, 2:]], 1), atol=1e-5, rtol=0)

    def test_decode_shape_check(self):
        with pytest.raises(ValueError, match=r"t must be \[\.\.\., P, 4\]"):
            yolo_decode(torch.zeros(2, 3, 4), torch.zeros(4, 5))

    def test_v3_decode_scores(self):
        pred = torch.zeros(1, 10, 7)
        pred[0, 3, 4], pred[0, 3, 5:] = 2.0, torch.tensor([0.0, -1.0])
        boxes, scores = yolo_v3_decode(pred, yolo_priors([2, 1], ANCHORS))
        assert boxes.shape == (1, 10, 4) and scores.shape == (1, 10, 2)
        s = torch.sigmoid(torch.tensor(2.0))
        torch.testing.assert_close(scores[0, 3], torch.stack([s * 0.5, s * torch.sigmoid(torch.tensor(-1.0))]))


class TestV3Targets:
    def test_best_anchor_cell_and_scale(self):
        # a 0.45 x 0.5 box centred (0.25, 0.75): anchor (0.5, 0.5) of scale 1 (grid 1)
        # a 0.2 x 0.1 box centred (0.7, 0.3): anchor (0.2, 0.1) of scale 0, cell (0, 1)
        boxes = torch.tensor([[[0.025, 0.5, 0.475, 1.0], [0.6, 0.25, 0.8, 0.35]]])
        t = yolo_v3_targets(boxes, torch.tensor([[4, 1]]), ANCHORS, [2, 1], num_classes=5)
        assert t.labels.shape == (1, 10) and t.assigned.tolist() == [[True, True]]
        assert (t.labels[0] >= 0).nonzero().flatten().tolist() == [3, 8]
        assert t.labels[0, 8] == 4 and t.labels[0, 3] == 1  # prior (0 * 2 + 1) * 2 + 1 = 3
        torch.testing.assert_close(t.boxes[0, 8], boxes[0, 0])

    def test_an_object_smaller_than_every_anchor(self):
        # 0.02 x 0.02: the smallest anchor (0.1 x 0.1) has the best shape IoU
        boxes = torch.tensor([[[0.79, 0.19, 0.81, 0.21]]])
        t = yolo_v3_targets(boxes, torch.tensor([[0]]), ANCHORS, [2, 1], num_classes=1)
        assert (t.labels[0] >= 0).nonzero().flatten().tolist() == [2]  # scale 0, cell (0, 1), anchor 0

    def test_two_objects_in_one_cell(self):
        # different shapes: different anchors, both kept; same anchor: the larger wins
        boxes = torch.tensor([[[0.0, 0.0, 0.2, 0.1], [0.05, 0.0, 0.15, 0.1], [0.0, 0.0, 0.22, 0.12]]])
        t = yolo_v3_targets(boxes[:, :2], torch.tensor([[0, 1]]), ANCHORS, [2, 1], 2)
        assert t.assigned.all() and (t.labels[0] >= 0).nonzero().flatten().tolist() == [0, 1]
        t = yolo_v3_targets(boxes[:, ::2], torch.tensor([[0, 1]]), ANCHORS, [2, 1], 2)
        assert t.assigned.tolist() == [[False, True]] and t.labels[0, 1] == 1

    def test_empty_and_padding(self):
        t = yolo_v3_targets(torch.zeros(2, 1, 4), torch.full((2, 1), -1), ANCHORS, [2, 1], 3)
        assert (t.labels == -1).all() and t.labels.dtype == torch.int64 and t.boxes.shape == (2, 10, 4)
        assert not t.assigned.any()

    @pytest.mark.parametrize("anchors, grids, match", [
        (torch.ones(2, 2), [2, 1], r"anchors must be Tensor\[L, A, 2\]"),
        (ANCHORS, [2], "grid_sizes must be 2 positive ints"),
        (-ANCHORS, [2, 1], "anchors must be positive"),
    ])
    def test_bad_anchors(self, anchors, grids, match):
        with pytest.raises(ValueError, match=match):
            yolo_v3_targets(torch.zeros(1, 0, 4), torch.zeros(1, 0, dtype=torch.long), anchors, grids, 2)


class TestV3Loss:
    def _setup(self):
        boxes = torch.tensor([[[0.1, 0.1, 0.3, 0.2], [0.3, 0.3, 0.8, 0.9]], [[0.5, 0.5, 0.6, 0.7], [0, 0, 0, 0]]])
        labels = torch.tensor([[0, 2], [1, -1]])
        priors = yolo_priors([2, 1], ANCHORS)
        return priors, yolo_v3_targets(boxes, labels, ANCHORS, [2, 1], 3)

    def test_box_loss_zero_at_the_target_and_gradients_flow(self):
        priors, t = self._setup()
        pos = t.labels >= 0
        pred = torch.zeros(2, 10, 8)
        e = yolo_encode(t.boxes[pos], priors.expand(2, -1, -1)[pos])
        pred[pos] = torch.cat([torch.logit(e[:, :2]), e[:, 2:], torch.zeros(len(e), 4)], 1)
        _, parts = yolo_v3_loss(pred, priors, t)
        assert float(parts["box"]) < 1e-5
        pred = torch.randn(2, 10, 8, requires_grad=True)
        loss, parts = yolo_v3_loss(pred, priors, t)
        loss.backward()
        assert torch.isfinite(pred.grad).all() and pred.grad[pos][:, :4].abs().sum() > 0
        assert math.isclose(float(loss.detach()), float(sum(parts.values()).detach()), rel_tol=1e-6)

    def test_objectness_and_classes_by_hand(self):
        priors, t = self._setup()
        pred = torch.zeros(2, 10, 8)
        pred[..., 2:4] = -10.0  # tiny boxes: nothing is ignored
        _, parts = yolo_v3_loss(pred, priors, t)
        assert math.isclose(float(parts["obj"]), 20 * math.log(2) / 2, rel_tol=1e-5)
        assert math.isclose(float(parts["cls"]), 3 * 3 * math.log(2) / 2, rel_tol=1e-5)
        _, smooth = yolo_v3_loss(pred, priors, t, label_smoothing=0.1)
        assert math.isclose(float(smooth["cls"]), float(parts["cls"]), rel_tol=1e-5)  # logit 0: same

    def test_ignore_rule(self):
        # predict the object's box from every prior: negatives overlapping it are not pushed down
        priors, t = self._setup()
        pred = torch.zeros(2, 10, 8)
        pos = t.labels >= 0
        big = t.boxes[0, pos[0]][1]
        pred[0, :, :4] = torch.cat([torch.logit(yolo_encode(big.expand(10, 4), priors)[:, :2].clamp(0.01, 0.99)),
                                    yolo_encode(big.expand(10, 4), priors)[:, 2:]], 1)
        _, ignoring = yolo_v3_loss(pred, priors, t, ignore_iou=0.5)
        _, counting = yolo_v3_loss(pred, priors, t, ignore_iou=1.0)
        assert float(ignoring["obj"]) < float(counting["obj"])

    def test_no_objects(self):
        t = yolo_v3_targets(torch.zeros(2, 0, 4), torch.zeros(2, 0, dtype=torch.long), ANCHORS, [2, 1], 3)
        loss, parts = yolo_v3_loss(torch.zeros(2, 10, 8), yolo_priors([2, 1], ANCHORS), t)
        assert float(parts["box"]) == 0 and float(parts["cls"]) == 0 and math.isfinite(float(loss))

    def test_bad_shapes(self):
        priors, t = self._setup()
        with pytest.raises(ValueError, match=r"must be \[B, P, 5 \+ C\], \[P, 5\], \[B, P\]"):
            yolo_v3_loss(torch.zeros(2, 9, 8), priors, t)
        with pytest.raises(ValueError, match="C >= 1"):
            yolo_v3_loss(torch.zeros(2, 10, 5), priors, t)


class TestKMeans:
    def test_shape_iou_by_hand(self):
        iou = shape_iou(torch.tensor([[2.0, 1.0], [1.0, 1.0]]), torch.tensor([[1.0, 2.0], [2.0, 2.0]]))
        torch.testing.assert_close(iou, torch.tensor([[1 / 3, 0.5], [0.5, 0.25]]))
        assert math.isclose(float(anchor_mean_iou(torch.tensor([[2.0, 1.0], [1.0, 1.0]]),
                                                  torch.tensor([[1.0, 2.0], [2.0, 2.0]]))), 0.5)
        assert math.isnan(float(anchor_mean_iou(torch.zeros(0, 2), torch.ones(1, 2))))

    @pytest.mark.parametrize("center", ["mean", "median"])
    def test_against_brute_force(self, center):
        g = torch.Generator().manual_seed(0)
        wh = torch.exp(torch.randn(300, 2, generator=g) * 0.6) * 20
        anchors = kmeans_anchors(wh, 5, center=center, generator=torch.Generator().manual_seed(1))
        assert anchors.shape == (5, 2) and (anchors.prod(1).diff() > 0).all()
        members: list[list[list[float]]] = [[] for _ in range(5)]
        for w, h in wh.tolist():  # each box to its max-IoU centroid, by hand
            ious = [min(w, a) * min(h, b) / (w * h + a * b - min(w, a) * min(h, b)) for a, b in anchors.tolist()]
            members[max(range(5), key=lambda k: ious[k])].append([w, h])
        for k in range(5):  # every centroid is its members' mean (median)
            m = torch.tensor(members[k])
            expected = m.mean(0) if center == "mean" else m.median(0).values
            torch.testing.assert_close(anchors[k], expected, rtol=1e-5, atol=1e-4)

    def test_recovers_separated_shapes_and_beats_one_anchor(self):
        g = torch.Generator().manual_seed(0)
        shapes = torch.tensor([[5.0, 5.0], [30.0, 10.0], [10.0, 40.0]])
        wh = shapes.repeat(40, 1) * (1 + 0.02 * torch.randn(120, 2, generator=g))
        anchors = kmeans_anchors(wh, 3, generator=torch.Generator().manual_seed(0))
        torch.testing.assert_close(anchors, shapes, rtol=0.02, atol=0)
        assert anchor_mean_iou(wh, anchors) > 0.95 > anchor_mean_iou(wh, kmeans_anchors(wh, 1))

    @pytest.mark.parametrize("wh, k, kwargs, match", [
        (torch.ones(4, 3), 1, {}, r"wh must be a Tensor\[N, 2\]"),
        (torch.tensor([[1.0, 0.0]]), 1, {}, "positive and finite"),
        (torch.ones(4, 2, dtype=torch.long), 1, {}, "floating point"),
        (torch.tensor([[1.0, 1.0], [1.0, 1.0], [2.0, 1.0]]), 3, {}, "2 distinct box shapes"),
        (torch.zeros(0, 2), 1, {}, "0 distinct"),
        (torch.ones(3, 2), 1, dict(center="mode"), "center must be"),
    ])
    def test_bad_inputs(self, wh, k, kwargs, match):
        with pytest.raises(ValueError, match=match):
            kmeans_anchors(wh, k, **kwargs)


class TestPostprocess:
    def test_nms_per_class_and_pixels(self):
        boxes = torch.tensor([[[0.1, 0.1, 0.5, 0.5], [0.12, 0.1, 0.5, 0.5], [0.6, 0.6, 1.2, 0.9]]])
        scores = torch.tensor([[[0.9, 0.0], [0.8, 0.7], [0.0, 0.005]]])
        (det,) = postprocess_detections(boxes, scores, (100, 200))
        assert det["labels"].tolist() == [0, 1] and det["scores"].tolist() == pytest.approx([0.9, 0.7])
        torch.testing.assert_close(det["boxes"][0], torch.tensor([20.0, 10, 100, 50]))
        (det,) = postprocess_detections(boxes, scores, score_threshold=0.001)
        torch.testing.assert_close(det["boxes"][-1], torch.tensor([0.6, 0.6, 1.0, 0.9]))  # clipped
        (empty,) = postprocess_detections(torch.zeros(1, 0, 4), torch.zeros(1, 0, 2))
        assert empty["boxes"].shape == (0, 4) and empty["labels"].dtype == torch.int64

    def test_bad_shapes(self):
        with pytest.raises(ValueError, match=r"boxes must be \[N, P, 4\]"):
            postprocess_detections(torch.zeros(3, 4), torch.zeros(3, 2))


class TestModels:
    def test_v1_shapes_and_ranges(self):
        torch.manual_seed(0)
        model = YOLOv1(3, grid=4, num_boxes=2, widths=(8, 8, 8), convs=(1, 1, 1), hidden=16)
        pred = model(torch.rand(2, 3, 64, 64))
        assert pred.shape == (2, 4, 4, 13) and ((pred >= 0) & (pred <= 1)).all()
        torch.testing.assert_close(pred[..., 10:].sum(-1), torch.ones(2, 4, 4))
        det = yolo_predict(model, torch.rand(2, 3, 64, 64))
        assert len(det) == 2 and set(det[0]) == {"boxes", "scores", "labels"}

    def test_v3_shapes_and_bad_size(self):
        model = TinyYOLOv3(4, ANCHORS[[0, 1, 1]], widths=(8, 8, 8, 8, 8), neck=8)
        pred, priors = model(torch.rand(2, 3, 64, 64))
        assert pred.shape == (2, (8 * 8 + 4 * 4 + 2 * 2) * 2, 9) and priors.shape == (168, 5)
        assert priors[:, 2].unique_consecutive().tolist() == [8, 4, 2]
        assert math.isclose(float(pred[..., 4].detach().sigmoid().mean()), 0.01, rel_tol=0.3)
        with pytest.raises(ValueError, match="multiple of 32"):
            model(torch.rand(1, 3, 64, 48))

    @pytest.mark.parametrize("version", ["v1", "v3"])
    def test_trains_through_the_engine(self, version):
        torch.manual_seed(0)
        if version == "v1":
            model = YOLOv1(2, grid=2, widths=(8, 8, 8, 8, 8), convs=(1,) * 5, hidden=16)
        else:
            model = TinyYOLOv3(2, ANCHORS[[0, 0, 1]], widths=(8, 8, 8, 8, 8), neck=8)
        images = torch.rand(4, 3, 64, 64)
        targets = [{"boxes": torch.tensor([[8.0, 8, 40, 40]]), "labels": torch.tensor([k % 2])} for k in range(4)]
        loader = [(images, targets)] * 2
        history = train_yolo(model, loader, epochs=5, lr=1e-2, device="cpu", progress=False)
        losses = history["train_loss"]
        assert len(losses) == 5 and losses[-1] < losses[0]
        assert {"train_box", "train_obj", "train_cls"} <= set(history.keys())

    def test_resumes_a_schedule_across_calls_and_stages(self, tmp_path, monkeypatch):
        """Two calls (4 epochs, then the rest into a second file) equal one 6-epoch run."""
        images = torch.rand(4, 3, 64, 64, generator=torch.Generator().manual_seed(1))
        targets = [{"boxes": torch.tensor([[8.0, 8, 40, 40]]), "labels": torch.tensor([k % 2])} for k in range(4)]
        loader = [(images, targets)] * 2

        def run(**kwargs):
            torch.manual_seed(0)
            model = TinyYOLOv3(2, ANCHORS[[0, 0, 1]], widths=(8, 8, 8, 8, 8), neck=8)
            return model, train_yolo(model, loader, epochs=6, lr=1e-2, device="cpu", progress=False, **kwargs)

        whole, h_whole = run()
        part1 = tmp_path / "part1.pt"
        _, h1 = run(checkpoint=part1, stop_after=4)
        assert len(h1["train_loss"]) == 4
        final = tmp_path / "final.pt"
        staged, h2 = run(checkpoint=final, resume_from=part1)
        assert h2["epoch"] == [1, 2, 3, 4, 5, 6]
        assert h2["train_loss"] == pytest.approx(h_whole["train_loss"], rel=1e-4)
        for a, b in zip(whole.state_dict().values(), staged.state_dict().values()):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
        _, h1_again = run(checkpoint=part1, stop_after=4)  # cached: no training, same history
        assert h1_again["train_loss"] == h1["train_loss"]
        monkeypatch.setenv("D2LCV_DATA", str(tmp_path))
        path = yolo_checkpoint("tiny", {"epochs": 6, "lr": 0.01})
        assert path.parent == tmp_path / "yolo" and path.name.startswith("tiny-")
        assert path != yolo_checkpoint("tiny", {"epochs": 7, "lr": 0.01})

    def test_bad_training_arguments(self):
        model = TinyYOLOv3(2, ANCHORS[[0, 0, 1]], widths=(8, 8, 8, 8, 8), neck=8)
        with pytest.raises(ValueError, match="stop_after"):
            train_yolo(model, [], epochs=2, stop_after=3)
        with pytest.raises(ValueError, match="resume_from needs a checkpoint"):
            train_yolo(model, [], epochs=2, resume_from="x.pt")
        with pytest.raises(ValueError, match="YOLOv1 or a TinyYOLOv3"):
            train_yolo(torch.nn.Linear(2, 2), [], epochs=2)
        with pytest.raises(ValueError, match="name"):
            yolo_checkpoint("a/b", {})
