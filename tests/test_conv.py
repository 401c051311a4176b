"""d2lcv.ops.conv against torch.nn.functional: hand-worked cases, parity, properties, bad inputs."""

import pytest
import torch
import torch.nn.functional as F

from d2lcv import ops


def _randn(*shape, seed=0, dtype=torch.float32):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


class TestCorr2d:
    def test_hand_worked(self):
        # top-left: 0*0 + 1*1 + 3*2 + 4*3 = 19
        X = torch.arange(9.0).reshape(3, 3)
        K = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
        assert torch.equal(ops.corr2d(X, K), torch.tensor([[19.0, 25.0], [37.0, 43.0]]))

    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
    def test_matches_conv2d(self, dtype):
        X, K = _randn(7, 6, dtype=dtype), _randn(3, 2, seed=1, dtype=dtype)
        torch.testing.assert_close(ops.corr2d(X, K), F.conv2d(X[None, None], K[None, None])[0, 0])

    def test_kernel_equal_to_input_gives_one_value(self):
        X = _randn(4, 4)
        assert ops.corr2d(X, X).shape == (1, 1)

    def test_bad_inputs(self):
        with pytest.raises(ValueError, match=r"2-D X and K, got X \(1, 3, 3\)"):
            ops.corr2d(torch.zeros(1, 3, 3), torch.zeros(2, 2))
        with pytest.raises(ValueError, match="larger than the input"):
            ops.corr2d(torch.zeros(2, 2), torch.zeros(3, 3))


class TestConvOutputSize:
    @pytest.mark.parametrize(
        "size,k,s,p,d,expected",
        [
            (224, 11, 4, 2, 1, 55),  # AlexNet conv1 (torchvision)
            (227, 11, 4, 0, 1, 55),  # AlexNet conv1 (paper's 227 input)
            (224, 11, 4, 0, 1, 54),
            (55, 3, 2, 0, 1, 27),  # AlexNet max-pool
            (32, 3, 1, 1, 1, 32),  # "same" convolution
            (28, 4, 3, 1, 1, 9),
            (10, 3, 1, 0, 2, 6),  # dilation 2: span 5
        ],
    )
    def test_cases(self, size, k, s, p, d, expected):
        assert ops.conv_output_size(size, k, s, p, d) == expected

    def test_matches_torch_over_a_grid(self):
        for size in (5, 8, 13):
            for k in (1, 2, 3, 5):
                for s in (1, 2, 3):
                    for p in (0, 1, 2):
                        if k > size + 2 * p:
                            continue
                        y = F.conv2d(torch.zeros(1, 1, size, size), torch.zeros(1, 1, k, k), stride=s, padding=p)
                        assert ops.conv_output_size(size, k, s, p) == y.shape[-1]

    def test_bad_inputs(self):
        with pytest.raises(ValueError, match="stride must be an int >= 1, got 0"):
            ops.conv_output_size(10, 3, stride=0)
        with pytest.raises(ValueError, match="padding must be an int >= 0, got -1"):
            ops.conv_output_size(10, 3, padding=-1)
        with pytest.raises(ValueError, match="does not fit an input of 4"):
            ops.conv_output_size(4, 7)


CONFIGS = [
    dict(kernel_size=3, stride=1, padding=0),
    dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=(3, 5), stride=(2, 1), padding=(1, 2)),
    dict(kernel_size=1, stride=1, padding=0),
    dict(kernel_size=(2, 2), stride=3, padding=0),  # windows skip pixels
]


class TestIm2col:
    @pytest.mark.parametrize("cfg", CONFIGS)
    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
    def test_equals_unfold(self, cfg, dtype):
        x = _randn(2, 3, 9, 8, dtype=dtype)
        assert torch.equal(ops.im2col(x, **cfg), F.unfold(x, **cfg))

    @pytest.mark.parametrize("cfg", CONFIGS)
    def test_col2im_equals_fold(self, cfg):
        x = _randn(2, 3, 9, 8)
        cols = F.unfold(x, **cfg)
        torch.testing.assert_close(ops.col2im(cols, (9, 8), **cfg), F.fold(cols, (9, 8), **cfg))

    def test_col2im_is_the_adjoint(self):
        # <im2col(x), c> == <x, col2im(c)>: col2im is the transpose of the linear map im2col
        x, c = _randn(2, 3, 8, 8, dtype=torch.float64), _randn(2, 27, 36, seed=1, dtype=torch.float64)
        lhs = (ops.im2col(x, 3) * c).sum()
        rhs = (x * ops.col2im(c, (8, 8), 3)).sum()
        torch.testing.assert_close(lhs, rhs)

    def test_hand_worked(self):
        x = torch.arange(1.0, 17.0).reshape(1, 1, 4, 4)
        cols = ops.im2col(x, 3)[0]
        assert cols.shape == (9, 4)
        assert cols[:, 0].tolist() == [1, 2, 3, 5, 6, 7, 9, 10, 11]  # top-left window
        assert cols[:, 3].tolist() == [6, 7, 8, 10, 11, 12, 14, 15, 16]  # bottom-right window

    def test_gradient_flows(self):
        x = _randn(1, 2, 5, 5).requires_grad_()
        ops.im2col(x, 3, padding=1).sum().backward()
        # each pixel's gradient is the number of windows covering it
        ones = torch.ones(1, 2, 5, 5)
        torch.testing.assert_close(x.grad, F.fold(F.unfold(ones, 3, padding=1), (5, 5), 3, padding=1))

    def test_bad_inputs(self):
        with pytest.raises(ValueError, match=r"shape \[B, C, H, W\], got \(3, 9, 8\)"):
            ops.im2col(torch.zeros(3, 9, 8), 3)
        with pytest.raises(ValueError, match="kernel_size must be an int >= 1"):
            ops.im2col(torch.zeros(1, 1, 4, 4), 0)
        with pytest.raises(ValueError, match=r"do not fit a 3x3 kernel"):
            ops.col2im(torch.zeros(1, 10, 4), (4, 4), 3)


