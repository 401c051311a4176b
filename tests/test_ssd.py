"""Tests for d2lcv.models.detection.ssd (and its loss and recipe): shapes and anchor order, the loss against a per-image loop,
prediction by hand, training, and the chapter's mAP against pycocotools on a real (briefly
trained) SSD's detections."""

from __future__ import annotations

import contextlib
import io
import os

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from d2lcv import losses, recipes, transforms
from d2lcv.models.detection import ssd
from d2lcv.ops import generate_anchors

MIRROR = os.environ.get("D2LCV_MIRROR", "").strip()
needs_mirror = pytest.mark.skipif(not MIRROR, reason="D2LCV_MIRROR is not set (offline dataset mirror)")


class TestModel:
    def test_down_sample_blk_halves(self):
        blk = ssd.down_sample_blk(3, 10, num_convs=2)
        assert blk(torch.zeros(2, 3, 20, 16)).shape == (2, 10, 10, 8)
        assert sum(isinstance(m, nn.Conv2d) for m in blk) == 2

    def test_flatten_matches_anchor_order(self):
        # value = 1000 * anchor + 100 * k + 10 * row + col: after flattening, row (i * W + j) * a + anchor
        a, k, H, W = 3, 2, 2, 4
        anchor, kk, row, col = torch.meshgrid(torch.arange(a), torch.arange(k), torch.arange(H), torch.arange(W),
                                              indexing="ij")
        pred = (1000 * anchor + 100 * kk + 10 * row + col).reshape(1, a * k, H, W)
        flat = ssd.flatten_predictions(pred, k)
        assert flat.shape == (1, H * W * a, k)
        i, j, n = 1, 2, 2
        assert flat[0, (i * W + j) * a + n].tolist() == [1000 * n + 10 * i + j, 1000 * n + 100 + 10 * i + j]

    def test_forward_shapes_and_anchors(self):
        torch.manual_seed(0)
        model = ssd.SSD(num_classes=5)
        anchors, cls_logits, box_offsets = model(torch.rand(2, 3, 128, 128))
        # 16x16, 8x8 and 4x4 maps with 2 + 3 - 1 = 4 anchors per cell
        A = (16 * 16 + 8 * 8 + 4 * 4) * 4
        assert anchors.shape == (A, 4) and cls_logits.shape == (2, A, 6) and box_offsets.shape == (2, A, 4)
        expected = torch.cat([generate_anchors(s, s, sz, ssd.RATIOS) for s, sz in zip((16, 8, 4), ssd.SIZES)])
        assert torch.equal(anchors, expected)

    @pytest.mark.parametrize("kwargs, match", [
        (dict(num_classes=0), "num_classes"),
        (dict(num_classes=2, widths=(8, 8)), "one block per scale"),
        (dict(num_classes=2, convs=(1, 1)), "one entry of convs"),
    ])
    def test_bad_arguments(self, kwargs, match):
        with pytest.raises(ValueError, match=match):
            ssd.SSD(**kwargs)


class TestTargets:
    def test_pad_targets_by_hand(self):
        targets = [
            {"boxes": torch.tensor([[0.0, 0, 50, 100]]), "labels": torch.tensor([2])},
            {"boxes": torch.tensor([[10.0, 20, 30, 40], [0, 0, 100, 200]]), "labels": torch.tensor([0, 1])},
        ]
        boxes, labels = ssd.pad_targets(targets, (200, 100))  # H = 200, W = 100
        assert labels.tolist() == [[2, -1], [0, 1]]
        assert boxes[0, 0].tolist() == [0.0, 0.0, 0.5, 0.5] and boxes[1, 1].tolist() == [0.0, 0.0, 1.0, 1.0]

    def test_ssd_targets_empty_image_is_background(self):
        anchors = generate_anchors(2, 2, [0.5], [1.0])
        targets = [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)},
                   {"boxes": torch.tensor([[0.0, 0, 50, 50]]), "labels": torch.tensor([3])}]
        labels, offsets, mask = ssd.ssd_targets(anchors, targets, (100, 100))
        assert labels[0].tolist() == [0, 0, 0, 0] and labels[1].tolist() == [4, 0, 0, 0]
        assert mask[0].sum() == 0 and torch.allclose(offsets[1, 0], torch.zeros(4), atol=1e-6)


