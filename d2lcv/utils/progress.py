"""Progress bars that the environment can silence."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from tqdm.auto import tqdm

__all__ = ["progress"]


def progress(iterable: Iterable | None = None, show: bool = True, **kwargs: Any) -> Any:
    """A ``tqdm.auto`` bar over ``iterable`` (a widget in Jupyter, text elsewhere).

    With ``show=False`` the iterable comes back as it is (or, without one, a disabled bar
    for manual ``update`` calls). With ``show=True`` the bar is shown unless
    ``TQDM_DISABLE=1`` is set (the book build sets it); a bar silenced that way still wraps
    the iterable, so results do not depend on the variable. (``disable=`` is refused: an
    explicit ``disable=False`` would override the variable.)
    """
    if "disable" in kwargs:
        raise ValueError("pass show=False instead of disable=: an explicit disable overrides TQDM_DISABLE")
    if not show:
        if iterable is not None:
            return iterable  # no bar at all (a tqdm, even disabled, iterates a DataLoader differently)
        kwargs["disable"] = True
    elif os.environ.get("TQDM_DISABLE", "").lower() in ("1", "true", "yes", "on"):
        kwargs["disable"] = True  # tqdm.notebook ignores the variable: say it explicitly
    return tqdm(iterable, **kwargs)
