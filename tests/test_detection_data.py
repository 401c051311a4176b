"""Tests for d2lcv.data.detection: the scene compositor by hand, the generator's determinism,
caching and COCO output (checked by pycocotools), the datasets, and the banana loader on a
small archive laid out like d2l's."""

from __future__ import annotations

import contextlib
import io
import json
import os
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from d2lcv.data import REGISTRY
from d2lcv.data import (
    EMOJI_DETECTION_CLASSES,
    BananaDetection,
    EmojiDetection,
    compose_scene,
    detection_collate,
    generate_emoji_detection,
)

MIRROR = os.environ.get("D2LCV_MIRROR", "").strip()
needs_mirror = pytest.mark.skipif(not MIRROR, reason="D2LCV_MIRROR is not set (offline dataset mirror)")
SMALL = dict(sizes={"train": 6, "val": 3, "test": 2}, image_size=64, backgrounds=("photos",))


@pytest.fixture(autouse=True)
def env(data_env):
    return data_env(mirror=True, offline=True)


def _square(colour: tuple[int, int, int], side: int = 8) -> Image.Image:
    return Image.new("RGBA", (side, side), (*colour, 255))


class TestComposeScene:
    def test_one_opaque_square_by_hand(self):
        # a 10x10 opaque red square (object_size 0.5 of a 20x20 image) on a black background:
        # its box is exactly where its red pixels are, and its area is 100 pixels
        bg = Image.new("RGB", (20, 20))
        img, boxes, labels, areas = compose_scene(bg, [_square((255, 0, 0))], np.random.default_rng(0),
                                                  num_objects=(1, 1), object_size=(0.5, 0.5))
        x1, y1, x2, y2 = boxes[0].int().tolist()
        assert (x2 - x1, y2 - y1) == (10, 10) and labels.tolist() == [0] and areas.tolist() == [100.0]
        red = np.asarray(img)[..., 0] == 255
        assert red.sum() == 100 and red[y1:y2, x1:x2].all()

    def test_occlusion_is_bounded(self):
        # 10x10 squares on 30x30 images: every object keeps at least 60 of its 100 pixels visible
        sprites = [_square((255, 0, 0)), _square((0, 255, 0))]
        rng = np.random.default_rng(1)
        seen_overlap = False
        for _ in range(30):
            _, boxes, labels, areas = compose_scene(Image.new("RGB", (30, 30)), sprites, rng, num_objects=(3, 3),
                                                    object_size=(1 / 3, 1 / 3), max_occlusion=0.4)
            assert (areas >= 60).all() and (areas <= 100).all()
            seen_overlap |= bool((areas < 100).any())
            w, h = (boxes[:, 2:] - boxes[:, :2]).unbind(1)
            assert (w * h >= areas).all() and set(labels.tolist()) <= {0, 1}
        assert seen_overlap, "no partial occlusion in 30 scenes"

    def test_counts_boxes_and_determinism(self):
        sprites = [_square((255, 0, 0), 16), _square((0, 0, 255), 16)]
        bg = Image.new("RGB", (64, 48))
        a = compose_scene(bg, sprites, np.random.default_rng(7))
        b = compose_scene(bg, sprites, np.random.default_rng(7))
        assert np.array_equal(np.asarray(a[0]), np.asarray(b[0])) and torch.equal(a[1], b[1])
        _, boxes, labels, _ = a
        assert 1 <= len(boxes) <= 6 and boxes.dtype == torch.float32 and labels.dtype == torch.int64
        assert (boxes[:, :2] >= 0).all() and (boxes[:, 2] <= 64).all() and (boxes[:, 3] <= 48).all()

    @pytest.mark.parametrize("kwargs, match", [
        (dict(num_objects=(0, 2)), "num_objects"),
        (dict(num_objects=(3, 2)), "num_objects"),
        (dict(object_size=(0.5, 0.2)), "object_size"),
    ])
    def test_bad_arguments(self, kwargs, match):
        with pytest.raises(ValueError, match=match):
            compose_scene(Image.new("RGB", (8, 8)), [_square((1, 2, 3))], np.random.default_rng(0), **kwargs)

    def test_no_sprites(self):
        with pytest.raises(ValueError, match="sprites is empty"):
            compose_scene(Image.new("RGB", (8, 8)), [], np.random.default_rng(0))


@needs_mirror
class TestGenerator:
    def test_deterministic_and_valid_coco(self, tmp_path):
        from pycocotools.coco import COCO

        kw = dict(sizes={"train": 4, "val": 2}, image_size=48, backgrounds=("photos", "paintings"), seed=3,
                  progress=False)
        a = generate_emoji_detection(tmp_path / "a", **kw)
        b = generate_emoji_detection(tmp_path / "b", **kw)
        for split in ("train", "val"):
            ja, jb = (p / f"instances_{split}.json" for p in (a, b))
            assert ja.read_text() == jb.read_text()
            with contextlib.redirect_stdout(io.StringIO()):
                coco = COCO(str(ja))
            assert len(coco.getImgIds()) == kw["sizes"][split]
            assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == list(EMOJI_DETECTION_CLASSES)
            for ann in coco.loadAnns(coco.getAnnIds()):
                x, y, w, h = ann["bbox"]
                assert 0 <= x and 0 <= y and x + w <= 48 and y + h <= 48 and 0 < ann["area"] <= w * h
        assert sorted(p.name for p in a.iterdir()) == ["instances_train.json", "instances_val.json", "train", "val"]
        assert (a / "train" / "000000.jpg").read_bytes() == (b / "train" / "000000.jpg").read_bytes()
        other = generate_emoji_detection(tmp_path / "c", **{**kw, "seed": 4})
        assert (other / "instances_train.json").read_text() != (a / "instances_train.json").read_text()
        assert not list(tmp_path.glob(".*partial"))  # the temporary folders are gone

    @pytest.mark.parametrize("kwargs, match", [
        (dict(sizes={"training": 3}), "sizes must map splits"),
        (dict(sizes={"train": -1}), "sizes must map splits"),
        (dict(sizes={"train": 1}, backgrounds=("clouds",)), "backgrounds must be"),
    ])
    def test_bad_arguments(self, tmp_path, kwargs, match):
        with pytest.raises(ValueError, match=match):
            generate_emoji_detection(tmp_path / "x", **kwargs)
        assert not (tmp_path / "x").exists()