def _loss_by_loop(cls_logits, box_offsets, labels, offsets, mask, ratio=3):
    """SSD's loss, one image and one anchor at a time."""
    cls_total, box_total, num_pos = 0.0, 0.0, int((labels > 0).sum())
    for b in range(len(labels)):
        ce = [float(F.cross_entropy(cls_logits[b, a][None], labels[b, a][None])) for a in range(labels.shape[1])]
        pos = [a for a in range(labels.shape[1]) if labels[b, a] > 0]
        neg = sorted((a for a in range(labels.shape[1]) if labels[b, a] == 0), key=lambda a: -ce[a])
        for a in pos + neg[: ratio * len(pos)]:
            cls_total += ce[a]
        for a in pos:
            box_total += float(F.smooth_l1_loss(box_offsets[b, a], offsets[b, a], reduction="sum"))
    return cls_total / max(num_pos, 1), box_total / max(num_pos, 1)


class TestLoss:
    def test_equals_a_loop(self):
        g = torch.Generator().manual_seed(0)
        B, A, K = 3, 20, 4
        cls_logits, box_offsets = torch.randn(B, A, K, generator=g), torch.randn(B, A, 4, generator=g)
        labels = torch.zeros(B, A, dtype=torch.int64)
        labels[0, [1, 5]] = torch.tensor([1, 3])
        labels[1, 7] = 2  # image 2 has no positive: no negatives either
        mask = (labels > 0)[..., None].expand(-1, -1, 4).float()
        offsets = torch.randn(B, A, 4, generator=g) * mask
        loss, cls_loss, box_loss = losses.ssd_loss(cls_logits, box_offsets, labels, offsets, mask)
        ref_cls, ref_box = _loss_by_loop(cls_logits, box_offsets, labels, offsets, mask)
        assert cls_loss.item() == pytest.approx(ref_cls, rel=1e-5)
        assert box_loss.item() == pytest.approx(ref_box, rel=1e-5)
        assert loss.item() == pytest.approx(ref_cls + ref_box, rel=1e-5)

    def test_perfect_prediction_costs_nothing_and_gradients_flow(self):
        labels = torch.tensor([[0, 2, 0, 1]])
        mask = (labels > 0)[..., None].expand(-1, -1, 4).float()
        offsets = torch.randn(1, 4, 4) * mask
        logits = (F.one_hot(labels, 3).float() * 50).requires_grad_()
        loss, _, _ = losses.ssd_loss(logits, offsets.clone(), labels, offsets, mask)
        assert loss.item() == pytest.approx(0.0, abs=1e-6)
        loss.backward()
        assert logits.grad is not None

    def test_bad_shapes(self):
        with pytest.raises(ValueError, match="expected labels"):
            losses.ssd_loss(torch.zeros(1, 4, 3), torch.zeros(1, 4, 4), torch.zeros(1, 5, dtype=torch.int64),
                         torch.zeros(1, 4, 4), torch.zeros(1, 4, 4))


class _Fixed(nn.Module):
    """Stands in for an SSD: fixed anchors, logits and offsets."""

    def __init__(self, anchors, logits, offsets):
        super().__init__()
        self.out = (anchors, logits, offsets)

    def forward(self, images):
        return self.out


