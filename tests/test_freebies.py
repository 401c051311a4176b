"""Tests for the detection bag of freebies and the staged trainer they run in: mixup with
boxes and random-size batches (d2lcv.transforms.detection_batch), per-object loss weights
through the YOLO v3 targets and loss, the learning-rate schedules and cached runs
(d2lcv.engine.staged). Hand-worked cases, properties against loops, bad inputs."""

from __future__ import annotations

import math

import pytest
import torch

from d2lcv import engine, recipes
from d2lcv.losses import yolo_v3_loss
from d2lcv.models import TinyYOLOv3
from d2lcv.ops import yolo_priors, yolo_v3_targets
from d2lcv.transforms import DetectionMixUp, RandomResize, detection_mixup, random_resize

ANCHORS = torch.tensor([[[0.1, 0.1], [0.2, 0.1]], [[0.5, 0.5], [0.3, 0.6]]])  # 2 scales x 2


def _batch(B=4, side=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(B, 3, side, side, generator=g)
    targets = [
        {"boxes": torch.tensor([[1.0, 2, 10 + i, 12 + i]] * (i % 3)).reshape(-1, 4), "labels": torch.full((i % 3,), i)}
        for i in range(B)
    ]
    return images, targets


class TestMixup:
    def test_images_and_boxes_of_both_with_shares_as_weights(self):
        images, targets = _batch()
        mixed, out = detection_mixup(images, targets, generator=torch.Generator().manual_seed(3))
        assert mixed.shape == images.shape and len(out) == len(images)
        for i, t in enumerate(out):
            lam = t["weights"][0] if len(targets[i]["labels"]) else None
            # the image is a blend of itself and exactly one partner
            ok = False
            for j in range(len(images)):
                if j == i:
                    continue
                # solve mixed = l * a + (1 - l) * b for l by least squares; check the fit
                a, b = images[i].flatten(), images[j].flatten()
                l = float(((mixed[i].flatten() - b) @ (a - b)) / ((a - b) @ (a - b)))
                if torch.allclose(mixed[i], l * images[i] + (1 - l) * images[j], atol=1e-5):
                    ok = True
                    n_i, n_j = len(targets[i]["labels"]), len(targets[j]["labels"])
                    assert len(t["labels"]) == n_i + n_j
                    torch.testing.assert_close(t["boxes"], torch.cat([targets[i]["boxes"], targets[j]["boxes"]]))
                    torch.testing.assert_close(t["weights"], torch.tensor([l] * n_i + [1 - l] * n_j),
                                               atol=1e-5, rtol=0)
                    if lam is not None:
                        assert 0 < float(lam) < 1
                    break
            assert ok or torch.equal(mixed[i], images[i])

    def test_deterministic_with_a_generator_and_inputs_unchanged(self):
        images, targets = _batch()
        before = images.clone()
        a = detection_mixup(images, targets, generator=torch.Generator().manual_seed(1))
        b = DetectionMixUp(generator=torch.Generator().manual_seed(1))(images, targets)
        assert torch.equal(a[0], b[0]) and torch.equal(images, before)
        assert all(torch.equal(x["weights"], y["weights"]) for x, y in zip(a[1], b[1]))
        assert "weights" not in targets[0]

    def test_weights_multiply_and_one_image_stays(self):
        images, targets = _batch(B=2)
        targets = [dict(t, weights=torch.full((len(t["labels"]),), 0.5)) for t in targets]
        _, out = detection_mixup(images, targets, generator=torch.Generator().manual_seed(0))
        total = sum(float(t["weights"].sum()) for t in out)
        assert math.isclose(total, 0.5 * sum(len(t["labels"]) for t in targets), rel_tol=1e-5)
        one, t1 = detection_mixup(images[:1], targets[:1])
        assert torch.equal(one, images[:1]) and torch.equal(t1[0]["weights"], targets[0]["weights"])

    @pytest.mark.parametrize("images, n, alpha, match", [
        (torch.zeros(2, 3, 8, 8, dtype=torch.uint8), 2, 1.5, "float Tensor"),
        (torch.zeros(3, 8, 8), 2, 1.5, "float Tensor"),
        (torch.zeros(2, 3, 8, 8), 1, 1.5, "one target dict per image"),
        (torch.zeros(2, 3, 8, 8), 2, 0.0, "alpha must be > 0"),
    ])
    def test_bad_inputs(self, images, n, alpha, match):
        targets = [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long)}] * n
        with pytest.raises(ValueError, match=match):
            detection_mixup(images, targets, alpha=alpha)

    def test_missing_keys(self):
        with pytest.raises(ValueError, match="'boxes' and 'labels'"):
            detection_mixup(torch.zeros(1, 3, 8, 8), [{"boxes": torch.zeros(0, 4)}])


