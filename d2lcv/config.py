"""Run profiles, device choice and seeding.

A *profile* sets how much work a notebook does. It is chosen by one environment
variable, ``D2LCV_PROFILE``:

``smoke``
    CI: seconds per notebook, tiny data; proves the code runs.
``cpu``
    default without a GPU: at most 5 minutes per notebook on 2 cores, with
    results that teach the point (and are asserted).
``full``
    default with a GPU: the book's headline numbers.

A notebook keeps all of its sizes in one visible cell::

    cfg = d2lcv.config.by_profile(
        smoke=dict(epochs=1, n_train=256),
        cpu=dict(epochs=4, n_train=10_000),
        full=dict(epochs=30, n_train=50_000),
    )
    cfg.epochs
"""

from __future__ import annotations

import os
import random
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

__all__ = [
    "PROFILES",
    "PROFILE_ENV",
    "get_profile",
    "by_profile",
    "Profile",
    "try_device",
    "seed_everything",
]

PROFILES = ("smoke", "cpu", "full")
PROFILE_ENV = "D2LCV_PROFILE"


def get_profile() -> str:
    """The active run profile: ``$D2LCV_PROFILE``, else ``full`` with CUDA and ``cpu`` without.

    Raises:
        ValueError: if ``$D2LCV_PROFILE`` is set to something other than smoke, cpu or full.
    """
    value = os.environ.get(PROFILE_ENV, "").strip().lower()
    if not value:
        return "full" if torch.cuda.is_available() else "cpu"
    if value not in PROFILES:
        raise ValueError(
            f"{PROFILE_ENV}={os.environ[PROFILE_ENV]!r} is not a profile; "
            f"set it to one of {', '.join(PROFILES)} (or unset it for the device default)"
        )
    return value


class Profile(SimpleNamespace):
    """The settings of one run profile; in a notebook it shows which profile produced the page."""

    def _repr_markdown_(self) -> str:
        import d2lcv

        settings = ", ".join(f"`{k}={v!r}`" for k, v in vars(self).items() if k != "profile")
        device = try_device()
        return (
            f"**Run profile: `{self.profile}`** (set `{PROFILE_ENV}` to smoke, cpu or full) · "
            f"device `{device}` · torch {torch.__version__} · d2lcv {d2lcv.__version__}  \n"
            f"Settings: {settings}"
        )


def by_profile(
    *, smoke: dict[str, Any], cpu: dict[str, Any], full: dict[str, Any], profile: str | None = None
) -> Profile:
    """Pick the settings of the active profile.

    Args:
        smoke, cpu, full: the settings of each profile; all three must have the same keys,
            so that a notebook cannot silently miss a setting in one profile.
        profile: overrides :func:`get_profile` (for tests and for instructors).

    Returns:
        A namespace with the chosen settings plus ``profile``, the profile's name.
    """
    profile = get_profile() if profile is None else profile
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}, got {profile!r}")
    table = {"smoke": smoke, "cpu": cpu, "full": full}
    keys = {name: set(settings) for name, settings in table.items()}
    if len({frozenset(k) for k in keys.values()}) != 1:
        union = set().union(*keys.values())
        missing = {name: sorted(union - k) for name, k in keys.items() if union - k}
        raise ValueError(f"every profile must set the same keys; missing: {missing}")
    if "profile" in keys["smoke"]:
        raise ValueError("'profile' is reserved: it is set to the profile's name")
    return Profile(profile=profile, **table[profile])


def try_device(prefer: str | None = None) -> torch.device:
    """The best available device: CUDA, then Apple's MPS, then the CPU.

    Args:
        prefer: a device string ("cpu", "cuda", "cuda:1", "mps") to use instead;
            ``$D2LCV_DEVICE`` sets it from outside a notebook.
    """
    prefer = prefer or os.environ.get("D2LCV_DEVICE") or None
    if prefer is not None:
        device = torch.device(prefer)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device {prefer!r} was asked for, but CUDA is not available here")
        if device.type == "mps" and not torch.backends.mps.is_available():
            raise ValueError(f"device {prefer!r} was asked for, but MPS is not available here")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int = 0, *, deterministic: bool = False) -> torch.Generator:
    """Seed Python, NumPy and torch (all devices); optionally force deterministic kernels.

    Args:
        seed: the seed.
        deterministic: if True, ask torch for deterministic algorithms (slower on GPU;
            errors on ops that have none) and turn off cuDNN autotuning.

    Returns:
        A CPU ``torch.Generator`` seeded with ``seed``, for functions that take one.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device
    torch.use_deterministic_algorithms(deterministic, warn_only=False)
    if torch.backends.cudnn.is_available():
        torch.backends.cudnn.deterministic = deterministic
        torch.backends.cudnn.benchmark = False
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    return torch.Generator().manual_seed(seed)