class TestPredict:
    def test_by_hand(self):
        # three anchors on a 100x100 image: 0 and 1 overlap (IoU 0.81) and are both class 1,
        # 2 is class 0; zero offsets leave the anchors as they are
        anchors = torch.tensor([[0.1, 0.1, 0.5, 0.5], [0.1, 0.1, 0.46, 0.46], [0.6, 0.6, 0.9, 1.2]])
        probs = torch.tensor([[0.05, 0.05, 0.9], [0.2, 0.0, 0.8], [0.3, 0.7, 0.0]])
        model = _Fixed(anchors, probs.log()[None], torch.zeros(1, 3, 4))
        (det,) = ssd.predict(model, torch.zeros(1, 3, 100, 100), score_threshold=0.1)
        assert det["labels"].tolist() == [1, 0]
        assert det["scores"].tolist() == pytest.approx([0.9, 0.7])
        expected = torch.tensor([[10.0, 10, 50, 50], [60, 60, 90, 100]])  # the second clipped at 100
        assert torch.allclose(det["boxes"], expected, atol=1e-4)

    def test_threshold_leaves_typed_empties(self):
        anchors = torch.tensor([[0.1, 0.1, 0.5, 0.5]])
        model = _Fixed(anchors, torch.tensor([[[5.0, 0.0, 0.0]]]), torch.zeros(1, 1, 4))
        (det,) = ssd.predict(model, torch.zeros(1, 3, 10, 10), score_threshold=0.5)
        assert det["boxes"].shape == (0, 4) and det["labels"].dtype == torch.int64 and det["scores"].shape == (0,)

    def test_max_detections(self):
        torch.manual_seed(0)
        model = ssd.SSD(num_classes=3)
        dets = ssd.predict(model, torch.rand(2, 3, 64, 64), score_threshold=0.0, max_detections=7)
        assert [len(d["scores"]) for d in dets] == [7, 7]
        assert all((d["scores"][:-1] >= d["scores"][1:]).all() for d in dets)


def _toy_batches(n=4, size=64):
    g = torch.Generator().manual_seed(0)
    batches = []
    for _ in range(n):
        images = torch.rand(8, 3, size, size, generator=g) * 0.2
        targets = []
        for img in images:
            x, y = torch.randint(0, size - 24, (2,), generator=g).tolist()
            img[0, y:y + 24, x:x + 24] = 1.0  # a red square
            targets.append({"boxes": torch.tensor([[x, y, x + 24, y + 24]], dtype=torch.float32),
                            "labels": torch.tensor([0])})
        batches.append((images, targets))
    return batches


class TestTraining:
    def test_loss_falls_and_is_reproducible(self):
        def run():
            torch.manual_seed(0)
            model = ssd.SSD(num_classes=1, widths=(8, 16, 16, 16, 16))
            return recipes.train_ssd(model, _toy_batches(), epochs=6, lr=1e-2, progress=False)

        h = run()
        assert h.keys() == ["epoch", "train_loss", "train_cls_loss", "train_box_loss", "lr", "time"]
        assert h["train_loss"][-1] < 0.7 * h["train_loss"][0]
        assert h["train_loss"] == run()["train_loss"]

    def test_continues_a_history(self):
        torch.manual_seed(0)
        model = ssd.SSD(num_classes=1, widths=(8, 16, 16, 16, 16))
        h = recipes.train_ssd(model, _toy_batches(), epochs=1, lr=1e-2, progress=False)
        same = recipes.train_ssd(model, _toy_batches(), epochs=2, lr=1e-3, progress=False, history=h)
        assert same is h and h["epoch"] == [1.0, 2.0, 3.0]

    def test_staged_run_equals_a_continuous_one(self, tmp_path):
        """4 epochs into one file, then the rest into a second file, equal one 6-epoch run."""
        batches = _toy_batches(n=2)

        def run(**kwargs):
            torch.manual_seed(0)
            model = ssd.SSD(num_classes=1, widths=(8, 16, 16, 16, 16))
            h = recipes.train_ssd(model, batches, epochs=6, lr=1e-2, device="cpu", progress=False, **kwargs)
            return model, h

        whole, h_whole = run()
        part1, final = tmp_path / "part1.pt", tmp_path / "sub" / "final.pt"
        _, h1 = run(checkpoint=part1, stop_after=4)
        assert h1["epoch"] == [1, 2, 3, 4]
        saved = part1.read_bytes()
        staged, h2 = run(checkpoint=final, resume_from=part1)
        assert h2["epoch"] == [1, 2, 3, 4, 5, 6] and part1.read_bytes() == saved  # stage 1 untouched
        assert h2["train_loss"] == pytest.approx(h_whole["train_loss"], rel=1e-4)
        assert h2["lr"] == pytest.approx(h_whole["lr"])
        for a, b in zip(whole.state_dict().values(), staged.state_dict().values()):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
        _, h_again = run(checkpoint=final, resume_from=part1)  # finished: nothing trained
        assert h_again["train_loss"] == h2["train_loss"] and h_again["time"] == h2["time"]

    def test_bad_epochs(self):
        with pytest.raises(ValueError, match="epochs must be an int >= 1"):
            recipes.train_ssd(ssd.SSD(1), [], epochs=0)
        with pytest.raises(ValueError, match="stop_after must be in 1..epochs=2"):
            recipes.train_ssd(ssd.SSD(1), [], epochs=2, stop_after=3)
        with pytest.raises(ValueError, match="resume_from needs a checkpoint"):
            recipes.train_ssd(ssd.SSD(1), [], epochs=2, resume_from="x.pt")

    def test_transforms(self):
        from d2lcv.transforms import apply_detection_transform

        torch.manual_seed(0)
        image = torch.randint(0, 256, (3, 100, 100), dtype=torch.uint8)
        boxes, labels = torch.tensor([[10.0, 10, 60, 60]]), torch.tensor([1])
        for train in (True, False):
            out, b, l = apply_detection_transform(transforms.ssd_transforms(train, 64), image, boxes, labels)
            assert out.shape == (3, 64, 64) and out.dtype == torch.float32
            assert (b >= 0).all() and (b <= 64).all() and len(b) == len(l)
        _, b, _ = apply_detection_transform(transforms.ssd_transforms(False, 50), image, boxes, labels)
        assert b.tolist() == [[5.0, 5.0, 30.0, 30.0]]


