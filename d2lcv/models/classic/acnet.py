"""ACNet (Ding et al., 2019): a 3x3 convolution strengthened during training by 1x3 and 3x1
branches, each with its own BatchNorm, and fused into one 3x3 convolution for inference."""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["ACBlock", "fold_bn", "fuse_acblock", "to_acnet", "fuse_acnet"]


class ACBlock(nn.Module):
    """``bn(conv3x3(x)) + bn(conv1x3(x)) + bn(conv3x1(x))``, [B, c_in, H, W] ->
    [B, c_out, H / stride, W / stride]. It replaces a (3x3 conv, BN) pair."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__()
        self.square = nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out))
        self.hor = nn.Sequential(nn.Conv2d(c_in, c_out, (1, 3), stride, (0, 1), bias=False), nn.BatchNorm2d(c_out))
        self.ver = nn.Sequential(nn.Conv2d(c_in, c_out, (3, 1), stride, (1, 0), bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: Tensor) -> Tensor:
        return self.square(x) + self.hor(x) + self.ver(x)


def fold_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> tuple[Tensor, Tensor]:
    """The kernel and bias of ``bn(conv(x))`` with BN's running statistics (eval mode):
    ``W' = W * gamma / sigma`` per output channel, ``b' = beta + (b - mu) * gamma / sigma``."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)  # gamma / sigma, [C_out]
    bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
    return conv.weight * scale[:, None, None, None], bn.bias + (bias - bn.running_mean) * scale


@torch.no_grad()
def fuse_acblock(block: ACBlock) -> nn.Conv2d:
    """One 3x3 convolution (with bias) equal to ``block`` in eval mode: fold each BN
    into its branch, pad the 1x3 kernel to the middle row and the 3x1 kernel to the
    middle column of a 3x3 kernel, add the three kernels and the three biases
    (convolution is linear)."""
    w_sq, b_sq = fold_bn(*block.square)
    w_h, b_h = fold_bn(*block.hor)
    w_v, b_v = fold_bn(*block.ver)
    weight = w_sq + F.pad(w_h, (0, 0, 1, 1)) + F.pad(w_v, (1, 1, 0, 0))
    conv = block.square[0]
    fused = nn.Conv2d(conv.in_channels, conv.out_channels, 3, conv.stride, 1, bias=True)
    fused.weight.copy_(weight)
    fused.bias.copy_(b_sq + b_h + b_v)
    return fused


def _replace(module: nn.Module, fn) -> None:
    for name, child in module.named_children():
        new = fn(child)
        if new is not None:
            setattr(module, name, new)
        else:
            _replace(child, fn)


def to_acnet(model: nn.Module) -> nn.Module:
    """A copy of ``model`` in which every (3x3 conv, BatchNorm2d) pair that follows each other
    in an ``nn.Sequential`` (groups 1, no dilation) is an :class:`ACBlock` (the BN becomes an
    ``nn.Identity``), e.g. a VGG with ``batch_norm=True``."""
    model = copy.deepcopy(model)
    for seq in [m for m in model.modules() if isinstance(m, nn.Sequential)]:
        kids = list(seq)
        for i in range(len(kids) - 1):
            conv, bn = kids[i], kids[i + 1]
            if (isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d)
                    and conv.kernel_size == (3, 3) and conv.groups == 1
                    and conv.dilation == (1, 1) and conv.padding == (1, 1)):
                seq[i] = ACBlock(conv.in_channels, conv.out_channels, conv.stride[0])
                seq[i + 1] = nn.Identity()
    return model


def fuse_acnet(model: nn.Module) -> nn.Module:
    """A copy of ``model`` (in eval mode) with every :class:`ACBlock` fused into one 3x3
    conv, channels-last if ``model``'s convolution weights were (as the new
    convolutions would otherwise be slower on such inputs)."""
    channels_last = any(p.dim() == 4 and not p.is_contiguous()
                        and p.is_contiguous(memory_format=torch.channels_last) for p in model.parameters())
    model = copy.deepcopy(model).eval()
    _replace(model, lambda m: fuse_acblock(m) if isinstance(m, ACBlock) else None)
    return model.to(memory_format=torch.channels_last) if channels_last else model