class TestRandomResize:
    def test_boxes_scale_with_the_image(self):
        images, targets = _batch(side=32)
        out, t = random_resize(images, targets, [64])
        assert out.shape == (4, 3, 64, 64)
        for a, b in zip(targets, t):
            torch.testing.assert_close(b["boxes"], a["boxes"] * 2)
            assert torch.equal(b["labels"], a["labels"])
        same, _ = random_resize(images, targets, [32])
        assert same is images

    def test_every_size_is_drawn_and_bad_sizes(self):
        images, targets = _batch(side=32)
        resize = RandomResize([16, 32, 48], generator=torch.Generator().manual_seed(0))
        seen = {resize(images, targets)[0].shape[-1] for _ in range(40)}
        assert seen == {16, 32, 48}
        for sizes in ([], [0], [32.0], [True]):
            with pytest.raises(ValueError, match="sizes must be positive ints"):
                random_resize(images, targets, sizes)


class TestWeightedLoss:
    def _setup(self):
        boxes = torch.tensor([[[0.1, 0.1, 0.3, 0.2], [0.3, 0.3, 0.8, 0.9]], [[0.5, 0.5, 0.6, 0.7], [0, 0, 0, 0]]])
        labels = torch.tensor([[0, 2], [1, -1]])
        return boxes, labels, yolo_priors([2, 1], ANCHORS)

    def test_weights_reach_the_assigned_priors(self):
        boxes, labels, _ = self._setup()
        w = torch.tensor([[0.25, 0.75], [0.5, 0.0]])
        t = yolo_v3_targets(boxes, labels, ANCHORS, [2, 1], 3, w)
        pos = t.labels >= 0
        assert sorted(t.weights[pos].tolist()) == [0.25, 0.5, 0.75] and float(t.weights[~pos].abs().sum()) == 0
        assert yolo_v3_targets(boxes, labels, ANCHORS, [2, 1], 3).weights is None
        with pytest.raises(ValueError, match="gt_weights must be"):
            yolo_v3_targets(boxes, labels, ANCHORS, [2, 1], 3, torch.ones(2, 3))

    def test_unit_weights_change_nothing_and_weights_scale_the_positives(self):
        boxes, labels, priors = self._setup()
        pred = torch.randn(2, 10, 8, generator=torch.Generator().manual_seed(0))
        plain = yolo_v3_loss(pred, priors, yolo_v3_targets(boxes, labels, ANCHORS, [2, 1], 3))[1]
        ones = yolo_v3_loss(pred, priors, yolo_v3_targets(boxes, labels, ANCHORS, [2, 1], 3, torch.ones(2, 2)))[1]
        assert all(torch.equal(plain[k], ones[k]) for k in plain)
        twice = yolo_v3_loss(pred, priors, yolo_v3_targets(boxes, labels, ANCHORS, [2, 1], 3, torch.full((2, 2), 2.0)))[1]
        torch.testing.assert_close(twice["box"], 2 * plain["box"])
        torch.testing.assert_close(twice["cls"], 2 * plain["cls"])
        assert float(twice["obj"]) > float(plain["obj"])  # positives doubled, negatives not

    def test_label_smoothing_targets_by_hand(self):
        """Zhang et al.'s smoothing: 1 - eps for the class, eps / (C - 1) for the others."""
        boxes, labels, priors = self._setup()
        t = yolo_v3_targets(boxes, labels, ANCHORS, [2, 1], 3)
        pred = torch.randn(2, 10, 8, generator=torch.Generator().manual_seed(1))
        _, parts = yolo_v3_loss(pred, priors, t, label_smoothing=0.2)
        pos = t.labels >= 0
        want = torch.full((int(pos.sum()), 3), 0.1)
        want[torch.arange(len(want)), t.labels[pos]] = 0.8
        by_hand = torch.nn.functional.binary_cross_entropy_with_logits(pred[pos][:, 5:], want, reduction="sum") / 2
        torch.testing.assert_close(parts["cls"], by_hand)

    def test_recipe_passes_mixup_weights_and_refuses_them_for_v1(self):
        torch.manual_seed(0)
        model = TinyYOLOv3(3, ANCHORS[[0, 0, 1]], widths=(8, 8, 8, 8, 8), neck=8)
        images = torch.rand(2, 3, 64, 64)
        targets = [{"boxes": torch.tensor([[8.0, 8, 40, 40]]), "labels": torch.tensor([k])} for k in range(2)]
        halves = [dict(t, weights=torch.tensor([0.5])) for t in targets]
        full, _ = recipes.yolo_loss(model, (images, targets))
        half, parts = recipes.yolo_loss(model, (images, halves))
        assert float(half.detach()) < float(full.detach())
        from d2lcv.models import YOLOv1
        v1 = YOLOv1(3, grid=2, widths=(8, 8, 8, 8, 8), convs=(1,) * 5, hidden=16)
        with pytest.raises(ValueError, match="need a TinyYOLOv3"):
            recipes.yolo_loss(v1, (images, halves))


