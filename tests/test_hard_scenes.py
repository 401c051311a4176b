"""Tests for the harder emoji-scene preset (d2lcv.data.scene_presets): distractors by hand,
the easy set unchanged (pinned), the preset's settings and generator output, and the
dataset statistics (d2lcv.data.detection_stats)."""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np
import pytest
import torch
from PIL import Image

from d2lcv.data import (
    DISTRACTOR_EMOJI,
    HARD_EMOJI_CLASSES,
    HARD_SCENES,
    EmojiDetection,
    SceneSettings,
    compose_scene,
    detection_statistics,
    emoji,
    generate_emoji_detection,
    paste_order,
    scene_emoji_codes,
)

MIRROR = os.environ.get("D2LCV_MIRROR", "").strip()
needs_mirror = pytest.mark.skipif(not MIRROR, reason="D2LCV_MIRROR is not set (offline dataset mirror)")


@pytest.fixture(autouse=True)
def env(data_env):
    return data_env(mirror=True, offline=True)


def _square(colour: tuple[int, int, int], side: int = 8) -> Image.Image:
    return Image.new("RGBA", (side, side), (*colour, 255))


class TestEasySetUnchanged:
    def test_compose_scene_output_is_pinned(self):
        # computed with the generator as it was before distractors existed
        sprites = [_square(c) for c in [(255, 0, 0), (0, 255, 0), (0, 0, 255)]]
        rng, h = np.random.default_rng(2024), hashlib.sha256()
        for _ in range(10):
            _, b, lab, a = compose_scene(Image.new("RGB", (64, 64)), sprites, rng,
                                         num_objects=(2, 8), object_size=(0.1, 0.4))
            for x in (b, lab, a):
                h.update(x.numpy().tobytes())
        assert h.hexdigest() == "ad43aa4bc1e329188b76af577b1c1353283a8acff0e67c5e76875d48c30c478e"

    def test_default_folder_name_is_pinned(self):
        assert SceneSettings().folder_name() == "v1-seed0-128px-1000-200-200-9edcd125"

    def test_no_distractors_draws_no_extra_numbers(self):
        a, b = np.random.default_rng(3), np.random.default_rng(3)
        order = paste_order((2, 5), (0, 0), a)
        assert order == [True] * int(b.integers(2, 6)) and a.random() == b.random()


class TestDistractors:
    def test_distractors_are_pasted_but_not_annotated(self):
        # red squares are the class, green ones distractors: the boxes cover only red pixels
        rng = np.random.default_rng(0)
        seen_green = False
        for _ in range(10):
            img, boxes, labels, areas = compose_scene(
                Image.new("RGB", (40, 40)), [_square((255, 0, 0))], rng, num_objects=(2, 2),
                object_size=(0.2, 0.2), max_occlusion=0.0, distractors=[_square((0, 255, 0))],
                num_distractors=(2, 2))
            px = np.asarray(img)
            red, green = (px[..., 0] == 255).sum(), (px[..., 1] == 255).sum()
            assert labels.tolist() == [0] * len(labels) and red == areas.sum() == 64 * len(labels)
            seen_green |= green > 0
            for x1, y1, x2, y2 in boxes.int().tolist():
                assert (px[y1:y2, x1:x2, 0] == 255).all()
        assert seen_green

    def test_paste_order_counts(self):
        order = paste_order((3, 3), (2, 2), np.random.default_rng(1))
        assert sorted(order) == [False, False, True, True, True]

    @pytest.mark.parametrize("kwargs, match", [
        (dict(num_distractors=(2, 1)), "num_distractors"),
        (dict(num_distractors=(-1, 1)), "num_distractors"),
        (dict(num_distractors=(0, 2)), "needs distractors"),
    ])
    def test_bad_distractors(self, kwargs, match):
        with pytest.raises(ValueError, match=match):
            compose_scene(Image.new("RGB", (8, 8)), [_square((1, 2, 3))], np.random.default_rng(0), **kwargs)
        with pytest.raises(ValueError, match=match):
            SceneSettings(**kwargs)


