"""Fixtures shared by the test files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture
def data_env(tmp_path, monkeypatch) -> Callable[..., Path]:
    """A factory that points d2lcv's data layer at an empty cache in ``tmp_path``::

        def env(data_env):
            return data_env(mirror=False, offline=True)

    Args (of the factory):
        mirror: keep ``$D2LCV_MIRROR`` as the environment sets it (False: no mirror).
        offline: set ``$D2LCV_OFFLINE=1`` (False: downloads allowed).
        torch_home: also give torch.hub an empty cache (``$TORCH_HOME``).

    Returns (from the factory): ``tmp_path``; the cache is ``tmp_path / "cache"``.
    """

    def make(*, mirror: bool = False, offline: bool = True, torch_home: bool = False) -> Path:
        monkeypatch.setenv("D2LCV_DATA", str(tmp_path / "cache"))
        if not mirror:
            monkeypatch.delenv("D2LCV_MIRROR", raising=False)
        if offline:
            monkeypatch.setenv("D2LCV_OFFLINE", "1")
        else:
            monkeypatch.delenv("D2LCV_OFFLINE", raising=False)
        if torch_home:
            monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
        return tmp_path

    return make
