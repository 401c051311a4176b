"""d2lcv.transforms.mixing: pixel-counting label checks, torchvision parity, properties, bad inputs."""

import pytest
import torch
import torch.nn.functional as F
from torchvision.transforms import v2

from d2lcv import losses, transforms

AUGS = [transforms.mixup, transforms.cutmix, transforms.ricap]
PASTING = [transforms.cutmix, transforms.ricap]


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _identity_batch(B=6, H=16, W=12, dtype=torch.float32):
    """Image i is filled with the value i and has label i, so every pixel names its source."""
    x = torch.arange(B, dtype=dtype).view(B, 1, 1, 1).expand(B, 3, H, W).contiguous()
    return x, torch.arange(B)


def _pixel_fractions(x_mixed, B):
    """[B, B]: the fraction of the pixels of output image i that came from image j."""
    src = x_mixed[:, 0].long().flatten(1)  # [B, H * W]
    return F.one_hot(src, B).float().mean(dim=1)


class TestMixUp:
    def test_fixed_lambda_formula(self):
        x, y = torch.randn(4, 3, 5, 5, generator=_gen()), torch.tensor([0, 1, 2, 0])
        index = torch.tensor([1, 0, 3, 2])
        xm, ym = transforms.mixup(x, y, num_classes=3, lam=0.3, index=index)
        torch.testing.assert_close(xm, 0.3 * x + 0.7 * x[index])
        # image 0 (class 0) with image 1 (class 1): 0.3 * e0 + 0.7 * e1
        torch.testing.assert_close(ym[0], torch.tensor([0.3, 0.7, 0.0]))
        torch.testing.assert_close(ym[3], torch.tensor([0.3, 0.0, 0.7]))  # class 0 with image 2 (class 2)

    def test_matches_torchvision_with_its_lambda_and_pairing(self):
        # torchvision pairs sample i with sample i - 1 (roll(1)) and draws lam from its own
        # Beta distribution with the global RNG: replay that draw, then hand our core the
        # same lam and pairing; the images and labels must then agree.
        x, y = torch.randn(5, 3, 4, 4, generator=_gen()), torch.tensor([0, 1, 2, 3, 1])
        tv = v2.MixUp(alpha=1.0, num_classes=4)
        torch.manual_seed(3)
        lam = float(tv._dist.sample(()))
        torch.manual_seed(3)
        x_tv, y_tv = tv(x, y)
        xm, ym = transforms.mixup(x, y, num_classes=4, lam=lam, index=torch.arange(5).roll(1))
        torch.testing.assert_close(xm, x_tv)
        torch.testing.assert_close(ym, y_tv)

    def test_lambda_statistics_match_torchvision(self):
        # Different samplers, same Beta(0.4, 0.4): the mean weight of an image's own label
        # over many batches agrees (standard error about 0.01 per estimate).
        x, y = torch.randn(2, 1, 2, 2), torch.tensor([0, 1])
        g = _gen(1)
        ours = [transforms.mixup(x, y, alpha=0.4, num_classes=2, generator=g, index=torch.tensor([1, 0]))[1][0, 0] for _ in range(1000)]
        torch.manual_seed(1)
        tv = v2.MixUp(alpha=0.4, num_classes=2)
        theirs = [tv(x, y)[1][0, 0] for _ in range(1000)]
        assert abs(torch.stack(ours).mean() - torch.stack(theirs).mean()) < 0.04
        assert abs(torch.stack(ours).std() - torch.stack(theirs).std()) < 0.04

    def test_uint8_raises(self):
        x, y = _identity_batch(dtype=torch.uint8)
        with pytest.raises(TypeError, match="floating point"):
            transforms.mixup(x, y, num_classes=6)