class TestHardPreset:
    def test_settings(self):
        st = SceneSettings.hard()
        assert len(st.classes) == 20 == len(set(st.classes)) and st.image_size == HARD_SCENES["image_size"]
        assert st.num_objects == (1, 12) and st.object_size == (0.06, 0.6) and st.max_occlusion == 0.6
        assert st.distractors == DISTRACTOR_EMOJI and not set(DISTRACTOR_EMOJI) & set(HARD_EMOJI_CLASSES)
        small = SceneSettings.hard(sizes={"train": 5}, image_size=64)
        assert small.sizes == {"train": 5} and small.classes == HARD_EMOJI_CLASSES
        assert small.folder_name() != SceneSettings(sizes={"train": 5}, image_size=64).folder_name()

    def test_distractors_must_not_be_classes(self):
        with pytest.raises(ValueError, match="distractors must not be classes"):
            SceneSettings.hard(distractors=("apple", "star"))

    def test_names_resolve(self):
        assert scene_emoji_codes(["apple", "avocado", "1f34c"]) == ["apple", "1f951", "1f34c"]

    @needs_mirror
    def test_every_emoji_is_available(self):
        images = emoji(scene_emoji_codes(HARD_EMOJI_CLASSES + DISTRACTOR_EMOJI))
        assert len(images) == 33 and all(im.mode == "RGBA" for im in images)

    @needs_mirror
    def test_generator(self, tmp_path):
        st = SceneSettings.hard(sizes={"train": 6, "val": 2}, image_size=96, backgrounds=("photos",))
        root = generate_emoji_detection(tmp_path / "hard", st, progress=False)
        coco = json.loads((root / "instances_train.json").read_text())
        assert [c["name"] for c in coco["categories"]] == list(HARD_EMOJI_CLASSES)
        per_image = np.bincount([a["image_id"] for a in coco["annotations"]], minlength=7)[1:]
        assert len(coco["images"]) == 6 and per_image.max() <= 12 and per_image.sum() > 6
        ds = EmojiDetection("val", settings=st)
        assert ds.images.shape == (2, 3, 96, 96) and ds.classes == HARD_EMOJI_CLASSES


class TestStatistics:
    def test_by_hand(self):
        targets = [
            {"boxes": torch.tensor([[0.0, 0, 10, 10], [5, 5, 15, 15], [20, 20, 30, 40]]),
             "labels": torch.tensor([0, 2, 2])},
            {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long)},
            {"boxes": torch.tensor([[0.0, 0, 40, 40]]), "labels": torch.tensor([1])},
        ]
        st = detection_statistics(targets, image_size=40, num_classes=4)
        assert st.per_image.tolist() == [3, 0, 1] and st.class_counts.tolist() == [1, 1, 2, 0]
        torch.testing.assert_close(st.box_side, torch.tensor([0.25, 0.25, 200**0.5 / 40, 1.0]))
        assert st.overlapping.tolist() == [True, True, False, False]

    def test_empty(self):
        st = detection_statistics([], image_size=32, num_classes=3)
        assert st.per_image.shape == (0,) and st.box_side.shape == (0,) and st.overlapping.shape == (0,)
        assert st.class_counts.tolist() == [0, 0, 0]

    @pytest.mark.parametrize("targets, kwargs, match", [
        ([{"boxes": torch.zeros(1, 4)}], {}, "'boxes' and 'labels'"),
        ([{"boxes": torch.zeros(1, 4), "labels": torch.tensor([5])}], {}, "labels must be in 0..2"),
        ([], dict(image_size=0), "image_size and num_classes must be positive"),
    ])
    def test_bad_inputs(self, targets, kwargs, match):
        with pytest.raises(ValueError, match=match):
            detection_statistics(targets, **{"image_size": 32, "num_classes": 3, **kwargs})