@needs_mirror
def test_map_equals_pycocotools_on_real_detections(tmp_path, monkeypatch):
    """The chapter's mAP (d2lcv.metrics) and COCOeval agree to 1e-4 on a real SSD's detections,
    evaluated against the dataset's own COCO json file."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    from torch.utils.data import DataLoader

    from d2lcv.data.detection import EmojiDetection, detection_collate
    from d2lcv.metrics import evaluate_detections

    monkeypatch.setenv("D2LCV_DATA", str(tmp_path))
    monkeypatch.setenv("D2LCV_OFFLINE", "1")
    kw = dict(sizes={"train": 96, "val": 24}, image_size=64, backgrounds=("photos",))
    train = EmojiDetection("train", transforms.ssd_transforms(False, 64), **kw)
    val = EmojiDetection("val", **kw)
    torch.manual_seed(0)
    model = ssd.SSD(len(train.classes), widths=(8, 16, 32, 32, 32))
    loader = DataLoader(train, batch_size=16, shuffle=True, collate_fn=detection_collate)
    recipes.train_ssd(model, loader, epochs=5, lr=1e-2, progress=False)
    dets = ssd.detect(model, val, score_threshold=0.01)
    assert sum(len(d["scores"]) for d in dets) > 100
    ours = evaluate_detections(dets, val.targets, len(val.classes))

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(val.coco_json))
        results = [
            {"image_id": i + 1, "category_id": int(c) + 1, "bbox": [x1, y1, x2 - x1, y2 - y1], "score": float(s)}
            for i, d in enumerate(dets)
            for (x1, y1, x2, y2), s, c in zip(d["boxes"].tolist(), d["scores"].tolist(), d["labels"].tolist())
        ]
        E = COCOeval(gt, gt.loadRes(results), "bbox")
        E.evaluate()
        E.accumulate()
        E.summarize()
    assert ours.map_50 > 0  # the detections are not all wrong: the comparison is not trivial
    assert ours.map == pytest.approx(E.stats[0], abs=1e-4)
    assert ours.map_50 == pytest.approx(E.stats[1], abs=1e-4)
    assert ours.map_75 == pytest.approx(E.stats[2], abs=1e-4)
