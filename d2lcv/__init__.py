"""d2lcv: the tested companion package of *Dive into Computer Vision*.

The package is layered like torchvision and timm, one concept per module. A module may
import from its own subpackage and from LOWER layers only (``tests/test_structure.py``
enforces it, together with ``__all__``, module size and no private names across modules):

====  =========================================  ===================================================
 0    ``config``, ``utils``                       profiles, devices, seeds; atomic files, progress,
                                                  timing, parameter counts, scoped seeding
 1    ``ops``                                     boxes, IoU variants and losses, NMS, anchors, im2col
 2    ``transforms``                              pipelines, Cutout, mixup/CutMix, box-aware, TTA
 3    ``data``, ``plot``                          datasets, downloads and cache; figures
 4    ``models``, ``losses``, ``metrics``         networks and weights; losses; accuracy, mAP, COCO
                                                  (these three do not import each other)
 5    ``engine``                                  the one training loop: steps, callbacks, history,
                                                  checkpoints, DDP, AMP
 6    ``recipes``                                 each chapter's protocol, a thin layer over the engine
====  =========================================  ===================================================

The book's own tooling (build, Colab notebooks, ``show`` for displaying source) is the
separate package ``d2lcv_book``.

Importing the package has no side effects: no device probing, no downloads, no changes to
matplotlib's global state, no seeding. Subpackages are imported on first use
(``import d2lcv; d2lcv.ops.nms(...)``).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.2.0"

LAYERS: dict[str, int] = {
    "config": 0, "utils": 0,
    "ops": 1,
    "transforms": 2,
    "data": 3, "plot": 3,
    "models": 4, "losses": 4, "metrics": 4,
    "engine": 5,
    "recipes": 6,
}
"""Each subpackage's layer: a module may import only from its own subpackage and lower layers."""

_SUBMODULES = tuple(LAYERS)

__all__ = ["__version__", "LAYERS", *_SUBMODULES]


def __getattr__(name: str) -> Any:  # PEP 562: lazy submodules, `d2lcv.plot` works after `import d2lcv`
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'd2lcv' has no attribute {name!r}")
