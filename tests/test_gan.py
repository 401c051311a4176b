"""GAN losses, models, 2-D toys, generative metrics, the generalised GANStep and the recipes."""

from __future__ import annotations

import functools
import math
import os

import numpy as np
import pytest
import scipy.linalg
import torch
import torch.nn.functional as F
from torch import nn

from d2lcv import data, losses, metrics, models, recipes
from d2lcv.engine import GANStep, fit

# --- losses -------------------------------------------------------------------------------


def test_bce_losses_match_torch():
    g = torch.Generator().manual_seed(0)
    r, f = torch.randn(50, generator=g) * 3, torch.randn(40, generator=g) * 3
    expect = (F.binary_cross_entropy_with_logits(r, torch.ones_like(r))
              + F.binary_cross_entropy_with_logits(f, torch.zeros_like(f)))
    torch.testing.assert_close(losses.discriminator_loss(r, f), expect)
    torch.testing.assert_close(losses.generator_loss(f), F.binary_cross_entropy_with_logits(f, torch.ones_like(f)))
    d = torch.sigmoid(f.double())
    torch.testing.assert_close(losses.generator_loss(f.double(), saturating=True), torch.log1p(-d).mean())


def test_loss_hand_values_and_gradients():
    zero = torch.zeros(3)
    assert losses.discriminator_loss(zero, zero).item() == pytest.approx(2 * math.log(2))  # D = 1/2 everywhere
    # the gradient w.r.t. the logit: saturating -D, non-saturating -(1 - D)
    logit = torch.tensor([-4.0], requires_grad=True)
    (g_sat,) = torch.autograd.grad(losses.generator_loss(logit, saturating=True), logit)
    (g_ns,) = torch.autograd.grad(losses.generator_loss(logit), logit)
    d = torch.sigmoid(torch.tensor(-4.0))
    assert g_sat.item() == pytest.approx(-d.item()) and g_ns.item() == pytest.approx(-(1 - d).item())
    assert losses.critic_loss(torch.tensor([1.0, 3.0]), torch.tensor([0.5])).item() == -1.5
    assert losses.critic_generator_loss(torch.tensor([1.0, 3.0])).item() == -2.0


def test_gradient_penalty_on_linear_critics():
    real, fake = torch.randn(16, 2), torch.randn(16, 2)
    w = torch.tensor([3.0, 4.0])  # |grad| = 5 everywhere: penalty (5 - 1)^2
    assert losses.gradient_penalty(lambda x: x @ w, real, fake).item() == pytest.approx(16.0)
    unit = torch.tensor([0.6, 0.8], requires_grad=True)  # 1-Lipschitz: no penalty, and a gradient of 0
    p = losses.gradient_penalty(lambda x: x @ unit, real, fake)
    (gw,) = torch.autograd.grad(p, unit)
    assert p.item() == pytest.approx(0.0, abs=1e-12) and gw.abs().max() < 1e-6
    assert losses.gradient_penalty(lambda x: x @ w, real[:0], fake[:0]).item() == 0.0
    with pytest.raises(ValueError, match="same shape"):
        losses.gradient_penalty(lambda x: x @ w, real, fake[:3])


# --- toy data and mode coverage -----------------------------------------------------------


def test_toy_distributions():
    c = data.ring_centers(8, 2.0)
    assert c.shape == (8, 2) and torch.allclose(c.norm(dim=1), torch.full((8,), 2.0))
    torch.testing.assert_close(c[2], torch.tensor([0.0, 2.0]), atol=1e-6, rtol=0)
    grid = data.grid_centers(5, 2.0)
    assert grid.shape == (25, 2) and grid.min() == -4 and grid.max() == 4
    x = data.ring_of_gaussians(4000, std=0.02, generator=torch.Generator().manual_seed(0))
    assert x.shape == (4000, 2) and (x.norm(dim=1) - 2).abs().max() < 0.2
    again = data.ring_of_gaussians(4000, std=0.02, generator=torch.Generator().manual_seed(0))
    assert torch.equal(x, again)
    r = data.circle(1000, radius=1.5, noise=0.0)
    torch.testing.assert_close(r.norm(dim=1), torch.full((1000,), 1.5))
    assert data.grid_of_gaussians(0).shape == (0, 2)
    with pytest.raises(ValueError, match="n must be a non-negative int"):
        data.circle(-1)
    with pytest.raises(ValueError, match="centers must be a non-empty"):
        data.gaussian_mixture(3, torch.zeros(0, 2), 0.1)