class TestCutMix:
    def test_hand_worked_box(self):
        # a 2x3 box (rows 1..2, cols 0..2) of a 4x4 image: 6/16 of image 1 pasted onto image 0
        x, y = _identity_batch(B=2, H=4, W=4)
        xm, ym = transforms.cutmix(x, y, num_classes=2, box=(0, 1, 3, 3), index=torch.tensor([1, 0]))
        expected = torch.zeros(4, 4)
        expected[1:3, 0:3] = 1
        assert torch.equal(xm[0, 0], expected)
        torch.testing.assert_close(ym[0], torch.tensor([10 / 16, 6 / 16]))

    def test_matches_torchvision_with_its_box_and_pairing(self):
        # torchvision draws its own box; read it back from the output (the pixels that
        # changed on identity images) and hand it, with roll(1) pairing, to our core.
        x, y = _identity_batch(B=4, H=32, W=32)
        tv = v2.CutMix(alpha=1.0, num_classes=4)
        checked = 0
        for seed in range(10):
            torch.manual_seed(seed)
            x_tv, y_tv = tv(x, y)
            changed = (x_tv != x)[0, 0]  # image 0 gets pixels of image 3
            if not changed.any():
                continue
            rows, cols = changed.any(1).nonzero(), changed.any(0).nonzero()
            box = (int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1)
            xm, ym = transforms.cutmix(x, y, num_classes=4, box=box, index=torch.arange(4).roll(1))
            torch.testing.assert_close(xm, x_tv)
            torch.testing.assert_close(ym, y_tv)
            checked += 1
        assert checked >= 5

    def test_area_statistics_match_torchvision(self):
        # mean pasted area fraction over many draws, ours vs torchvision's sampler (their
        # box side is 2 * int(r * W), ours 2 * (int(2 r W) // 2): nearly the same)
        g, img = _gen(2), torch.empty(1, 3, 32, 32)
        ours = []
        for _ in range(2000):
            x1, y1, x2, y2 = transforms.cutmix_box(transforms.mixing._beta(1.0, 1.0, g), 32, 32, generator=g)
            ours.append((x2 - x1) * (y2 - y1) / 1024)
        torch.manual_seed(2)
        tv = v2.CutMix(alpha=1.0, num_classes=2)
        theirs = [1 - tv.make_params([img])["lam_adjusted"] for _ in range(2000)]
        assert abs(sum(ours) / 2000 - sum(theirs) / 2000) < 0.03

    @pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
    def test_dtype_kept(self, dtype):
        x, y = _identity_batch(dtype=dtype)
        xm, ym = transforms.cutmix(x, y, num_classes=6, generator=_gen())
        assert xm.dtype == dtype and ym.dtype == torch.float32

    def test_bad_box(self):
        x, y = _identity_batch(H=4, W=4)
        with pytest.raises(ValueError, match="box must satisfy"):
            transforms.cutmix(x, y, num_classes=6, box=(2, 0, 1, 4))


class TestRICAP:
    def test_at_most_four_sources_per_image(self):
        # four patches: each output image is made of pixels of at most 4 source images
        x, y = _identity_batch(B=8, H=16, W=16)
        for seed in range(5):
            xm, ym = transforms.ricap(x, y, beta=0.3, num_classes=8, generator=_gen(seed))
            assert ((_pixel_fractions(xm, 8) > 0).sum(1) <= 4).all()
            assert ((ym > 0).sum(1) <= 4).all()

    def test_boundary_at_a_corner_copies_whole_images(self):
        # beta tiny: w and h are 0 or W, H, so one patch is the whole canvas and the label one-hot
        x, y = _identity_batch(B=4, H=8, W=8)
        xm, ym = transforms.ricap(x, y, beta=1e-3, num_classes=4, generator=_gen())
        assert set(ym.unique().tolist()) == {0.0, 1.0}
        torch.testing.assert_close(ym, _pixel_fractions(xm, 4))

    def test_uint8(self):
        x, y = _identity_batch(dtype=torch.uint8)
        xm, ym = transforms.ricap(x, y, num_classes=6, generator=_gen())
        assert xm.dtype == torch.uint8
        torch.testing.assert_close(_pixel_fractions(xm, 6), ym)


