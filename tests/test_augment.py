"""d2lcv.transforms.classification: Cutout hand-worked and properties, the named CIFAR pipelines."""

import os

import PIL.Image
import pytest
import torch

from d2lcv import data, models, recipes, transforms


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _centre_drawn(H, W, seed):
    """The centre cutout draws for this seed: cy then cx, each [1, 1]."""
    g = _gen(seed)
    return int(torch.randint(0, H, (1, 1), generator=g)), int(torch.randint(0, W, (1, 1), generator=g))


def _seed_with_centre(H, W, centre):
    return next(s for s in range(10_000) if _centre_drawn(H, W, s) == centre)


class TestCutout:
    def test_hand_worked_corner(self):
        # centre (0, 0), size 4: rows/cols [-2, 2) clipped to [0, 2): a 2x2 square at the corner
        seed = _seed_with_centre(6, 6, (0, 0))
        out = transforms.cutout(torch.ones(1, 6, 6), 4, generator=_gen(seed))
        expected = torch.ones(1, 6, 6)
        expected[:, 0:2, 0:2] = 0
        assert torch.equal(out, expected)

    def test_hand_worked_centre(self):
        # centre (3, 2), size 3: rows [2, 5), cols [1, 4), all inside: 9 pixels of fill 7
        seed = _seed_with_centre(7, 6, (3, 2))
        img = torch.arange(2 * 7 * 6, dtype=torch.uint8).view(2, 7, 6)
        out = transforms.cutout(img, 3, generator=_gen(seed), fill=7)
        expected = img.clone()
        expected[:, 2:5, 1:4] = 7
        assert torch.equal(out, expected) and out.dtype == torch.uint8

    @pytest.mark.parametrize("dtype", [torch.uint8, torch.float32, torch.float64])
    def test_fills_a_clipped_square_and_nothing_else(self, dtype):
        img = torch.full((3, 20, 20), 5, dtype=dtype)
        for seed in range(20):
            out = transforms.cutout(img, 8, generator=_gen(seed))
            mask = out[0] == 0
            assert torch.equal(mask, (out == 0).all(0))  # same square in every channel
            rows, cols = mask.any(1).nonzero().flatten(), mask.any(0).nonzero().flatten()
            assert 4 <= len(rows) <= 8 and 4 <= len(cols) <= 8  # clipped to at least half
            assert mask.sum() == len(rows) * len(cols)  # a filled rectangle
            assert (out[:, ~mask] == 5).all()  # the rest untouched

    def test_input_not_modified_and_size_zero_is_identity(self):
        img = torch.rand(3, 8, 8)
        copy = img.clone()
        transforms.cutout(img, 4, generator=_gen())
        assert torch.equal(img, copy)
        assert torch.equal(transforms.cutout(img, 0, generator=_gen()), img)

    def test_seeded_determinism(self):
        img = torch.rand(3, 16, 16)
        a, b = transforms.cutout(img, 4, generator=_gen(1)), transforms.cutout(img, 4, generator=_gen(1))
        assert torch.equal(a, b)
        assert any(not torch.equal(a, transforms.cutout(img, 4, generator=_gen(s))) for s in range(2, 6))

    def test_batch_equals_per_image_with_the_same_draws(self):
        # the batch draws all B row centres, then all B column centres: replay them per image
        imgs = torch.rand(4, 3, 10, 10, generator=_gen())
        out = transforms.cutout(imgs, 5, generator=_gen(3))
        g = _gen(3)
        cy, cx = torch.randint(0, 10, (4, 1), generator=g), torch.randint(0, 10, (4, 1), generator=g)
        for i in range(4):
            expected = imgs[i].clone()
            r0, c0 = int(cy[i]) - 2, int(cx[i]) - 2
            expected[:, max(r0, 0) : r0 + 5, max(c0, 0) : c0 + 5] = 0
            assert torch.equal(out[i], expected)
        assert out.shape == imgs.shape

    def test_module(self):
        img = torch.rand(3, 10, 10)
        assert torch.equal(transforms.Cutout(4, fill=1.0, generator=_gen(2))(img), transforms.cutout(img, 4, generator=_gen(2), fill=1.0))

    def test_bad_inputs(self):
        with pytest.raises(ValueError, match=r"Tensor\[C, H, W\] or Tensor\[B, C, H, W\], got shape \(8, 8\)"):
            transforms.cutout(torch.zeros(8, 8), 2)
        with pytest.raises(ValueError, match="size must be a non-negative int, got -1"):
            transforms.cutout(torch.zeros(3, 8, 8), -1)
        with pytest.raises(ValueError, match="size must be a non-negative int, got 2.5"):
            transforms.Cutout(2.5)
        with pytest.raises(ValueError, match=r"integer in \[0, 255\], got 0.5"):
            transforms.cutout(torch.zeros(3, 8, 8, dtype=torch.uint8), 2, fill=0.5)
        with pytest.raises(TypeError, match="uint8 or floating point, got torch.int64"):
            transforms.cutout(torch.zeros(3, 8, 8, dtype=torch.int64), 2)