def test_mode_coverage():
    centers = data.ring_centers(8, 2.0)
    real = data.ring_of_gaussians(2000, std=0.02, generator=torch.Generator().manual_seed(1))
    cov = metrics.mode_coverage(real, centers, 0.02)
    assert cov.modes == 8 and cov.high_quality > 0.98 and cov.counts.sum() <= 2000
    collapsed = centers[3] + 0.01 * torch.randn(500, 2)
    far = torch.zeros(500, 2)  # the centre of the ring: low quality
    cov = metrics.mode_coverage(torch.cat([collapsed, far]), centers, 0.02)
    assert cov.modes == 1 and cov.high_quality == pytest.approx(0.5) and cov.counts[3] == 500
    # hand case: a sample exactly 3 std away counts, and min_count filters thin modes
    pts = torch.tensor([[2.06, 0.0], [2.07, 0.0], [0.0, 2.0]])
    cov = metrics.mode_coverage(pts, centers, 0.02, min_count=2)
    assert cov.counts.tolist() == [1, 0, 1, 0, 0, 0, 0, 0] and cov.modes == 0
    assert cov.high_quality == pytest.approx(2 / 3)
    empty = metrics.mode_coverage(torch.zeros(0, 2), centers, 0.02)
    assert empty.modes == 0 and empty.counts.tolist() == [0] * 8
    with pytest.raises(ValueError, match="samples must be a Tensor"):
        metrics.mode_coverage(torch.zeros(5), centers, 0.02)
    with pytest.raises(ValueError, match="std and threshold must be > 0"):
        metrics.mode_coverage(pts, centers, 0.0)


# --- Fréchet distance ---------------------------------------------------------------------


def _random_cov(d: int, rng: np.random.Generator, rank: int | None = None) -> np.ndarray:
    a = rng.standard_normal((d, rank or d))
    return a @ a.T / d


def test_sqrtm_psd_against_scipy():
    rng = np.random.default_rng(0)
    c = _random_cov(6, rng)
    s = metrics.sqrtm_psd(torch.from_numpy(c))
    np.testing.assert_allclose(s.numpy(), scipy.linalg.sqrtm(c).real, atol=1e-10)
    np.testing.assert_allclose((s @ s).numpy(), c, atol=1e-10)


def test_frechet_closed_forms():
    mu1, mu2 = torch.tensor([0.0, 0.0, 0.0]), torch.tensor([1.0, 2.0, 2.0])
    eye = torch.eye(3)
    assert metrics.frechet_distance(mu1, eye, mu2, eye) == pytest.approx(9.0)  # only the means differ
    # diagonal covariances: sum of (sqrt(a) - sqrt(b))^2
    a, b = torch.tensor([1.0, 4.0, 9.0]), torch.tensor([4.0, 4.0, 1.0])
    expect = ((a.sqrt() - b.sqrt()) ** 2).sum().item()
    assert metrics.frechet_distance(mu1, torch.diag(a), mu1, torch.diag(b)) == pytest.approx(expect)
    # 1-D: (m1 - m2)^2 + (s1 - s2)^2
    d = metrics.frechet_distance(torch.tensor([1.0]), torch.tensor([[4.0]]), torch.tensor([-1.0]), torch.tensor([[1.0]]))
    assert d == pytest.approx(4.0 + 1.0)
    c = torch.from_numpy(_random_cov(5, np.random.default_rng(3)))
    assert metrics.frechet_distance(mu1[:1].expand(5), c, mu1[:1].expand(5), c) == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("rank", [None, 3])
def test_frechet_against_scipy_sqrtm(rank):
    rng = np.random.default_rng(1 if rank is None else 2)
    for _ in range(5):
        c1, c2 = _random_cov(8, rng, rank), _random_cov(8, rng)
        m1, m2 = rng.standard_normal(8), rng.standard_normal(8)
        covmean = scipy.linalg.sqrtm(c1 @ c2).real  # the usual FID code path
        expect = ((m1 - m2) ** 2).sum() + np.trace(c1) + np.trace(c2) - 2 * np.trace(covmean)
        got = metrics.frechet_distance(*(torch.from_numpy(v) for v in (m1, c1, m2, c2)))
        assert got == pytest.approx(expect, rel=1e-6, abs=1e-8)


def test_feature_frechet_distance():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(4000, 3, generator=g), torch.randn(4000, 3, generator=g) * 2 + 1
    mu, cov = metrics.feature_statistics(a)
    torch.testing.assert_close(cov, torch.from_numpy(np.cov(a.double().numpy(), rowvar=False)))
    assert metrics.feature_frechet_distance(a, a) == pytest.approx(0.0, abs=1e-9)
    assert metrics.feature_frechet_distance(a, b) == pytest.approx(3 * 1 + 3 * 1, rel=0.1)  # means 3, stds 3
    with pytest.raises(ValueError, match="at least 2 feature vectors"):
        metrics.feature_statistics(torch.zeros(1, 3))
    with pytest.raises(ValueError, match="need mu Tensor"):
        metrics.frechet_distance(torch.zeros(2), torch.eye(3), torch.zeros(2), torch.eye(2))