@pytest.mark.parametrize("aug", PASTING)
class TestPastedAreaIsTheLabel:
    @pytest.mark.parametrize("seed", range(8))
    def test_label_weights_equal_pixel_counts(self, aug, seed):
        # identity images: the fraction of output pixels whose value is j must be the
        # weight of class j in the label, exactly (clipping included)
        x, y = _identity_batch(B=6, H=16, W=12)
        xm, ym = aug(x, y, num_classes=6, generator=_gen(seed))
        torch.testing.assert_close(ym, _pixel_fractions(xm, 6))


@pytest.mark.parametrize("aug", AUGS)
class TestCommon:
    def test_shapes_dtypes_rows_sum_to_one(self, aug):
        x, y = torch.rand(8, 3, 10, 10, generator=_gen()), torch.randint(0, 7, (8,), generator=_gen())
        xm, ym = aug(x, y, num_classes=7, generator=_gen(1))
        assert xm.shape == x.shape and xm.dtype == x.dtype
        assert ym.shape == (8, 7) and ym.dtype == torch.float32
        assert (ym >= 0).all()
        torch.testing.assert_close(ym.sum(1), torch.ones(8))

    def test_soft_labels_compose(self, aug):
        x, y = torch.rand(8, 3, 10, 10, generator=_gen()), torch.randint(0, 7, (8,), generator=_gen())
        _, y1 = transforms.mixup(x, y, num_classes=7, generator=_gen(2))
        _, y2 = aug(x, y1, generator=_gen(3))  # num_classes may be omitted for soft labels
        torch.testing.assert_close(y2.sum(1), torch.ones(8))

    def test_seeded_determinism(self, aug):
        x, y = torch.rand(8, 3, 10, 10, generator=_gen()), torch.arange(8)
        a = aug(x, y, num_classes=8, generator=_gen(5))
        b = aug(x, y, num_classes=8, generator=_gen(5))
        c = aug(x, y, num_classes=8, generator=_gen(6))
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
        assert not torch.equal(a[0], c[0])

    def test_gradients_flow(self, aug):
        x = torch.rand(4, 3, 6, 6, requires_grad=True)
        xm, _ = aug(x, torch.arange(4), num_classes=4, generator=_gen())
        xm.sum().backward()
        assert x.grad is not None and x.grad.shape == x.shape

    def test_bad_inputs(self, aug):
        x, y = torch.rand(4, 3, 6, 6), torch.arange(4)
        with pytest.raises(ValueError, match=r"Tensor\[B, C, H, W\], got shape \(3, 6, 6\)"):
            aug(x[0], y, num_classes=4)
        with pytest.raises(ValueError, match="at least 2 images.*batch of 1"):
            aug(x[:1], y[:1], num_classes=4)
        with pytest.raises(ValueError, match=r"must be in \[0, 3\), got values in \[0, 3\]"):
            aug(x, y, num_classes=3)
        with pytest.raises(ValueError, match="num_classes is required"):
            aug(x, y)
        with pytest.raises(TypeError, match="must be int64, got torch.int32"):
            aug(x, y.int(), num_classes=4)
        with pytest.raises(ValueError, match="soft labels have 4 classes but num_classes=5"):
            aug(x, F.one_hot(y, 4).float(), num_classes=5)
        with pytest.raises(ValueError, match="B=4"):
            aug(x, y[:3], num_classes=4)
        param = "beta" if aug is transforms.ricap else "alpha"
        for bad in (0.0, -1.0):
            with pytest.raises(ValueError, match=f"{param} must be > 0, got {bad}"):
                aug(x, y, num_classes=4, **{param: bad})


