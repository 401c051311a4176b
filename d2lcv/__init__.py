"""d2lcv: the tested companion package of *Dive into Computer Vision*.

Importing the package has no side effects: no device probing, no downloads, no
changes to matplotlib's global state. Submodules are imported on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_SUBMODULES = (
    "anchors", "augment", "boxaug", "boxes", "config", "conv", "data", "detmetrics", "finetune", "mixing", "models",
    "nms", "plot", "source", "ssd", "style", "train", "tta", "weights",
)

__all__ = ["__version__", *_SUBMODULES]


def __getattr__(name: str) -> Any:  # PEP 562: lazy submodules, `d2lcv.plot` works after `import d2lcv`
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'd2lcv' has no attribute {name!r}")