# --- models -------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [16, 32, 64])
def test_dcgan_shapes(size):
    gan = models.dcgan(latent_dim=8, width=8, size=size)
    x = gan.generator(torch.randn(3, 8))
    assert x.shape == (3, 3, size, size) and x.abs().max() <= 1
    assert gan.discriminator(x).shape == (3,)


def test_conditional_dcgan_and_toy_models():
    gan = models.dcgan(latent_dim=8, width=8, size=16, num_classes=4)
    y = torch.tensor([0, 1, 3])
    x = gan.generator(torch.randn(3, 8), y)
    assert x.shape == (3, 3, 16, 16) and gan.discriminator(x, y).shape == (3,)
    with pytest.raises(ValueError, match="needs labels"):
        gan.generator(torch.randn(3, 8))
    with pytest.raises(ValueError, match="size must be 4 times a power of two"):
        models.DCGANGenerator(size=24)
    toy = models.toy_gan(latent_dim=3, hidden=16, depth=2, spectral_norm=True)
    assert toy.generator(torch.randn(5, 3)).shape == (5, 2) and toy.discriminator(torch.randn(5, 2)).shape == (5,)
    w = toy.discriminator[0].weight  # spectral norm: the largest singular value is 1 (after a few power steps)
    for _ in range(20):
        toy.discriminator(torch.randn(5, 2))
    assert torch.linalg.matrix_norm(toy.discriminator[0].weight, ord=2).item() == pytest.approx(1.0, rel=0.05)
    assert w.shape == (16, 2)


# --- the step -----------------------------------------------------------------------------


def _opts(lr=1e-2):
    opt = functools.partial(torch.optim.Adam, lr=lr)
    return {"discriminator": opt, "generator": opt}


def test_wgan_gp_step_counts_critic_steps():
    torch.manual_seed(0)
    gan = models.toy_gan(hidden=8, depth=1)
    events = []
    step = GANStep(2, generator=torch.Generator().manual_seed(0), objective="wgan-gp", n_critic=3)
    batches = [torch.randn(12, 2) for _ in range(2)]

    class Opt(torch.optim.Adam):
        def step(self, closure=None):
            events.append(self.name)
            return super().step(closure)

    opts = {n: (lambda p, n=n: setattr(o := Opt(p, lr=1e-3), "name", n) or o) for n in ("discriminator", "generator")}
    history = fit(gan, batches, epochs=1, step=step, optimizer=opts, device="cpu", progress=False)
    assert events == (["discriminator"] * 3 + ["generator"]) * 2
    assert all(math.isfinite(v) for v in history["train_d_loss"] + history["train_g_loss"])
    with pytest.raises(ValueError, match="does not split into n_critic=3"):
        fit(gan, [torch.randn(10, 2)], epochs=1, step=step, optimizer=_opts(), device="cpu", progress=False)


def test_saturating_objective_is_the_minimax_term():
    torch.manual_seed(0)
    gan = models.toy_gan(hidden=8, depth=1)
    real = torch.randn(8, 2)
    ctx = type("Ctx", (), {"device": torch.device("cpu")})()
    for objective, expect in [("saturating", lambda l: -F.softplus(l).mean()),
                              ("nonsaturating", lambda l: F.softplus(-l).mean()),
                              ("wgan-gp", lambda l: -l.mean())]:
        step = GANStep(2, noise=lambda n, d: torch.ones(n, 2), objective=objective)
        out = step.loss(gan, real, ctx)
        logits = gan.discriminator(gan.generator(torch.ones(8, 2)))
        assert out.loss.item() == pytest.approx(expect(logits).item(), rel=1e-6)