class TestConv2dIm2col:
    @pytest.mark.parametrize("cfg", CONFIGS)
    @pytest.mark.parametrize("bias", [True, False])
    def test_matches_conv2d(self, cfg, bias):
        x = _randn(4, 3, 11, 10, dtype=torch.float64)
        k = cfg["kernel_size"]
        kh, kw = (k, k) if isinstance(k, int) else k
        w = _randn(5, 3, kh, kw, seed=1, dtype=torch.float64)
        b = _randn(5, seed=2, dtype=torch.float64) if bias else None
        s, p = cfg["stride"], cfg["padding"]
        torch.testing.assert_close(ops.conv2d_im2col(x, w, b, s, p), F.conv2d(x, w, b, s, p))

    def test_gradients_match(self):
        x1 = _randn(2, 3, 6, 6, dtype=torch.float64).requires_grad_()
        w1 = _randn(4, 3, 3, 3, seed=1, dtype=torch.float64).requires_grad_()
        x2, w2 = x1.detach().clone().requires_grad_(), w1.detach().clone().requires_grad_()
        ops.conv2d_im2col(x1, w1, padding=1).square().sum().backward()
        F.conv2d(x2, w2, padding=1).square().sum().backward()
        torch.testing.assert_close(x1.grad, x2.grad)
        torch.testing.assert_close(w1.grad, w2.grad)

    def test_empty_batch(self):
        y = ops.conv2d_im2col(torch.zeros(0, 3, 8, 8), torch.zeros(4, 3, 3, 3))
        assert y.shape == (0, 4, 6, 6)

    def test_bad_inputs(self):
        with pytest.raises(ValueError, match=r"x must have shape \[B, 3, H, W\].*got \(1, 2, 8, 8\)"):
            ops.conv2d_im2col(torch.zeros(1, 2, 8, 8), torch.zeros(4, 3, 3, 3))
        with pytest.raises(ValueError, match=r"weight must have shape \[C_out, C_in, kh, kw\]"):
            ops.conv2d_im2col(torch.zeros(1, 3, 8, 8), torch.zeros(4, 3, 3))


class TestPool2d:
    @pytest.mark.parametrize("mode,ref", [("max", F.max_pool2d), ("avg", F.avg_pool2d)])
    @pytest.mark.parametrize("k,s", [(2, None), (3, 2), ((2, 3), 1)])
    def test_matches_torch(self, mode, ref, k, s):
        x = _randn(2, 3, 9, 8)
        torch.testing.assert_close(ops.pool2d(x, k, s, mode=mode), ref(x, k, s))

    def test_hand_worked(self):
        x = torch.arange(9.0).reshape(1, 1, 3, 3)
        assert ops.pool2d(x, 2, 1)[0, 0].tolist() == [[4, 5], [7, 8]]
        assert ops.pool2d(x, 2, 1, mode="avg")[0, 0].tolist() == [[2, 3], [5, 6]]

    def test_bad_mode(self):
        with pytest.raises(ValueError, match="mode must be 'max' or 'avg', got 'sum'"):
            ops.pool2d(torch.zeros(1, 1, 4, 4), 2, mode="sum")


class TestCosts:
    def test_params_match_nn_conv2d(self):
        for c_in, c_out, k, bias in [(3, 64, 11, True), (64, 64, 3, False), (256, 64, 1, True), (3, 8, (3, 5), True)]:
            layer = torch.nn.Conv2d(c_in, c_out, k, bias=bias)
            assert ops.conv2d_params(c_in, c_out, k, bias) == sum(p.numel() for p in layer.parameters())

    def test_inception_arithmetic(self):
        # CS231n's Inception example: 28x28x256 input; 854M ops naive. The slide totals the
        # bottleneck version as 358M, but its own six terms add up to 271M.
        hw = (28, 28)
        naive = sum(ops.conv2d_macs(256, c, k, hw) for c, k in [(128, 1), (192, 3), (96, 5)])
        reduced = (ops.conv2d_macs(256, 128, 1, hw) + 3 * ops.conv2d_macs(256, 64, 1, hw)
                   + ops.conv2d_macs(64, 192, 3, hw) + ops.conv2d_macs(64, 96, 5, hw))
        assert round(naive / 1e6) == 854
        assert round(reduced / 1e6) == 271

    def test_receptive_field(self):
        assert ops.receptive_field([(3, 1)] * 3) == 7
        assert ops.receptive_field([(7, 1)]) == 7
        assert ops.receptive_field([]) == 1
        # AlexNet's conv1 -> pool1: 11 + (3 - 1) * 4 = 19
        assert ops.receptive_field([(11, 4), (3, 2)]) == 19

    def test_receptive_field_matches_gradient_support(self):
        net = torch.nn.Sequential(torch.nn.Conv2d(1, 1, 3, stride=2), torch.nn.Conv2d(1, 1, 3), torch.nn.Conv2d(1, 1, 5))
        for layer in net:
            torch.nn.init.constant_(layer.weight, 1.0)
        x = torch.zeros(1, 1, 41, 41, requires_grad=True)
        net(x)[0, 0, 0, 0].backward()
        rows = (x.grad[0, 0].abs().sum(1) > 0).sum().item()
        assert rows == ops.receptive_field([(3, 2), (3, 1), (5, 1)])

    def test_bad_layer(self):
        with pytest.raises(ValueError, match=r"layer 1 must be \(kernel_size, stride\)"):
            ops.receptive_field([(3, 1), (3, 0)])