class TestModules:
    @pytest.mark.parametrize(
        "module, fn, kw",
        [
            (transforms.MixUp, transforms.mixup, {"alpha": 0.4}),
            (transforms.CutMix, transforms.cutmix, {"alpha": 1.0}),
            (transforms.RICAP, transforms.ricap, {"beta": 0.3}),
        ],
    )
    def test_module_equals_function(self, module, fn, kw):
        x, y = torch.rand(6, 3, 8, 8, generator=_gen()), torch.arange(6)
        xm, ym = module(*kw.values(), num_classes=6, generator=_gen(4))(x, y)
        xf, yf = fn(x, y, num_classes=6, generator=_gen(4), **kw)
        assert torch.equal(xm, xf) and torch.equal(ym, yf)

    def test_mixup_or_cutmix_extremes(self):
        # p=1 is always mixup: every pixel is a blend; p=0 always cutmix: pixels are copies
        x, y = _identity_batch(B=4)
        xm, _ = transforms.MixUpOrCutMix(4, p=1.0, generator=_gen())(x, y)
        assert not torch.equal(xm, x)
        xc, yc = transforms.MixUpOrCutMix(4, p=0.0, generator=_gen())(x, y)
        torch.testing.assert_close(yc, _pixel_fractions(xc, 4))

    def test_bad_params(self):
        with pytest.raises(ValueError, match="alpha must be > 0, got 0"):
            transforms.MixUp(0, 10)
        with pytest.raises(ValueError, match=r"p must be in \[0, 1\], got 1.5"):
            transforms.MixUpOrCutMix(10, p=1.5)


class TestSoftTargetCrossEntropy:
    def test_one_hot_and_indices_match_cross_entropy(self):
        logits, y = torch.randn(5, 4, generator=_gen()), torch.tensor([0, 3, 1, 1, 2])
        ref = F.cross_entropy(logits, y)
        torch.testing.assert_close(losses.soft_target_cross_entropy(logits, y), ref)
        torch.testing.assert_close(losses.soft_target_cross_entropy(logits, F.one_hot(y, 4).float()), ref)

    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
    def test_probabilities_match_cross_entropy(self, dtype):
        logits = torch.randn(5, 4, generator=_gen(), dtype=dtype)
        probs = torch.rand(5, 4, generator=_gen(1), dtype=dtype).softmax(1)
        torch.testing.assert_close(losses.soft_target_cross_entropy(logits, probs), F.cross_entropy(logits, probs))

    def test_hand_worked(self):
        # uniform logits over 2 classes: -log(1/2) whatever the target
        out = losses.soft_target_cross_entropy(torch.zeros(3, 2), torch.tensor([[0.3, 0.7]] * 3))
        torch.testing.assert_close(out, torch.log(torch.tensor(2.0)))

    def test_gradient_matches_cross_entropy(self):
        logits = torch.randn(3, 5, generator=_gen(), requires_grad=True)
        probs = torch.rand(3, 5, generator=_gen(1)).softmax(1)
        (g1,) = torch.autograd.grad(losses.soft_target_cross_entropy(logits, probs), logits)
        (g2,) = torch.autograd.grad(F.cross_entropy(logits, probs), logits)
        torch.testing.assert_close(g1, g2)

    def test_bad_inputs(self):
        with pytest.raises(ValueError, match=r"logits must be Tensor\[B, K\], got shape \(4,\)"):
            losses.soft_target_cross_entropy(torch.zeros(4), torch.zeros(4, dtype=torch.int64))
        with pytest.raises(ValueError, match=r"shape of logits \(2, 3\), got torch.float32 \(2, 4\)"):
            losses.soft_target_cross_entropy(torch.zeros(2, 3), torch.zeros(2, 4))
        with pytest.raises(ValueError, match="class-index targets must be int64"):
            losses.soft_target_cross_entropy(torch.zeros(2, 3), torch.zeros(2))


class TestMixedBatches:
    def test_mixes_every_batch_and_keeps_length(self):
        x = torch.rand(12, 3, 8, 8)
        y = torch.arange(12) % 3
        loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=4)
        mixed = transforms.MixedBatches(loader, transforms.MixUp(alpha=1.0, num_classes=3, generator=torch.Generator().manual_seed(0)))
        assert len(mixed) == 3
        batches = list(mixed)
        assert len(batches) == 3
        for xb, yb in batches:
            assert xb.shape == (4, 3, 8, 8) and yb.shape == (4, 3)
            torch.testing.assert_close(yb.sum(1), torch.ones(4))

    def test_bad_mix(self):
        with pytest.raises(TypeError, match="mix must be a callable"):
            transforms.MixedBatches([], mix=0.5)
