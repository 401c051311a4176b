"""Convolution from scratch: cross-correlation, output sizes, im2col/col2im, cost arithmetic.

The functions here are the ones the chapter *Convolutions from scratch* teaches. They
are written to be read; ``torch.nn.functional.conv2d``/``unfold``/``fold`` are the
references they are tested against.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = [
    "corr2d",
    "conv_output_size",
    "im2col",
    "col2im",
    "conv2d_im2col",
    "pool2d",
    "conv2d_macs",
    "conv2d_params",
    "receptive_field",
]

_Pair = int | tuple[int, int]


def _pair(value: _Pair, name: str, minimum: int) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) and v >= minimum for v in pair):
        raise ValueError(f"{name} must be an int >= {minimum} or a pair of them, got {value!r}")
    return pair  # type: ignore[return-value]


def corr2d(X: Tensor, K: Tensor) -> Tensor:
    """Two-dimensional cross-correlation of one image with one kernel, by definition.

    ``Y[i, j] = sum_{a, b} X[i + a, j + b] * K[a, b]``. (A *convolution* flips the
    kernel first; deep learning libraries compute this cross-correlation and call it
    convolution.)

    Args:
        X (Tensor[H, W]): the input.
        K (Tensor[kh, kw]): the kernel, no larger than ``X``.

    Returns:
        Tensor[H - kh + 1, W - kw + 1]
    """
    if X.dim() != 2 or K.dim() != 2:
        raise ValueError(
            f"corr2d expects 2-D X and K, got X {tuple(X.shape)} and K {tuple(K.shape)}"
        )
    h, w = K.shape
    if h > X.shape[0] or w > X.shape[1]:
        raise ValueError(
            f"kernel {tuple(K.shape)} is larger than the input {tuple(X.shape)}"
        )
    Y = torch.zeros(
        X.shape[0] - h + 1, X.shape[1] - w + 1, dtype=torch.result_type(X, K)
    )
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            Y[i, j] = (X[i : i + h, j : j + w] * K).sum()
    return Y


def conv_output_size(
    size: int, kernel_size: int, stride: int = 1, padding: int = 0, dilation: int = 1
) -> int:
    """Output length of a convolution or pooling along one axis.

    ``floor((size + 2 * padding - dilation * (kernel_size - 1) - 1) / stride) + 1``, which is
    the familiar ``floor((W + 2P - K) / S) + 1`` when ``dilation == 1``.

    Raises:
        ValueError: for non-positive sizes, or when the kernel does not fit the padded input.
    """
    for name, value, minimum in (
        ("size", size, 1),
        ("kernel_size", kernel_size, 1),
        ("stride", stride, 1),
        ("padding", padding, 0),
        ("dilation", dilation, 1),
    ):
        if not isinstance(value, int) or value < minimum:
            raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    span = dilation * (kernel_size - 1) + 1  # how many input pixels one window covers
    if span > size + 2 * padding:
        raise ValueError(
            f"a kernel spanning {span} pixels does not fit an input of {size} with "
            f"padding {padding}"
        )
    return (size + 2 * padding - span) // stride + 1


def im2col(
    x: Tensor, kernel_size: _Pair, stride: _Pair = 1, padding: _Pair = 0
) -> Tensor:
    """Unroll every sliding window of ``x`` into a column ("image to columns").

    Column ``l`` holds the ``C * kh * kw`` pixels under the kernel at output position ``l``
    (row-major over the output), ordered channel first, then kernel row, then kernel column:
    the same layout as ``torch.nn.functional.unfold``.

    Args:
        x (Tensor[B, C, H, W]): a batch of images.
        kernel_size, stride, padding: an int or an ``(h, w)`` pair each.

    Returns:
        Tensor[B, C * kh * kw, L] with ``L = H_out * W_out``.
    """
    if x.dim() != 4:
        raise ValueError(
            f"im2col expects x of shape [B, C, H, W], got {tuple(x.shape)}"
        )
    kh, kw = _pair(kernel_size, "kernel_size", 1)
    sh, sw = _pair(stride, "stride", 1)
    ph, pw = _pair(padding, "padding", 0)
    B, C, H, W = x.shape
    H_out = conv_output_size(H, kh, sh, ph)
    W_out = conv_output_size(W, kw, sw, pw)
    x = torch.nn.functional.pad(x, (pw, pw, ph, ph))
    cols = x.new_empty(B, C, kh, kw, H_out, W_out)
    # one strided slice per kernel offset: kh * kw copies, not H_out * W_out
    for a in range(kh):
        for b in range(kw):
            cols[:, :, a, b] = x[:, :, a : a + sh * H_out : sh, b : b + sw * W_out : sw]
    return cols.reshape(B, C * kh * kw, H_out * W_out)


def col2im(
    cols: Tensor, output_size: _Pair, kernel_size: _Pair, stride: _Pair = 1, padding: _Pair = 0
) -> Tensor:
    """The adjoint of :func:`im2col`: scatter columns back to an image, summing overlaps.

    ``col2im(im2col(x))`` is not ``x``: each pixel comes back multiplied by the number of
    windows that cover it. This summing is exactly what the backward pass of a convolution
    needs, and it matches ``torch.nn.functional.fold``.

    Args:
        cols (Tensor[B, C * kh * kw, L]): columns in the layout of :func:`im2col`.
        output_size: ``(H, W)`` of the image to rebuild (before padding).

    Returns:
        Tensor[B, C, H, W]
    """
    if cols.dim() != 3:
        raise ValueError(f"col2im expects cols of shape [B, C*kh*kw, L], got {tuple(cols.shape)}")
    H, W = _pair(output_size, "output_size", 1)
    kh, kw = _pair(kernel_size, "kernel_size", 1)
    sh, sw = _pair(stride, "stride", 1)
    ph, pw = _pair(padding, "padding", 0)
    H_out, W_out = conv_output_size(H, kh, sh, ph), conv_output_size(W, kw, sw, pw)
    B, CK, L = cols.shape
    if CK % (kh * kw) or L != H_out * W_out:
        raise ValueError(
            f"cols of shape {tuple(cols.shape)} do not fit a {kh}x{kw} kernel sliding over "
            f"{H}x{W} with stride {(sh, sw)} and padding {(ph, pw)} (expected [B, C*{kh * kw}, {H_out * W_out}])"
        )
    C = CK // (kh * kw)
    cols = cols.reshape(B, C, kh, kw, H_out, W_out)
    x = cols.new_zeros(B, C, H + 2 * ph, W + 2 * pw)
    for a in range(kh):
        for b in range(kw):
            x[:, :, a : a + sh * H_out : sh, b : b + sw * W_out : sw] += cols[:, :, a, b]
    return x[:, :, ph : ph + H, pw : pw + W]


def conv2d_im2col(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: _Pair = 1,
    padding: _Pair = 0,
) -> Tensor:
    """A 2-D convolution layer (cross-correlation) as one matrix multiply.

    Args:
        x (Tensor[B, C_in, H, W]): input batch.
        weight (Tensor[C_out, C_in, kh, kw]): kernels.
        bias (Tensor[C_out], optional): one bias per output channel.

    Returns:
        Tensor[B, C_out, H_out, W_out], equal to ``F.conv2d(x, weight, bias, stride, padding)``.
    """
    if weight.dim() != 4:
        raise ValueError(
            f"weight must have shape [C_out, C_in, kh, kw], got {tuple(weight.shape)}"
        )
    if x.dim() != 4 or x.shape[1] != weight.shape[1]:
        raise ValueError(
            f"x must have shape [B, {weight.shape[1]}, H, W] to match weight "
            f"{tuple(weight.shape)}, "
            f"got {tuple(x.shape)}"
        )
    C_out, _, kh, kw = weight.shape
    B, _, H, W = x.shape
    sh, sw = _pair(stride, "stride", 1)
    ph, pw = _pair(padding, "padding", 0)
    cols = im2col(x, (kh, kw), (sh, sw), (ph, pw))  # [B, C_in*kh*kw, L]
    # [C_out, C_in*kh*kw] @ [B, C_in*kh*kw, L] -> [B, C_out, L]
    y = weight.reshape(C_out, -1) @ cols
    if bias is not None:
        y = y + bias.reshape(1, C_out, 1)
    return y.reshape(
        B, C_out, conv_output_size(H, kh, sh, ph), conv_output_size(W, kw, sw, pw)
    )


def pool2d(
    x: Tensor, kernel_size: _Pair, stride: _Pair | None = None, mode: str = "max"
) -> Tensor:
    """Max or average pooling without padding, by im2col: reduce each window's column.

    Args:
        x (Tensor[B, C, H, W]): input batch.
        kernel_size: window size, an int or ``(h, w)``.
        stride: defaults to ``kernel_size`` (non-overlapping windows), as in PyTorch.
        mode: ``"max"`` or ``"avg"``.

    Returns:
        Tensor[B, C, H_out, W_out], equal to ``F.max_pool2d``/``F.avg_pool2d``.
    """
    if mode not in ("max", "avg"):
        raise ValueError(f"mode must be 'max' or 'avg', got {mode!r}")
    if x.dim() != 4:
        raise ValueError(
            f"pool2d expects x of shape [B, C, H, W], got {tuple(x.shape)}"
        )
    kh, kw = _pair(kernel_size, "kernel_size", 1)
    sh, sw = _pair(kernel_size if stride is None else stride, "stride", 1)
    B, C, H, W = x.shape
    cols = im2col(x, (kh, kw), (sh, sw)).reshape(B, C, kh * kw, -1)  # [B, C, window, L]
    y = cols.amax(dim=2) if mode == "max" else cols.mean(dim=2)
    return y.reshape(B, C, conv_output_size(H, kh, sh), conv_output_size(W, kw, sw))


def conv2d_params(c_in: int, c_out: int, kernel_size: _Pair, bias: bool = True) -> int:
    """Number of parameters of a 2-D convolution layer: ``c_out * (c_in * kh * kw + bias)``."""
    kh, kw = _pair(kernel_size, "kernel_size", 1)
    return c_out * (c_in * kh * kw + int(bias))


def conv2d_macs(c_in: int, c_out: int, kernel_size: _Pair, output_size: _Pair) -> int:
    """Multiply-accumulates of a 2-D convolution: one ``c_in * kh * kw`` dot product per output value.

    ``H_out * W_out * c_out * c_in * kh * kw``. (Slides often call these "ops".)
    """
    kh, kw = _pair(kernel_size, "kernel_size", 1)
    H, W = _pair(output_size, "output_size", 1)
    return H * W * c_out * c_in * kh * kw


def receptive_field(layers: Sequence[tuple[int, int]]) -> int:
    """Receptive field (in input pixels) of one output unit of a stack of conv/pool layers.

    Args:
        layers: ``(kernel_size, stride)`` per layer, input side first.

    Returns:
        ``1 + sum_l (k_l - 1) * prod_{i < l} s_i``.
    """
    field, jump = 1, 1  # jump: distance in input pixels between neighbouring units
    for i, layer in enumerate(layers):
        if len(layer) != 2 or not all(isinstance(v, int) and v >= 1 for v in layer):
            raise ValueError(
                f"layer {i} must be (kernel_size, stride) of positive ints, got "
                f"{layer!r}"
            )
        k, s = layer
        field += (k - 1) * jump
        jump *= s
    return field
