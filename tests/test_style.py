"""d2lcv style transfer (models.style, losses.style, recipes.style): Gram matrix against an explicit sum, losses zero at the target and positive
elsewhere, gradients to the image only, layer selection by name, clamped outputs, bad inputs."""

import pytest
import torch
import torch.nn.functional as F
import torchvision
from PIL import Image
from torch import nn

from d2lcv import losses, models, recipes, transforms


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _tiny_vgg(seed=0):
    """A VGG-shaped stack (2 blocks) small enough for fast tests."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
        nn.Conv2d(4, 8, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
    )


def _extractor(layers=("relu1_1", "relu1_2", "relu2_1"), **kwargs):
    return models.FeatureExtractor(_tiny_vgg(), layers, **kwargs)


class TestLayerNames:
    def test_vgg19_names(self):
        names = models.vgg_layer_names(torchvision.models.vgg19().features)
        assert len(names) == 37
        assert names[:5] == ["conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1"]
        assert names[-3:] == ["conv5_4", "relu5_4", "pool5"]
        assert {"relu4_2", *losses.STYLE_LAYERS} <= set(names)

    def test_rejects_other_layers(self):
        with pytest.raises(ValueError, match="BatchNorm2d"):
            models.vgg_layer_names(torchvision.models.vgg11_bn().features)


class TestFeatureExtractor:
    def test_returns_chosen_layers_by_name_matching_a_manual_pass(self):
        features = _tiny_vgg()
        ext = models.FeatureExtractor(features, ["relu2_1", "conv1_1"])
        x = torch.rand(2, 3, 8, 8, generator=_gen())
        out = ext(x)
        assert list(out) == ["conv1_1", "relu2_1"]  # in network order
        h = (x - ext.mean) / ext.std
        conv1_1 = features[0](h)
        torch.testing.assert_close(out["conv1_1"], conv1_1)  # not clobbered by an in-place ReLU
        manual = features[6](features[5](features[4](F.relu(features[2](F.relu(conv1_1))))))
        torch.testing.assert_close(out["relu2_1"], manual)
        assert out["relu2_1"].shape == (2, 8, 4, 4)

    def test_cut_after_the_deepest_layer_and_frozen(self):
        ext = _extractor(["relu1_2"])
        assert list(ext.body._modules) == ["conv1_1", "relu1_1", "conv1_2", "relu1_2"]
        assert not any(p.requires_grad for p in ext.parameters())

    def test_average_pooling(self):
        ext = _extractor(["relu1_2", "relu2_1"], pool="avg")
        x = torch.rand(2, 3, 8, 8)
        out = ext(x)
        conv2_1 = ext.body.conv2_1
        expected = F.relu(conv2_1(F.avg_pool2d(out["relu1_2"], 2)))  # pool1 averages, not max
        torch.testing.assert_close(out["relu2_1"], expected)
        assert not torch.allclose(expected, F.relu(conv2_1(F.max_pool2d(out["relu1_2"], 2))))

    def test_missing_layer(self):
        with pytest.raises(ValueError, match=r"unknown layer\(s\) \['relu9_1'\]"):
            _extractor(["relu1_1", "relu9_1"])
        with pytest.raises(ValueError, match="layers is empty"):
            _extractor([])

    def test_bad_input(self):
        with pytest.raises(ValueError, match=r"\[B, 3, H, W\]"):
            _extractor()(torch.rand(3, 8, 8))

    def test_normalize_filters_sets_mean_activations_to_one(self):
        ext = _extractor(["relu2_1"])
        images = torch.rand(3, 3, 8, 8, generator=_gen())
        models.normalize_filters_(ext, images)
        with torch.no_grad():
            out = ext(images)
        torch.testing.assert_close(out["relu2_1"].mean(dim=(0, 2, 3)), torch.ones(8))
        ext = _extractor(["relu1_2"])
        models.normalize_filters_(ext, images, per="layer")
        with torch.no_grad():
            torch.testing.assert_close(ext(images)["relu1_2"].mean(), torch.tensor(1.0))
        with pytest.raises(ValueError, match="per must be"):
            models.normalize_filters_(ext, images, per="channel")

    @pytest.mark.parametrize("per", ["filter", "layer"])
    def test_normalize_filters_keeps_the_pattern_of_activity(self, per):
        # every layer's activations are the original ones times a positive factor per channel
        layers = ["relu1_1", "relu1_2", "relu2_1"]
        ext = _extractor(layers)
        images = torch.rand(3, 3, 8, 8, generator=_gen(1))
        probe = torch.rand(2, 3, 8, 8, generator=_gen(2))  # images it was not fitted on
        with torch.no_grad():
            before = ext(probe)
            models.normalize_filters_(ext, images, per=per)
            after = ext(probe)
        for name in layers:
            b, a = before[name].transpose(0, 1).flatten(1), after[name].transpose(0, 1).flatten(1)
            alive = b.abs().sum(1) > 0
            ratio = a[alive].sum(1) / b[alive].sum(1)  # [C] one factor per channel
            assert (ratio > 0).all()
            torch.testing.assert_close(a[alive], b[alive] * ratio[:, None], rtol=1e-4, atol=1e-5)


class TestGramMatrix:
    def test_against_an_explicit_sum(self):
        x = torch.randn(2, 3, 4, 5, generator=_gen(), dtype=torch.float64)
        G = losses.gram_matrix(x)
        expected = torch.zeros(2, 3, 3, dtype=torch.float64)
        for b in range(2):
            for i in range(3):
                for j in range(3):
                    expected[b, i, j] = sum(x[b, i, h, w] * x[b, j, h, w] for h in range(4) for w in range(5))
        torch.testing.assert_close(G, expected)
        torch.testing.assert_close(G, G.transpose(1, 2))  # symmetric

    def test_hand_worked(self):
        # one 1x2 map per channel: F = [[1, 2], [3, 4]] -> F F^T = [[5, 11], [11, 25]]
        x = torch.tensor([[[[1.0, 2.0]], [[3.0, 4.0]]]])
        torch.testing.assert_close(losses.gram_matrix(x), torch.tensor([[[5.0, 11.0], [11.0, 25.0]]]))

    def test_bad_shape(self):
        with pytest.raises(ValueError, match=r"\[B, C, H, W\]"):
            losses.gram_matrix(torch.rand(3, 4, 4))


class TestLosses:
    def test_content_loss_zero_at_target_positive_elsewhere(self):
        P = torch.rand(1, 4, 3, 3, generator=_gen())
        assert losses.content_loss(P, P) == 0
        Fx = P.clone()
        Fx[0, 0, 0, 0] += 2.0
        torch.testing.assert_close(losses.content_loss(Fx, P), torch.tensor(2.0))  # 1/2 * 2^2

    def test_content_loss_size_mismatch(self):
        with pytest.raises(ValueError, match="same image size"):
            losses.content_loss(torch.rand(1, 4, 3, 3), torch.rand(1, 4, 3, 4))

    def test_style_loss_formula_zero_at_target_positive_elsewhere(self):
        f = torch.rand(1, 4, 3, 5, generator=_gen(), dtype=torch.float64)
        A = losses.gram_matrix(f, normalize=True)[0]
        assert losses.style_loss({"l": f}, {"l": A}) == 0
        g = f + 0.1 * torch.rand(f.shape, generator=_gen(1), dtype=torch.float64)
        N, M = 4, 15  # Gatys et al.'s formula, for images of one size
        expected = ((losses.gram_matrix(g)[0] - losses.gram_matrix(f)[0]) ** 2).sum() / (4 * N**2 * M**2)
        torch.testing.assert_close(losses.style_loss({"l": g}, {"l": A}), expected)
        assert expected > 0

    def test_style_loss_ignores_positions(self):
        # a Gram matrix sums over positions: a spatially shuffled image has the same style
        f = torch.rand(1, 4, 3, 5, generator=_gen())
        perm = torch.randperm(15, generator=_gen())
        shuffled = f.flatten(2)[:, :, perm].view_as(f)
        A = losses.gram_matrix(f, normalize=True)[0]
        torch.testing.assert_close(losses.style_loss({"l": shuffled}, {"l": A}), torch.tensor(0.0), atol=1e-6, rtol=0)

    def test_style_loss_compares_images_of_different_sizes(self):
        # a texture tiled 2 x 2 has 4 times the positions and the same Gram matrix per position
        f = torch.rand(1, 4, 3, 5, generator=_gen(), dtype=torch.float64)
        tiled = f.repeat(1, 1, 2, 2)
        A = losses.gram_matrix(tiled, normalize=True)[0]
        torch.testing.assert_close(losses.gram_matrix(tiled)[0], 4 * losses.gram_matrix(f)[0])
        torch.testing.assert_close(losses.style_loss({"l": f}, {"l": A}), torch.tensor(0.0, dtype=torch.float64))

    def test_style_loss_layer_weights(self):
        f1, f2 = torch.rand(1, 2, 3, 3, generator=_gen()), torch.rand(1, 3, 2, 2, generator=_gen(1))
        targets = {"a": torch.zeros(2, 2), "b": torch.zeros(3, 3)}
        ea = losses.style_loss({"a": f1}, {"a": targets["a"]})
        eb = losses.style_loss({"b": f2}, {"b": targets["b"]})
        both = losses.style_loss({"a": f1, "b": f2}, targets, {"a": 0.25, "b": 2.0})
        torch.testing.assert_close(both, 0.25 * ea + 2.0 * eb)
        torch.testing.assert_close(losses.style_loss({"a": f1, "b": f2}, targets), (ea + eb) / 2)

    def test_style_loss_bad_inputs(self):
        f = torch.rand(1, 4, 3, 3)
        with pytest.raises(ValueError, match=r"must be \[4, 4\] for 4 channels"):
            losses.style_loss({"l": f}, {"l": torch.zeros(3, 3)})
        with pytest.raises(ValueError, match="no features for style layer"):
            losses.style_loss({"l": f}, {"m": torch.zeros(4, 4)})
        with pytest.raises(ValueError, match="weights must name"):
            losses.style_loss({"l": f}, {"l": torch.zeros(4, 4)}, {"m": 1.0})
        with pytest.raises(ValueError, match="empty"):
            losses.style_loss({"l": f}, {})

    def test_tv_loss(self):
        assert losses.tv_loss(torch.full((2, 3, 5, 5), 0.3)) == 0
        x = torch.zeros(1, 1, 2, 2)
        x[0, 0, 0, 0] = 1.0  # two neighbours differ by 1
        torch.testing.assert_close(losses.tv_loss(x), torch.tensor(2.0))
        with pytest.raises(ValueError, match="images"):
            losses.tv_loss(torch.rand(5, 5))

    def test_perceptual_loss_parts(self):
        ext = _extractor(["relu1_1", "relu2_1"])
        x = torch.rand(1, 3, 8, 8, generator=_gen())
        feats = ext(x)
        grams = {"relu1_1": losses.gram_matrix(feats["relu1_1"], normalize=True)[0]}
        total, parts = losses.perceptual_loss(x, feats, feats["relu2_1"], grams, content_layer="relu2_1", tv_weight=0.5)
        assert parts["content"] == 0 and parts["style"] == 0
        assert parts["tv"] == pytest.approx(0.5 * losses.tv_loss(x).item())
        assert total.item() == pytest.approx(parts["total"])
        with pytest.raises(ValueError, match="content layer 'relu4_2'"):
            losses.perceptual_loss(x, feats, feats["relu2_1"], grams)


    def test_perceptual_loss_content_at_several_layers(self):
        ext = _extractor(["relu1_1", "relu1_2", "relu2_1"])
        x, y = torch.rand(2, 1, 3, 8, 8, generator=_gen())
        fx, fy = ext(x), ext(y)
        grams = {"relu1_1": losses.gram_matrix(fy["relu1_1"], normalize=True)[0]}
        weights = {"relu2_1": 1.0, "relu1_2": 0.25}
        targets = {name: fy[name] for name in weights}
        _, parts = losses.perceptual_loss(x, fx, targets, grams, content_layer=weights, alpha=2.0)
        expected = 2.0 * (losses.content_loss(fx["relu2_1"], fy["relu2_1"])
                          + 0.25 * losses.content_loss(fx["relu1_2"], fy["relu1_2"]))
        assert parts["content"] == pytest.approx(expected.item(), rel=1e-6)
        one = losses.perceptual_loss(x, fx, fy["relu2_1"], grams, content_layer="relu2_1")[1]
        assert losses.perceptual_loss(x, fx, {"relu2_1": fy["relu2_1"]}, grams,
                                      content_layer={"relu2_1": 1.0})[1] == pytest.approx(one)
        with pytest.raises(ValueError, match="content_target must map"):
            losses.perceptual_loss(x, fx, fy["relu2_1"], grams, content_layer=weights)
        with pytest.raises(ValueError, match="content layers"):
            losses.perceptual_loss(x, fx, targets, grams, content_layer={"relu3_1": 1.0})
        with pytest.raises(ValueError, match="content layers"):
            losses.perceptual_loss(x, fx, {}, grams, content_layer={})


class TestStylize:
    def _images(self):
        return torch.rand(3, 8, 12, generator=_gen()), torch.rand(3, 16, 16, generator=_gen(1))

    @pytest.mark.parametrize("optimizer", ["adam", "lbfgs"])
    def test_lowers_the_loss_and_clamps(self, optimizer):
        ext = _extractor()
        content, style_img = self._images()
        r = recipes.stylize(ext, content, style_img, content_layer="relu2_1", style_layers=["relu1_1", "relu1_2"],
                          beta=1e4, steps=15, optimizer=optimizer, lr=0.05 if optimizer == "adam" else None,
                          progress=False)
        assert r.image.shape == content.shape
        assert r.image.min() >= 0 and r.image.max() <= 1
        h = r.history
        assert len(h["total"]) == 15 and h["content"][0] == 0  # starts at the content image
        assert min(h["total"][1:]) < h["total"][0]
        assert all(e >= 1 for e in h["evals"])
        assert [s for s, _ in r.snapshots] == [0, 15]

    def test_gradients_flow_to_the_image_only(self):
        ext = _extractor()
        x = torch.rand(1, 3, 8, 8, generator=_gen(), requires_grad=True)
        feats = ext(x)
        grams = {"relu1_1": losses.gram_matrix(feats["relu1_1"], normalize=True).detach()[0] * 2}
        total, _ = losses.perceptual_loss(x, feats, feats["relu2_1"].detach() + 1, grams, content_layer="relu2_1")
        total.backward()
        assert x.grad is not None and x.grad.abs().sum() > 0
        assert all(p.grad is None for p in ext.parameters())

    def test_network_unchanged_by_stylize(self):
        ext = _extractor()
        before = [p.clone() for p in ext.parameters()]
        content, style_img = self._images()
        recipes.stylize(ext, content, style_img, content_layer="relu2_1", style_layers=["relu1_1"], steps=3,
                      optimizer="adam", progress=False)
        assert all(torch.equal(a, b) for a, b in zip(before, ext.parameters()))

    def test_noise_init_is_seeded(self):
        ext = _extractor()
        content, style_img = self._images()
        kw = dict(content_layer="relu2_1", style_layers=["relu1_1"], steps=2, optimizer="adam", init="noise",
                  snapshot_every=1, progress=False)
        a = recipes.stylize(ext, content, style_img, generator=_gen(3), **kw)
        b = recipes.stylize(ext, content, style_img, generator=_gen(3), **kw)
        torch.testing.assert_close(a.image, b.image)
        assert [s for s, _ in a.snapshots] == [0, 1, 2]
        assert a.history["content"][0] > 0  # noise is far from the content

    def test_content_at_several_layers(self):
        ext = _extractor()
        content, style_img = self._images()
        kw = dict(style_layers=["relu1_1"], beta=1e4, steps=4, optimizer="adam", progress=False)
        one = recipes.stylize(ext, content, style_img, content_layer="relu2_1", **kw)
        same = recipes.stylize(ext, content, style_img, content_layer={"relu2_1": 1.0}, **kw)
        torch.testing.assert_close(one.image, same.image)  # a one-layer mapping is the old default
        assert one.history == same.history
        two = recipes.stylize(ext, content, style_img, content_layer={"relu2_1": 1.0, "relu1_1": 0.5}, **kw)
        assert two.history["content"][0] == 0 and not torch.equal(two.image, one.image)
        with pytest.raises(ValueError, match="empty mapping"):
            recipes.stylize(ext, content, style_img, content_layer={}, **kw)
        with pytest.raises(ValueError, match=r"does not return layer\(s\) \['relu3_1'\]"):
            recipes.stylize(ext, content, style_img, content_layer={"relu3_1": 1.0}, **kw)
        net = models.TransformNet(width=4, n_residual=1)
        h = recipes.train_transform_net(net, ext, style_img, torch.rand(4, 3, 8, 8, generator=_gen()), steps=2,
                                        content_layer={"relu2_1": 1.0, "relu1_2": 0.1}, style_layers=["relu1_1"],
                                        progress=False)
        assert len(h["content"]) == 2

    def test_bad_inputs(self):
        ext = _extractor()
        content, style_img = self._images()
        with pytest.raises(ValueError, match=r"does not return layer\(s\) \['relu4_2'\]"):
            recipes.stylize(ext, content, style_img, style_layers=["relu1_1"], steps=1)
        kw = dict(content_layer="relu2_1", style_layers=["relu1_1"], steps=1, progress=False)
        with pytest.raises(ValueError, match="init must have the content image's shape"):
            recipes.stylize(ext, content, style_img, init=torch.rand(3, 8, 8), **kw)
        with pytest.raises(ValueError, match="init must be"):
            recipes.stylize(ext, content, style_img, init="zeros", **kw)
        with pytest.raises(ValueError, match="optimizer must be"):
            recipes.stylize(ext, content, style_img, optimizer="sgd", **kw)
        with pytest.raises(ValueError, match="content must be one RGB image"):
            recipes.stylize(ext, torch.rand(2, 3, 8, 8), style_img, **kw)


class TestTransformNet:
    def test_shapes_range_and_instance_norm(self):
        net = models.TransformNet(width=4, n_residual=2)
        x = torch.rand(2, 3, 16, 20, generator=_gen())
        y = net(x)
        assert y.shape == x.shape and y.min() >= 0 and y.max() <= 1
        assert sum(isinstance(m, nn.InstanceNorm2d) for m in net.modules()) == 3 + 2 * 2 + 2
        assert not any(isinstance(m, nn.BatchNorm2d) for m in net.modules())

    def test_untrained_network_is_the_identity(self):
        x = torch.rand(2, 3, 8, 12, generator=_gen()).clamp(0.01, 0.99)
        torch.testing.assert_close(models.TransformNet(width=4, n_residual=1)(x), x)

    def test_non_residual_output_is_sigmoid_of_the_last_convolution(self):
        torch.manual_seed(0)
        net = models.TransformNet(width=4, n_residual=1, residual=False)
        x = torch.rand(2, 3, 8, 12, generator=_gen())
        last = net.up[-1][-1]
        assert last.weight.abs().sum() > 0  # not zero-initialised: not the identity
        with torch.no_grad():
            torch.testing.assert_close(net(x), torch.sigmoid(net.up(net.res(net.down(x)))))
        assert not torch.allclose(net(x), x, atol=1e-2)
        same = models.TransformNet(width=4, n_residual=1, residual=False)
        assert sum(p.numel() for p in same.parameters()) == sum(
            p.numel() for p in models.TransformNet(width=4, n_residual=1).parameters())

    def test_johnson_size(self):
        n = sum(p.numel() for p in models.TransformNet().parameters())
        assert 1.6e6 < n < 1.8e6

    def test_instance_norm_makes_images_independent_of_the_batch(self):
        net = models.TransformNet(width=4, n_residual=1).train()
        x = torch.rand(3, 3, 8, 8, generator=_gen())
        torch.testing.assert_close(net(x)[:1], net(x[:1]))

    def test_bad_inputs(self):
        with pytest.raises(ValueError, match="multiples of 4"):
            models.TransformNet(width=4)(torch.rand(1, 3, 10, 12))
        with pytest.raises(ValueError, match="width must be"):
            models.TransformNet(width=0)

    def test_training_lowers_the_style_loss(self):
        torch.manual_seed(0)
        ext = _extractor()
        net = models.TransformNet(width=4, n_residual=1)
        images = torch.rand(8, 3, 8, 8, generator=_gen())
        style_img = torch.rand(3, 8, 8, generator=_gen(1)) * torch.tensor([1.0, 0.2, 0.2]).view(3, 1, 1)  # reddish
        h = recipes.train_transform_net(net, ext, style_img, images, steps=40, batch_size=4, lr=1e-2,
                                      content_layer="relu2_1", style_layers=["relu1_1"], beta=1e4,
                                      generator=_gen(2), progress=False)
        assert len(h["total"]) == 40
        assert sum(h["total"][-5:]) < sum(h["total"][:5])
        assert not net.training

    def test_training_bad_inputs(self):
        ext, net = _extractor(), models.TransformNet(width=4, n_residual=1)
        with pytest.raises(ValueError, match="non-empty batch"):
            recipes.train_transform_net(net, ext, torch.rand(3, 8, 8), torch.rand(0, 3, 8, 8), steps=1,
                                      content_layer="relu2_1", style_layers=["relu1_1"])
        with pytest.raises(ValueError, match="does not return"):
            recipes.train_transform_net(net, ext, torch.rand(3, 8, 8), torch.rand(2, 3, 8, 8), steps=1)


class TestImageTensor:
    def test_shorter_side_and_multiple_of_four(self):
        img = Image.new("RGB", (300, 200), (255, 0, 0))
        x = transforms.image_tensor(img, 64)
        assert x.shape == (3, 64, 96) and x.dtype == torch.float32
        torch.testing.assert_close(x[0].mean(), torch.tensor(1.0))
        assert transforms.image_tensor(img, (20, 24)).shape == (3, 20, 24)
        with pytest.raises(ValueError, match="at least 4"):
            transforms.image_tensor(img, 2)


class TestStyleNetwork:
    @staticmethod
    def _vgg(weights):
        torch.manual_seed(0)
        layers, c_in = [], 3
        for block, convs in enumerate((1, 1, 1, 2), start=1):  # up to relu4_2, Gatys' content layer
            for _ in range(convs):
                layers += [nn.Conv2d(c_in, 4 * block, 3, padding=1), nn.ReLU(inplace=True)]
                c_in = 4 * block
            layers.append(nn.MaxPool2d(2))
        vgg = nn.Module()
        vgg.features = nn.Sequential(*layers)
        vgg.d2lcv_weights = weights
        return vgg

    def test_random_weights_get_per_layer_scaling_and_four_style_layers(self):
        calibration = torch.rand(2, 3, 32, 32, generator=_gen())
        net = recipes.style_network(calibration, vgg=self._vgg("fallback: random weights"))
        assert not net.pretrained and net.style_layers == recipes.RANDOM_STYLE_LAYERS
        assert net.content_layer == "relu4_2" and net.description == "fallback: random weights"
        with torch.no_grad():
            feats = net.extractor(calibration)
        for name in ("relu1_1", "relu4_2"):  # per layer: the layer's mean activation is 1
            assert feats[name].mean().item() == pytest.approx(1.0, rel=1e-4)
        assert isinstance(net.extractor.body.pool1, nn.AvgPool2d)

    def test_pretrained_weights_get_per_filter_scaling(self):
        calibration = torch.rand(2, 3, 32, 32, generator=_gen())
        vgg = self._vgg("torchvision VGG19_Weights.IMAGENET1K_V1")
        with pytest.raises(ValueError, match="relu5_1"):  # Gatys' five layers: this VGG is too short
            recipes.style_network(calibration, vgg=vgg)
