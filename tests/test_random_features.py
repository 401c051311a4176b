"""Tests for d2lcv.models.random_features: the random multi-scale style network."""

import pytest
import torch
import torch.nn.functional as F

from d2lcv import losses, metrics, models, recipes


def _images(b=2, h=40, w=48, seed=0):
    return torch.rand(b, 3, h, w, generator=torch.Generator().manual_seed(seed))


def test_blur_downsample_shapes_and_constants():
    x = torch.full((2, 3, 9, 8), 0.3)
    y = models.blur_downsample(x)
    assert y.shape == (2, 3, 5, 4)  # ceil(9/2), ceil(8/2)
    torch.testing.assert_close(y, torch.full_like(y, 0.3))  # the kernel sums to 1


def test_blur_downsample_matches_separable_reference():
    x = _images(1, 12, 10)
    k = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16
    padded = F.pad(x, (2, 2, 2, 2), mode="reflect")
    rows = F.conv2d(padded, k.view(1, 1, 1, 5).expand(3, 1, 1, 5), groups=3)
    both = F.conv2d(rows, k.view(1, 1, 5, 1).expand(3, 1, 5, 1), groups=3)
    torch.testing.assert_close(models.blur_downsample(x), both[..., ::2, ::2])


def test_blur_downsample_bad_input():
    with pytest.raises(ValueError, match=r"H, W >= 3"):
        models.blur_downsample(torch.zeros(1, 3, 2, 8))
    with pytest.raises(ValueError, match=r"\[B, C, H, W\]"):
        models.blur_downsample(torch.zeros(3, 8, 8))


def test_layers_and_shapes():
    net = models.RandomPyramidFeatures(levels=3, width=7, kernel=3)
    assert net.layers == ("rgb", "scale1", "scale2", "scale4")
    out = net(_images(2, 33, 40))
    assert list(out) == list(net.layers)
    shapes = {name: tuple(f.shape) for name, f in out.items()}
    assert shapes == {"rgb": (2, 3, 33, 40), "scale1": (2, 7, 33, 40),
                      "scale2": (2, 7, 17, 20), "scale4": (2, 7, 9, 10)}


def test_seed_determines_the_filters():
    a, b = models.RandomPyramidFeatures(seed=3), models.RandomPyramidFeatures(seed=3)
    c = models.RandomPyramidFeatures(seed=4)
    torch.testing.assert_close(a.weight, b.weight)
    assert not torch.equal(a.weight, c.weight)
    x = _images()
    for name, f in a(x).items():
        torch.testing.assert_close(f, b(x)[name])


def test_filters_are_zero_mean_so_flat_colour_gives_no_response():
    net = models.RandomPyramidFeatures(levels=3, width=16, center=False)
    torch.testing.assert_close(net.weight.sum(dim=(3, 4)), torch.zeros(3, 16, 3),
                               atol=1e-5, rtol=0)
    flat = torch.ones(1, 3, 32, 32) * torch.tensor([0.2, 0.5, 0.9]).view(1, 3, 1, 1)
    for name, f in net(flat).items():
        if name != "rgb":
            assert f.abs().max() < 1e-5, name


def test_calibrate_sets_mean_activation_to_one_per_level():
    net = models.RandomPyramidFeatures(levels=3, width=16, center=False)
    images = _images()
    assert net.calibrate_(images) is net
    for name, f in net(images).items():
        if name != "rgb":
            assert abs(f.mean().item() - 1) < 1e-4, name


def test_center_makes_gram_a_covariance():
    images = _images(1)
    raw = models.RandomPyramidFeatures(levels=2, width=8, center=False)(images)
    cen = models.RandomPyramidFeatures(levels=2, width=8, center=True)(images)
    torch.testing.assert_close(cen["rgb"], raw["rgb"])  # colour is not centred
    f = raw["scale2"].flatten(2)[0]  # [C, M]
    cov = torch.cov(f, correction=0)
    torch.testing.assert_close(losses.gram_matrix(cen["scale2"], normalize=True)[0], cov,
                               atol=1e-5, rtol=1e-4)


def test_gradients_reach_the_pixels_not_the_filters():
    net = models.RandomPyramidFeatures(levels=2, width=4)
    x = _images(1, 16, 16).requires_grad_()
    sum(f.pow(2).sum() for f in net(x).values()).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert not list(net.parameters())  # filters are buffers: nothing to train


