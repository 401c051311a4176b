"""Progress bars that the environment can silence."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tqdm.auto import tqdm

__all__ = ["progress"]


def progress(iterable: Iterable | None = None, show: bool = True, **kwargs: Any) -> Any:
    """A ``tqdm.auto`` bar over ``iterable`` (a widget in Jupyter, text elsewhere).

    With ``show=False`` the iterable comes back as it is (or, without one, a disabled bar
    for manual ``update`` calls); with ``show=True``, ``disable`` is left unset,
    so ``TQDM_DISABLE=1`` in the environment (set when the book is built) still silences
    it. (Passing ``disable=False`` explicitly would override that variable.)
    """
    if "disable" in kwargs:
        raise ValueError("pass show=False instead of disable=: an explicit disable overrides TQDM_DISABLE")
    if not show:
        if iterable is not None:
            return iterable  # no bar at all: a disabled tqdm still calls iter(iterable) once more
        kwargs["disable"] = True
    return tqdm(iterable, **kwargs)