def test_conditional_step_passes_labels():
    torch.manual_seed(0)
    seen = []

    class G(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(2, 2)

        def forward(self, z, y):
            seen.append(("G", y.tolist()))
            return self.lin(z) + y[:, None].float()

    class D(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(2, 1)

        def forward(self, x, y):
            seen.append(("D", y.tolist()))
            return self.lin(x).flatten() * (1 + y)

    gan = nn.ModuleDict(dict(generator=G(), discriminator=D()))
    batch = (torch.randn(4, 2), torch.tensor([0, 1, 2, 3]))
    fit(gan, [batch], epochs=1, step=GANStep(2, conditional=True, n_critic=2), optimizer=_opts(), device="cpu",
        progress=False)
    assert ("G", [0, 1]) in seen and ("G", [2, 3]) in seen and ("D", [2, 3]) in seen
    with pytest.raises(ValueError, match="needs \\(samples, labels\\) batches"):
        fit(gan, [torch.randn(4, 2)], epochs=1, step=GANStep(2, conditional=True), optimizer=_opts(),
            device="cpu", progress=False)


def test_bad_step_arguments():
    with pytest.raises(ValueError, match="objective must be one of"):
        GANStep(2, objective="hinge")
    with pytest.raises(ValueError, match="n_critic must be a positive int"):
        GANStep(2, n_critic=0)
    with pytest.raises(ValueError, match="gp_weight must be >= 0"):
        GANStep(2, gp_weight=-1.0)


# --- recipes ------------------------------------------------------------------------------


def test_train_toy_gan_is_reproducible_and_snapshots():
    def run():
        return recipes.train_toy_gan(data.ring_of_gaussians, steps=6, batch_size=16, hidden=8, depth=1, every=2,
                                     n_samples=10, grid=recipes.plane_grid(3.0, 5), objective="wgan-gp", n_critic=2)

    a, b = run(), run()
    assert [it for it, _ in a.snapshots] == [0, 2, 4, 6]
    samples, surface = a.snapshots[-1][1]
    assert samples.shape == (10, 2) and surface.shape == (25,)
    assert torch.equal(samples, b.snapshots[-1][1][0]) and len(a.log["g_loss"]) == 6
    with pytest.raises(ValueError, match="steps and batch_size must be >= 1"):
        recipes.train_toy_gan(data.ring_of_gaussians, steps=0)


def test_emoji_helpers(monkeypatch):
    from PIL import Image

    red = Image.new("RGBA", (4, 4), (255, 0, 0, 255))
    clear = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
    monkeypatch.setattr("d2lcv.recipes.gan_emoji._read_rgba", lambda cps, size, download: [red, clear][: len(cps)])
    x, cps = recipes.emoji_images(4, ["1f600", "1f44b_1f3fb"], background=1.0)
    assert x.shape == (2, 3, 4, 4) and cps == ["1f600", "1f44b_1f3fb"]
    assert x[0, 0].eq(1).all() and x[0, 1:].eq(-1).all() and x[1].eq(1).all()  # red; transparent -> white
    assert recipes.emoji_images(4, []).__getitem__(0).shape == (0, 3, 4, 4)
    assert recipes.emoji_base("1f44b_1f3fb") == "1f44b"
    with pytest.raises(ValueError, match="background must be in"):
        recipes.emoji_images(4, ["1f600"], background=2.0)


def test_precision_recall_knn():
    real = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    # k=1: each real ball has radius 1 (the nearest other real point)
    inside, outside = torch.tensor([[0.5, 0.5]]), torch.tensor([[5.0, 5.0]])
    assert metrics.precision_recall_knn(real, torch.cat([inside, outside]), k=1)[0] == 0.5
    p, r = metrics.precision_recall_knn(real, real, k=1)
    assert p == 1.0 and r == 1.0
    collapsed = torch.zeros(10, 2)  # all fakes on one real point: precise, but recall 1/4
    p, r = metrics.precision_recall_knn(real, collapsed, k=1)
    assert p == 1.0 and r == 0.25
    g = torch.Generator().manual_seed(0)
    a = torch.randn(300, 4, generator=g)
    far = torch.randn(300, 4, generator=g) + 10
    assert metrics.precision_recall_knn(a, far) == (0.0, 0.0)
    assert metrics.precision_recall_knn(a, a[:0]) == (0.0, 0.0)
    with pytest.raises(ValueError, match="need k >= 1"):
        metrics.precision_recall_knn(a, a, k=0)


@pytest.mark.skipif(not os.environ.get("D2LCV_MIRROR"), reason="D2LCV_MIRROR is not set (offline dataset mirror)")
def test_emoji_images_match_data_emoji():
    cps = ["1f600", "1f44b_1f3fb", "1f34c"]
    x, _ = recipes.emoji_images(24, cps, background=0.5)
    for img, im in zip(x, data.emoji(cps, size=24)):
        rgba = torch.frombuffer(bytearray(im.tobytes()), dtype=torch.uint8).view(24, 24, 4).permute(2, 0, 1) / 255
        expect = rgba[:3] * rgba[3:] + 0.5 * (1 - rgba[3:])
        torch.testing.assert_close(img, expect * 2 - 1)
    groups = recipes.emoji_groups(cps).tolist()
    assert [recipes.EMOJI_GROUPS[i] for i in groups] == ["faces", "people", "food"]
    train, held = recipes.split_by_base(["1f44b", "1f44b_1f3fb", "1f600", "1f34c", "1f34e"], 0.4, seed=0)
    assert sorted(train.tolist() + held.tolist()) == [0, 1, 2, 3, 4]
    assert (0 in held.tolist()) == (1 in held.tolist())  # variants stay together