def test_drop_in_for_stylize():
    net = models.RandomPyramidFeatures(levels=2, width=8).calibrate_(_images())
    content, style = _images(1, 32, 32, seed=1)[0], _images(1, 40, 48, seed=2)[0]
    result = recipes.stylize(net, content, style, content_layer="scale2",
                             style_layers=net.layers, beta=1e4, steps=3, optimizer="adam",
                             progress=False)
    assert result.image.shape == (3, 32, 32)
    assert result.history["style"][-1] < result.history["style"][0]


@pytest.mark.parametrize("kwargs", [dict(levels=0), dict(levels=7), dict(width=0),
                                    dict(kernel=4), dict(kernel=0)])
def test_bad_arguments(kwargs):
    with pytest.raises(ValueError, match="levels"):
        models.RandomPyramidFeatures(**kwargs)


def test_bad_images():
    net = models.RandomPyramidFeatures(levels=4)
    assert net.min_size == 32
    with pytest.raises(ValueError, match=r"H, W >= 32"):
        net(torch.zeros(1, 3, 31, 64))
    with pytest.raises(ValueError, match=r"\[B, 3, H, W\]"):
        net(torch.zeros(3, 64, 64))
    with pytest.raises(ValueError, match=r"\[B, 3, H, W\]"):
        net.calibrate_(torch.zeros(1, 1, 64, 64))


# the network-independent texture statistics the style page measures with


def test_orientation_energy_hand_worked():
    x = torch.zeros(1, 3, 8, 8)
    x[..., 4:] = 1.0  # a vertical edge: the luminance steps by 1 along x
    e = metrics.orientation_energy(x, scales=(1,), bins=4)
    # 7 of the 7x7 gradient positions sit on the step, each with magnitude 1, angle 0
    torch.testing.assert_close(e, torch.tensor([[7 / 49, 0.0, 0.0, 0.0]]))
    xt = x.transpose(2, 3)  # a horizontal edge: angle pi/2, bin 2 of 4
    torch.testing.assert_close(metrics.orientation_energy(xt, scales=(1,), bins=4),
                               torch.tensor([[0.0, 0.0, 7 / 49, 0.0]]))
    assert metrics.orientation_energy(torch.full((2, 3, 9, 9), 0.5)).abs().max() == 0
    assert metrics.orientation_energy(torch.rand(2, 3, 20, 24)).shape == (2, 24)


def test_colour_histogram_matches_histogramdd():
    x = torch.rand(2, 3, 10, 12, generator=torch.Generator().manual_seed(0))
    h = metrics.colour_histogram(x, bins=4)
    assert h.shape == (2, 64)
    torch.testing.assert_close(h.sum(1), torch.ones(2))
    ref = torch.histogramdd(x[1].flatten(1).T, bins=[4, 4, 4], range=[0.0, 1.0] * 3)
    torch.testing.assert_close(h[1], ref.hist.flatten() / 120)
    red = torch.zeros(1, 3, 4, 4)
    red[:, 0] = 1.0
    assert metrics.colour_histogram(red, bins=2)[0, 4] == 1.0  # (1, 0, 0) -> bin 4


def test_texture_statistics_bad_input():
    with pytest.raises(ValueError, match="max\\(scales\\)"):
        metrics.orientation_energy(torch.zeros(1, 3, 4, 4), scales=(4,))
    with pytest.raises(ValueError, match="bins"):
        metrics.orientation_energy(torch.zeros(1, 3, 8, 8), bins=0)
    with pytest.raises(ValueError, match=r"\[B, 3, H, W\]"):
        metrics.colour_histogram(torch.zeros(3, 4, 4))


def test_image_distances():
    x = torch.rand(3, 20, 24, generator=torch.Generator().manual_seed(0))
    assert metrics.edge_distance(x, x) == 0 and metrics.colour_distance(x, x) == 0
    flat = torch.full((3, 16, 16), 0.2)
    # no edges at all: every bin is 1e-6 against x's energies
    ref = (metrics.orientation_energy(x[None]) + 1e-6).log() - torch.tensor(1e-6).log()
    assert metrics.edge_distance(x, flat) == pytest.approx(ref.abs().mean().item(), rel=1e-5)
    black, white = torch.zeros(3, 8, 8), torch.ones(3, 4, 4)  # disjoint palettes, any sizes
    assert metrics.colour_distance(black, white) == 1.0
    half = torch.cat([black, torch.ones(3, 8, 8)], dim=2)
    assert metrics.colour_distance(black, half) == pytest.approx(0.5)
    with pytest.raises(ValueError, match=r"one RGB image \[3, H, W\]"):
        metrics.edge_distance(x[None], x)