class TestCifarPipeline:
    @pytest.mark.parametrize("name", transforms.PIPELINES)
    def test_float_normalised_output(self, name):
        torch.manual_seed(0)
        img = torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8)
        out = transforms.cifar_pipeline(name)(img)
        assert type(out) is torch.Tensor and out.dtype == torch.float32 and out.shape == (3, 32, 32)
        lo = (0 - torch.tensor(transforms.CIFAR10_MEAN)) / torch.tensor(transforms.CIFAR10_STD)
        hi = (1 - torch.tensor(transforms.CIFAR10_MEAN)) / torch.tensor(transforms.CIFAR10_STD)
        assert (out >= lo[:, None, None] - 1e-5).all() and (out <= hi[:, None, None] + 1e-5).all()

    @pytest.mark.parametrize("name", transforms.PIPELINES)
    def test_pil_input(self, name):
        img = PIL.Image.new("RGB", (32, 32), (10, 200, 30))
        assert transforms.cifar_pipeline(name)(img).shape == (3, 32, 32)

    def test_none_is_deterministic_normalisation(self):
        img = torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8, generator=_gen())
        t = transforms.cifar_pipeline("none")
        mean, std = torch.tensor(transforms.CIFAR10_MEAN)[:, None, None], torch.tensor(transforms.CIFAR10_STD)[:, None, None]
        torch.testing.assert_close(t(img), (img / 255 - mean) / std)
        assert torch.equal(t(img), t(img))

    def test_augmenting_pipelines_are_random_and_seedable(self):
        img = torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8, generator=_gen())
        t = transforms.cifar_pipeline("flip_crop_color")
        torch.manual_seed(1)
        a = t(img)
        torch.manual_seed(1)
        assert torch.equal(a, t(img))
        assert any(not torch.equal(a, t(img)) for _ in range(3))

    def test_erase_fills_with_the_mean(self):
        # Cutout after Normalize: fill 0 is the mean colour; a 16x16 square clips to >= 8x8
        img = torch.full((3, 32, 32), 255, dtype=torch.uint8)
        torch.manual_seed(0)
        out = transforms.cifar_pipeline("flip_crop_erase")(img)
        assert (out == 0).all(0).sum() >= 64

    @pytest.mark.skipif(not os.environ.get("D2LCV_MIRROR"), reason="needs D2LCV_MIRROR")
    def test_real_cifar(self):
        from d2lcv.data import CIFAR10

        x, _ = CIFAR10("train").tensors(n=20, generator=_gen())
        t = transforms.cifar_pipeline("flip_crop_erase")
        out = torch.stack([t(img) for img in x])
        assert out.shape == (20, 3, 32, 32) and abs(float(out.mean())) < 0.5

    def test_bad_name(self):
        with pytest.raises(ValueError, match="unknown pipeline 'flip'; choose one of"):
            transforms.cifar_pipeline("flip")


class TestExperimentProtocol:
    def _data(self, n=32):
        g = torch.Generator().manual_seed(0)
        images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g)
        return images, torch.arange(n) % 10

    def test_augmented_images(self):
        images, labels = self._data()
        ds = data.AugmentedImages(images, labels, transforms.cifar_pipeline("none"))
        x, y = ds[3]
        assert x.dtype == torch.float32 and x.shape == (3, 32, 32) and y == 3
        assert len(ds) == 32

    def test_augmented_images_bad_input(self):
        images, labels = self._data()
        with pytest.raises(ValueError, match=r"images must be uint8 \[N, C, H, W\], got torch.float32"):
            data.AugmentedImages(images.float(), labels, transforms.cifar_pipeline("none"))
        with pytest.raises(ValueError, match=r"labels must have shape \[32\], got \(31,\)"):
            data.AugmentedImages(images, labels[:31], transforms.cifar_pipeline("none"))

    def test_train_with_pipeline_is_reproducible(self):
        
        images, labels = self._data()
        test = torch.utils.data.DataLoader(data.AugmentedImages(images, labels, transforms.cifar_pipeline("none")),
                                           batch_size=16)
        runs = [
            recipes.train_with_pipeline(lambda: models.resnet_cifar(width=4), images, labels,
                                        transforms.cifar_pipeline("flip_crop"), test, epochs=2, batch_size=8,
                                        batch_transform=transforms.CutMix(num_classes=10, generator=torch.Generator().manual_seed(0)))
            for _ in range(2)
        ]
        (m1, h1), (m2, h2) = runs
        assert len(h1) == 2 and h1["train_loss"] == h2["train_loss"] and h1["val_acc"] == h2["val_acc"]
        torch.manual_seed(5)
        before = torch.get_rng_state()
        recipes.train_with_pipeline(lambda: models.resnet_cifar(width=4), images[:8], labels[:8],
                                    transforms.cifar_pipeline("flip_crop"), test, epochs=1, batch_size=8)
        assert torch.equal(torch.get_rng_state(), before)  # seeded inside, the caller's RNG left alone
        for p1, p2 in zip(m1.parameters(), m2.parameters()):
            assert torch.equal(p1, p2)

    def test_compare_pipelines_runs_each_under_the_same_protocol(self):
        images, labels = self._data(16)
        test = torch.utils.data.DataLoader(data.AugmentedImages(images, labels, transforms.cifar_pipeline("none")),
                                           batch_size=16)
        make_model = lambda: models.fastnet(width=4)  # noqa: E731
        runs = {"none": transforms.cifar_pipeline("none"),
                "cutmix": (transforms.cifar_pipeline("flip_crop"),
                           transforms.CutMix(num_classes=10, generator=torch.Generator().manual_seed(0)))}
        results = recipes.compare_pipelines(make_model, images, labels, runs, test, epochs=1, batch_size=8, seed=3)
        assert list(results) == ["none", "cutmix"]
        for model, history, seconds in results.values():
            assert isinstance(model, models.FastNet) and len(history) == 1 and seconds > 0
        _, alone = recipes.train_with_pipeline(make_model, images, labels, transforms.cifar_pipeline("none"), test,
                                               epochs=1, batch_size=8, seed=3)
        assert alone["train_loss"] == results["none"][1]["train_loss"]  # the same seed, the same run