@needs_mirror
class TestEmojiDetection:
    def test_items_cache_and_collate(self, env):
        train = EmojiDetection("train", **SMALL)
        assert len(train) == 6 and train.classes == EMOJI_DETECTION_CLASSES
        assert train.root.parent == env / "cache" / "emoji-detection" and train.coco_json.exists()
        image, target = train[0]
        assert image.dtype == torch.uint8 and image.shape == (3, 64, 64)
        assert target["boxes"].shape[1] == 4 and target["labels"].dtype == torch.int64
        stamp = train.coco_json.stat().st_mtime_ns
        again = EmojiDetection("train", **SMALL)  # read from the cache, not generated again
        assert again.coco_json.stat().st_mtime_ns == stamp and torch.equal(again.images, train.images)
        assert len(EmojiDetection("val", **SMALL)) == 3
        images, targets = detection_collate([train[0], train[1]])
        assert images.shape == (2, 3, 64, 64) and len(targets) == 2

    def test_boxes_match_the_coco_json(self):
        val = EmojiDetection("val", **SMALL)
        coco = json.loads(val.coco_json.read_text())
        first = [a["bbox"] for a in coco["annotations"] if a["image_id"] == 1]
        x, y, w, h = torch.tensor(first, dtype=torch.float32).unbind(1)
        assert torch.equal(val[0][1]["boxes"], torch.stack([x, y, x + w, y + h], 1))
        assert val[0][1]["labels"].tolist() == [a["category_id"] - 1 for a in coco["annotations"] if a["image_id"] == 1]

    def test_transform_moves_boxes(self):
        from torchvision.transforms import v2

        flip = v2.Compose([v2.ToImage(), v2.RandomHorizontalFlip(p=1.0), v2.ToDtype(torch.float32, scale=True)])
        plain, flipped = EmojiDetection("train", **SMALL), EmojiDetection("train", flip, **SMALL)
        (img0, t0), (img1, t1) = plain[0], flipped[0]
        assert img1.dtype == torch.float32 and torch.allclose(img1, img0.flip(-1).float() / 255)
        x1, y1, x2, y2 = t0["boxes"].unbind(1)
        expected = torch.stack([64 - x2, y1, 64 - x1, y2], 1)
        assert torch.allclose(t1["boxes"], expected) and torch.equal(t1["labels"], t0["labels"])

    def test_settings_change_the_folder(self):
        assert EmojiDetection("test", **SMALL).root != EmojiDetection("test", **{**SMALL, "seed": 1}).root


class TestEmojiDetectionErrors:
    def test_bad_split(self):
        with pytest.raises(ValueError, match="split must be one of"):
            EmojiDetection("validation")

    def test_split_without_size(self):
        with pytest.raises(ValueError, match="has no size"):
            EmojiDetection("test", sizes={"train": 2})


def _banana_zip(path, n=3):
    """A zip laid out like d2l's banana-detection.zip, with n tiny images per split."""
    with zipfile.ZipFile(path, "w") as zf:
        for split in ("train", "val"):
            rows = ["img_name,label,xmin,ymin,xmax,ymax"]
            for i in range(n):
                buf = io.BytesIO()
                Image.new("RGB", (32, 32), (i * 40, 0, 0)).save(buf, format="PNG")
                zf.writestr(f"banana-detection/bananas_{split}/images/{i}.png", buf.getvalue())
                rows.append(f"{i}.png,0,{i},{i + 1},{i + 10},{i + 12}")
            zf.writestr(f"banana-detection/bananas_{split}/label.csv", "\n".join(rows) + "\n")
    return path


class TestBanana:
    def test_registry_entry_is_the_official_one(self):
        (source,) = REGISTRY["banana-detection"].sources
        assert source.url == "http://d2l-data.s3-accelerate.amazonaws.com/banana-detection.zip"
        assert source.checksum == "sha1:5de26c8fce5ccdea9f91267273464dc968d20d72"

    def test_reads_an_archive(self, tmp_path):
        archive = _banana_zip(tmp_path / "banana-detection.zip")
        train = BananaDetection("train", archive=archive)
        assert len(train) == 3 and train.classes == ("banana",) and len(BananaDetection("val", archive=archive)) == 3
        image, target = train[2]
        assert image.shape == (3, 32, 32) and image[0, 0, 0] == 80
        assert target["boxes"].tolist() == [[2.0, 3.0, 12.0, 14.0]] and target["labels"].tolist() == [0]

    def test_offline_without_a_copy(self, monkeypatch):
        from d2lcv.data import DatasetNotFoundError

        monkeypatch.delenv("D2LCV_MIRROR", raising=False)
        with pytest.raises(DatasetNotFoundError, match="banana-detection"):
            BananaDetection("train")

    def test_bad_split_and_archive(self, tmp_path):
        with pytest.raises(ValueError, match="split must be 'train' or 'val'"):
            BananaDetection("test")
        other = tmp_path / "other.zip"
        with zipfile.ZipFile(other, "w") as zf:
            zf.writestr("readme.txt", "not bananas")
        with pytest.raises(FileNotFoundError, match="no bananas_train/label.csv"):
            BananaDetection("train", archive=other)
