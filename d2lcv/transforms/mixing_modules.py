"""The mixing augmentations as batch transforms (:mod:`d2lcv.transforms.mixing` is the
functional core), and a loader wrapper that applies one to every batch."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from d2lcv.transforms.mixing import cutmix, mixup, ricap

__all__ = ["MixUp", "CutMix", "RICAP", "MixUpOrCutMix", "MixedBatches"]


def _check_positive(name: str, value: float) -> None:
    if not value > 0:  # also catches NaN
        raise ValueError(f"{name} must be > 0, got {value!r}")


class MixUp(nn.Module):
    """:func:`mixup` as a batch transform: ``x, y_soft = MixUp(1.0, 10)(x, y)``."""

    def __init__(self, alpha: float = 1.0, num_classes: int | None = None, *, generator: torch.Generator | None = None) -> None:
        super().__init__()
        _check_positive("alpha", alpha)
        self.alpha, self.num_classes, self.generator = alpha, num_classes, generator

    def forward(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        return mixup(x, y, alpha=self.alpha, num_classes=self.num_classes, generator=self.generator)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, num_classes={self.num_classes}"


class CutMix(nn.Module):
    """:func:`cutmix` as a batch transform: ``x, y_soft = CutMix(1.0, 10)(x, y)``."""

    def __init__(self, alpha: float = 1.0, num_classes: int | None = None, *, generator: torch.Generator | None = None) -> None:
        super().__init__()
        _check_positive("alpha", alpha)
        self.alpha, self.num_classes, self.generator = alpha, num_classes, generator

    def forward(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        return cutmix(x, y, alpha=self.alpha, num_classes=self.num_classes, generator=self.generator)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, num_classes={self.num_classes}"


class RICAP(nn.Module):
    """:func:`ricap` as a batch transform: ``x, y_soft = RICAP(0.3, 10)(x, y)``."""

    def __init__(self, beta: float = 0.3, num_classes: int | None = None, *, generator: torch.Generator | None = None) -> None:
        super().__init__()
        _check_positive("beta", beta)
        self.beta, self.num_classes, self.generator = beta, num_classes, generator

    def forward(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        return ricap(x, y, beta=self.beta, num_classes=self.num_classes, generator=self.generator)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, num_classes={self.num_classes}"


class MixUpOrCutMix(nn.Module):
    """Per batch, :func:`mixup` with probability ``p``, else :func:`cutmix` (as in timm and
    the torchvision reference recipes, which use ``mixup_alpha=0.2, cutmix_alpha=1.0``)."""

    def __init__(
        self,
        num_classes: int | None = None,
        *,
        p: float = 0.5,
        mixup_alpha: float = 1.0,
        cutmix_alpha: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p must be in [0, 1], got {p!r}")
        _check_positive("mixup_alpha", mixup_alpha)
        _check_positive("cutmix_alpha", cutmix_alpha)
        self.num_classes, self.p, self.generator = num_classes, p, generator
        self.mixup_alpha, self.cutmix_alpha = mixup_alpha, cutmix_alpha

    def forward(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        if float(torch.rand((), generator=self.generator)) < self.p:
            return mixup(x, y, alpha=self.mixup_alpha, num_classes=self.num_classes, generator=self.generator)
        return cutmix(x, y, alpha=self.cutmix_alpha, num_classes=self.num_classes, generator=self.generator)

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, p={self.p}, mixup_alpha={self.mixup_alpha}, cutmix_alpha={self.cutmix_alpha}"


class MixedBatches:
    """Wrap a data loader so every batch goes through a batch transform (e.g. :class:`CutMix`).

    Args:
        loader: yields ``(x, y)`` batches; ``len(loader)`` is kept, so learning-rate
            schedules that count steps still work.
        mix: a callable ``(x, y) -> (x_mixed, y_soft)`` such as :class:`MixUp`,
            :class:`CutMix`, :class:`RICAP` or :class:`MixUpOrCutMix`.
    """

    def __init__(self, loader, mix) -> None:
        if not callable(mix):
            raise TypeError(f"mix must be a callable (x, y) -> (x, y_soft), got {type(mix).__name__}")
        self.loader, self.mix = loader, mix

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        for x, y in self.loader:
            yield self.mix(x, y)
