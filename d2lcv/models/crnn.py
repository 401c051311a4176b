"""Reading a line of characters: CRNN (Shi et al., TPAMI 2017) and the per-position baseline
of the street-view character recognition contest, on the same convolutional features."""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["ImageScale", "line_features", "CRNN", "PerPositionCNN"]


class ImageScale(nn.Module):
    """uint8 images (0..255) or floats in [0, 1] -> roughly zero-mean, unit-scale floats."""

    def forward(self, x: Tensor) -> Tensor:
        x = x.float() / 255 if x.dtype == torch.uint8 else x
        return (x - 0.5) / 0.25


def _block(cin: int, cout: int, pool: tuple[int, int]) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
            nn.MaxPool2d(pool)]


def line_features(width: int = 32, in_channels: int = 3, stride: int = 8) -> nn.Sequential:
    """Convolutions that turn a text line into a row of feature columns.

    Images are scaled first (:class:`ImageScale`: uint8 works). Then four (conv 3x3, BN,
    ReLU, max-pool) blocks that halve the height each, and the width
    until it has shrunk ``stride`` times (4 or 8), so ``[B, C, 32, 128]`` becomes
    ``[B, 4 * width, 2, 128 / stride]``: one column every ``stride`` pixels.
    """
    if width < 1 or in_channels < 1:
        raise ValueError(f"width and in_channels must be positive, got {width}, {in_channels}")
    if stride not in (4, 8):
        raise ValueError(f"stride must be 4 or 8, got {stride}")
    w = width
    return nn.Sequential(ImageScale(), *_block(in_channels, w, (2, 2)), *_block(w, 2 * w, (2, 2)),
                         *_block(2 * w, 4 * w, (2, 2 if stride == 8 else 1)), *_block(4 * w, 4 * w, (2, 1)))


class CRNN(nn.Module):
    """CNN features as a sequence, a bidirectional LSTM or GRU over it, one class per column.

    Shapes for ``[B, 3, 32, 128]`` images and ``stride=8``: features ``[B, 4w, 2, 16]`` ->
    columns ``[B, 16, 8w]`` (height folded into channels) -> RNN ``[B, 16, 2 * hidden]`` ->
    logits ``[B, 16, num_classes]``. Trained with CTC, class 0 being the blank.

    Args:
        num_classes: classes including the blank (11 for digits).
        width: channels of the first convolution (see :func:`line_features`).
        hidden: hidden units per direction.
        rnn: ``"lstm"`` or ``"gru"``.
    """

    def __init__(self, num_classes: int = 11, width: int = 32, hidden: int = 128, rnn: str = "lstm",
                 in_channels: int = 3, image_height: int = 32, stride: int = 8) -> None:
        super().__init__()
        if rnn not in ("lstm", "gru"):
            raise ValueError(f"rnn must be 'lstm' or 'gru', got {rnn!r}")
        self.features = line_features(width, in_channels, stride)
        rows = image_height // 16
        cell = nn.LSTM if rnn == "lstm" else nn.GRU
        self.rnn = cell(4 * width * rows, hidden, batch_first=True, bidirectional=True)
        self.head = nn.Linear(2 * hidden, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        """x (Tensor[B, C, H, W]) -> logits (Tensor[B, W / stride, num_classes])."""
        f = self.features(x)  # [B, C', H', T]
        columns = f.flatten(1, 2).transpose(1, 2)  # [B, T, C' * H']
        out, _ = self.rnn(columns)
        return self.head(out)


class PerPositionCNN(nn.Module):
    """The contest baseline: one classifier per character position.

    The same convolutional features as :class:`CRNN`, flattened (so that the heads know
    where in the image each feature is), a hidden layer, then ``positions`` heads of
    ``num_classes`` classes, the last class meaning "no character here": ``"42"`` is the
    target ``[4, 2, 10, 10, 10]``.

    Returns logits ``[B, positions, num_classes]``.
    """

    def __init__(self, positions: int = 5, num_classes: int = 11, width: int = 32, hidden: int = 256,
                 in_channels: int = 3, image_size: tuple[int, int] = (32, 128), stride: int = 8) -> None:
        super().__init__()
        if positions < 1 or num_classes < 2:
            raise ValueError(f"positions must be >= 1 and num_classes >= 2, got {positions}, {num_classes}")
        self.features = line_features(width, in_channels, stride)
        n = 4 * width * (image_size[0] // 16) * (image_size[1] // stride)
        self.hidden = nn.Sequential(nn.Flatten(), nn.Dropout(0.2), nn.Linear(n, hidden), nn.ReLU(inplace=True))
        self.heads = nn.Linear(hidden, positions * num_classes)
        self.positions, self.num_classes = positions, num_classes

    def forward(self, x: Tensor) -> Tensor:
        """x (Tensor[B, C, H, W]) -> logits (Tensor[B, positions, num_classes])."""
        logits = self.heads(self.hidden(self.features(x)))
        return logits.view(len(x), self.positions, self.num_classes)