class TestSchedules:
    def _lrs(self, name, steps=9, lr=0.3):
        opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=99.0)
        sched = engine.make_schedule(opt, name, steps, lr)
        out = []
        for _ in range(steps):
            out.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        return out

    def test_by_hand(self):
        assert self._lrs("step") == pytest.approx([0.3] * 6 + [0.03] * 3)
        cos = self._lrs("cosine")
        assert cos[0] == pytest.approx(0.3)
        assert cos == pytest.approx([0.15 * (1 + math.cos(math.pi * i / 9)) for i in range(9)])
        one = self._lrs("one-cycle")
        assert 0.25 < max(one) <= 0.3 and one[0] < 0.3 / 10 and one[-1] < one[0]

    def test_bad(self):
        opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
        with pytest.raises(ValueError, match="schedule must be one of"):
            engine.make_schedule(opt, "linear", 10, 1.0)
        with pytest.raises(ValueError, match="total_steps must be >= 1"):
            engine.make_schedule(opt, "cosine", 0, 1.0)


class TestStagedRuns:
    def test_run_checkpoint_names(self, tmp_path, monkeypatch):
        monkeypatch.setenv("D2LCV_DATA", str(tmp_path))
        a = engine.run_checkpoint("ssd", {"epochs": 2}, folder="ssd")
        assert a.parent == tmp_path / "ssd" and a.name.startswith("ssd-") and a.suffix == ".pt"
        assert a != engine.run_checkpoint("ssd", {"epochs": 3}, folder="ssd")
        assert a == engine.run_checkpoint("ssd", {"epochs": 2}, folder="ssd")
        assert recipes.yolo_checkpoint("x", {}).parent == tmp_path / "yolo"
        for name, folder in (("a/b", "runs"), ("", "runs"), ("a", "x/y")):
            with pytest.raises(ValueError, match="must be a non-empty file name"):
                engine.run_checkpoint(name, {}, folder=folder)

    def test_lazy_batches_start_nothing_until_iterated(self):
        started = []

        class Loader:
            def __len__(self):
                return 3

            def __iter__(self):
                started.append(1)
                yield from range(3)

        lazy = engine.LazyBatches(Loader())
        it = iter(lazy)
        assert len(lazy) == 3 and not started
        assert list(it) == [0, 1, 2] and started == [1]

    @pytest.mark.parametrize("schedule", ["cosine", "step"])
    def test_every_schedule_trains_and_resumes(self, schedule, tmp_path):
        images = torch.rand(4, 3, 64, 64, generator=torch.Generator().manual_seed(1))
        targets = [{"boxes": torch.tensor([[8.0, 8, 40, 40]]), "labels": torch.tensor([k % 2])} for k in range(4)]
        loader = [(images, targets)] * 2

        def run(**kwargs):
            torch.manual_seed(0)
            model = TinyYOLOv3(2, ANCHORS[[0, 0, 1]], widths=(8, 8, 8, 8, 8), neck=8)
            return recipes.train_yolo(model, loader, epochs=3, lr=1e-2, device="cpu", progress=False,
                                      schedule=schedule, **kwargs)

        whole = run(batch_transform=RandomResize([64]))
        run(checkpoint=tmp_path / "a.pt", stop_after=2)
        staged = run(checkpoint=tmp_path / "b.pt", resume_from=tmp_path / "a.pt")
        assert staged["train_loss"] == pytest.approx(whole["train_loss"], rel=1e-4)
        assert staged["lr"] == pytest.approx(whole["lr"])
        with pytest.raises(ValueError, match="batch_transform must be callable"):
            recipes.train_yolo(TinyYOLOv3(2, ANCHORS[[0, 0, 1]], widths=(8,) * 5, neck=8), loader, epochs=1,
                               batch_transform=3)


def test_detect_at_another_input_size_maps_boxes_back():
    from d2lcv.models.detection import yolo_detect

    torch.manual_seed(0)
    model = TinyYOLOv3(2, ANCHORS[[0, 0, 1]], widths=(8, 8, 8, 8, 8), neck=8, prior_prob=0.5)
    images = torch.rand(3, 3, 64, 64)
    data = [(img, {}) for img in images]
    same = yolo_detect(model, data, device="cpu", input_size=64)
    plain = yolo_detect(model, data, device="cpu")
    assert all(torch.equal(a["boxes"], b["boxes"]) for a, b in zip(same, plain))
    big = yolo_detect(model, data, device="cpu", input_size=128)
    want = yolo_detect(model, [(torch.nn.functional.interpolate(img[None], size=(128, 128), mode="bilinear",
                                                                antialias=True)[0], {}) for img in images], device="cpu")
    for a, b in zip(big, want):
        torch.testing.assert_close(a["boxes"], b["boxes"] / 2)
        assert float(a["boxes"].max()) <= 64.001
