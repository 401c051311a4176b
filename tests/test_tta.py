"""d2lcv.transforms.tta: ten_crop regions hand-worked, TTA with identity and flip-invariant models."""

import pytest
import torch
from torch import nn

from d2lcv import transforms


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


class Pixels(nn.Module):
    """'Logits' = the flattened pixels: a model whose output shows exactly what it saw."""

    def forward(self, x):
        return x.flatten(1)


class MeanColour(nn.Module):
    """Logits from channel means: invariant to flips (and to any permutation of pixels)."""

    def forward(self, x):
        return x.mean(dim=(2, 3))


class TestTenCrop:
    def test_regions_hand_worked(self):
        # 5x5 image with values 0..24 (row-major); crops of 3:
        #   top-left rows 0-2 cols 0-2 starts at 0, top-right cols 2-4 starts at 2,
        #   bottom-left rows 2-4 starts at 10, bottom-right at 12, centre rows/cols 1-3 at 6
        img = torch.arange(25.0).view(1, 5, 5)
        crops = transforms.ten_crop(img, 3)
        assert crops.shape == (10, 1, 3, 3)
        assert [int(c[0, 0, 0]) for c in crops[:5]] == [0, 2, 10, 12, 6]
        assert torch.equal(crops[0, 0], torch.tensor([[0.0, 1, 2], [5, 6, 7], [10, 11, 12]]))
        # the last five are the same corners of the flipped image: its top-left is the
        # mirror of the original top-right
        for k in range(5):
            assert torch.equal(crops[5 + k], transforms.ten_crop(img.flip(-1), 3)[k])
        assert torch.equal(crops[5], crops[1].flip(-1))
        assert torch.equal(crops[9], crops[4].flip(-1))

    def test_batch(self):
        imgs = torch.rand(3, 2, 8, 7, generator=_gen())
        out = transforms.ten_crop(imgs, 5)
        assert out.shape == (3, 10, 2, 5, 5)
        for i in range(3):
            assert torch.equal(out[i], transforms.ten_crop(imgs[i], 5))

    def test_uint8(self):
        assert transforms.ten_crop(torch.zeros(3, 6, 6, dtype=torch.uint8), 4).dtype == torch.uint8

    def test_bad_inputs(self):
        with pytest.raises(ValueError, match=r"size must be an int in \[1, 5\] for a 5x6 image, got 6"):
            transforms.ten_crop(torch.zeros(1, 5, 6), 6)
        with pytest.raises(ValueError, match=r"got shape \(5, 6\)"):
            transforms.ten_crop(torch.zeros(5, 6), 3)


class TestPredictTTA:
    def test_no_tta_is_softmax_of_logits(self):
        x = torch.randn(4, 3, 4, 4, generator=_gen())
        torch.testing.assert_close(transforms.predict_tta(Pixels(), x, mode="none"), x.flatten(1).softmax(1))

    def test_flip_with_pixel_model_is_mean_of_two_softmaxes(self):
        x = torch.randn(4, 3, 4, 4, generator=_gen())
        expected = (x.flatten(1).softmax(1) + x.flip(-1).flatten(1).softmax(1)) / 2
        torch.testing.assert_close(transforms.predict_tta(Pixels(), x, mode="flip"), expected)

    @pytest.mark.parametrize("mode", ["flip", "ten_crop"])
    def test_flip_invariant_model(self, mode):
        # mean colour is flip-invariant: flip-TTA changes nothing. For ten_crop the crops
        # differ, so compare with the per-crop average computed by hand instead.
        x = torch.randn(3, 3, 8, 8, generator=_gen())
        out = transforms.predict_tta(MeanColour(), x, mode=mode)
        if mode == "flip":
            torch.testing.assert_close(out, MeanColour()(x).softmax(1))
        else:
            padded = nn.functional.pad(x, (4, 4, 4, 4))
            crops = transforms.ten_crop(padded, 8)  # [B, 10, C, 8, 8]
            expected = crops.mean(dim=(3, 4)).softmax(-1).mean(1)
            torch.testing.assert_close(out, expected)

    @pytest.mark.parametrize("mode, crop_size", [("flip", None), ("ten_crop", None), ("ten_crop", 6), ("flip", 6)])
    def test_batch_equals_per_image_loop(self, mode, crop_size):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 5))
        model.train()
        x = torch.randn(5, 3, 8, 8, generator=_gen())
        out = transforms.predict_tta(model, x, mode=mode, crop_size=crop_size)
        assert model.training  # mode restored
        assert out.shape == (5, 5)
        torch.testing.assert_close(out.sum(1), torch.ones(5))
        loop = torch.cat([transforms.predict_tta(model, x[i : i + 1], mode=mode, crop_size=crop_size) for i in range(5)])
        torch.testing.assert_close(out, loop)

    def test_ten_crop_keeps_cifar_size(self):
        views = transforms.tta_views(torch.zeros(2, 3, 32, 32), "ten_crop")
        assert views.shape == (10, 2, 3, 32, 32)
        assert transforms.tta_views(torch.zeros(2, 3, 32, 32), "flip").shape == (2, 2, 3, 32, 32)

    def test_ten_crop_view_is_shifted_image(self):
        # padded by 4 then the top-left 32x32 crop: the image shifted right and down by 4
        x = torch.rand(1, 1, 32, 32, generator=_gen())
        tl = transforms.tta_views(x, "ten_crop")[0, 0, 0]
        assert torch.equal(tl[4:, 4:], x[0, 0, :28, :28]) and (tl[:4] == 0).all()
        assert torch.equal(transforms.tta_views(x, "ten_crop")[4, 0], x[0])  # centre crop = image

    def test_bad_inputs(self):
        with pytest.raises(ValueError, match="unknown mode 'rotate'"):
            transforms.predict_tta(Pixels(), torch.zeros(1, 3, 4, 4), mode="rotate")
        with pytest.raises(ValueError, match=r"Tensor\[B, C, H, W\], got shape \(3, 4, 4\)"):
            transforms.predict_tta(Pixels(), torch.zeros(3, 4, 4))
        with pytest.raises(ValueError, match="square images, got 4x6"):
            transforms.predict_tta(Pixels(), torch.zeros(1, 3, 4, 6), mode="ten_crop")
