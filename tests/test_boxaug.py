"""d2lcv.transforms.detection: boxes follow flips, crops and resizes; degenerate boxes go with their labels."""

import os

import PIL.Image
import pytest
import torch
from torchvision.transforms import v2

from d2lcv import transforms


def _image(H=100, W=200):
    return torch.randint(0, 256, (3, H, W), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))


BOXES = torch.tensor([[10.0, 20.0, 60.0, 80.0], [120.0, 5.0, 190.0, 95.0], [80.0, 40.0, 110.0, 60.0]])
LABELS = torch.tensor([1, 2, 3])


class TestDetectionTransforms:
    def test_horizontal_flip_hand_worked(self):
        # W = 200: x1, x2 -> W - x2, W - x1; y unchanged
        flip = v2.Compose([v2.ToImage(), v2.RandomHorizontalFlip(p=1.0)])
        img, boxes, labels = transforms.apply_detection_transform(flip, _image(), BOXES, LABELS)
        expected = torch.tensor([[140.0, 20.0, 190.0, 80.0], [10.0, 5.0, 80.0, 95.0], [90.0, 40.0, 120.0, 60.0]])
        torch.testing.assert_close(boxes, expected)
        assert torch.equal(img, _image().flip(-1)) and torch.equal(labels, LABELS)

    def test_eval_is_resize_hand_worked(self):
        # 100x200 -> 50x50: x scaled by 1/4, y by 1/2
        img, boxes, labels = transforms.apply_detection_transform(transforms.detection_transforms(False, 50), _image(), BOXES, LABELS)
        assert img.shape == (3, 50, 50) and img.dtype == torch.float32 and 0 <= img.min() and img.max() <= 1
        torch.testing.assert_close(boxes, BOXES * torch.tensor([0.25, 0.5, 0.25, 0.5]))
        assert torch.equal(labels, LABELS)

    @pytest.mark.parametrize("seed", range(10))
    def test_train_boxes_stay_on_the_canvas(self, seed):
        torch.manual_seed(seed)
        t = transforms.detection_transforms(True, 64)
        img, boxes, labels = transforms.apply_detection_transform(t, _image(), BOXES, LABELS)
        assert img.shape == (3, 64, 64) and img.dtype == torch.float32
        assert boxes.shape == (len(labels), 4) and set(labels.tolist()) <= {1, 2, 3}
        assert (boxes >= 0).all() and (boxes <= 64).all()
        assert ((boxes[:, 2] - boxes[:, 0]) >= 1).all() and ((boxes[:, 3] - boxes[:, 1]) >= 1).all()

    def test_degenerate_boxes_dropped_with_labels(self):
        # box 1 is 0.5 px wide, box 2 lies outside the image (clamped to zero width)
        boxes = torch.tensor([[10.0, 10.0, 50.0, 50.0], [20.0, 20.0, 20.5, 40.0], [250.0, 10.0, 260.0, 20.0]])
        t = v2.Compose([v2.ToImage(), v2.ClampBoundingBoxes(), v2.SanitizeBoundingBoxes()])
        _, out, labels = transforms.apply_detection_transform(t, _image(), boxes, torch.tensor([7, 8, 9]))
        torch.testing.assert_close(out, boxes[:1])
        assert labels.tolist() == [7]

    def test_seeded_reproducibility(self):
        t = transforms.detection_transforms(True, 48)
        runs = []
        for _ in range(2):
            torch.manual_seed(123)
            runs.append(transforms.apply_detection_transform(t, _image(), BOXES, LABELS))
        for a, b in zip(*runs):
            assert torch.equal(a, b)

    def test_pil_input(self):
        pil = PIL.Image.fromarray(_image().permute(1, 2, 0).numpy())
        img, boxes, _ = transforms.apply_detection_transform(transforms.detection_transforms(False, 32), pil, BOXES, LABELS)
        assert img.shape == (3, 32, 32)
        torch.testing.assert_close(boxes, BOXES * torch.tensor([0.16, 0.32, 0.16, 0.32]))

    def test_empty_boxes(self):
        img, boxes, labels = transforms.apply_detection_transform(
            transforms.detection_transforms(False, 32), _image(), torch.zeros(0, 4), torch.zeros(0, dtype=torch.int64)
        )
        assert boxes.shape == (0, 4) and labels.shape == (0,)

    @pytest.mark.skipif(not os.environ.get("D2LCV_MIRROR"), reason="needs D2LCV_MIRROR")
    def test_real_photo(self):
        from d2lcv.data import load_image

        photo = load_image("catdog.jpg")
        W, H = photo.size
        boxes = torch.tensor([[0.1 * W, 0.1 * H, 0.5 * W, 0.9 * H], [0.5 * W, 0.2 * H, 0.9 * W, 0.9 * H]])
        torch.manual_seed(0)
        img, out, labels = transforms.apply_detection_transform(transforms.detection_transforms(True, 128), photo, boxes, torch.tensor([0, 1]))
        assert img.shape == (3, 128, 128) and (out >= 0).all() and (out <= 128).all()

    def test_bad_inputs(self):
        t = transforms.detection_transforms(False, 32)
        with pytest.raises(ValueError, match=r"boxes must be Tensor\[N, 4\] \(x1, y1, x2, y2\), got shape \(3, 5\)"):
            transforms.apply_detection_transform(t, _image(), torch.zeros(3, 5), LABELS)
        with pytest.raises(ValueError, match=r"got shape \(4,\)"):
            transforms.apply_detection_transform(t, _image(), torch.zeros(4), LABELS[:1])
        with pytest.raises(ValueError, match=r"x1 <= x2 and y1 <= y2, got box 1: \[50.0, 0.0, 40.0, 10.0\]"):
            transforms.apply_detection_transform(t, _image(), torch.tensor([[0.0, 0, 1, 1], [50, 0, 40, 10]]), LABELS[:2])
        with pytest.raises(ValueError, match=r"labels must be Tensor\[3\], one per box, got shape \(2,\)"):
            transforms.apply_detection_transform(t, _image(), BOXES, LABELS[:2])
        with pytest.raises(ValueError, match=r"image must be Tensor\[C, H, W\], got shape \(100, 200\)"):
            transforms.apply_detection_transform(t, _image()[0], BOXES, LABELS)
        with pytest.raises(TypeError, match="PIL image or a Tensor"):
            transforms.apply_detection_transform(t, [1, 2], BOXES, LABELS)
        with pytest.raises(ValueError, match="size must be a positive int, got 0"):
            transforms.detection_transforms(True, 0)
