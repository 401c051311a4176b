"""The notebook's figure format, and whether a Jupyter kernel is running."""

from __future__ import annotations

from typing import Any

__all__ = ["use_svg_display", "jupyter_shell"]


def jupyter_shell() -> Any:
    """The running Jupyter kernel's shell, or None (plain Python, terminal IPython)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    shell = get_ipython()
    return shell if getattr(shell, "kernel", None) is not None else None


def use_svg_display(fmt: str = "svg") -> None:
    """Show the notebook's figures as SVG (sharp at any zoom); ``fmt="retina"`` for 2x PNG.

    Does nothing outside a Jupyter kernel.
    """
    if fmt not in ("svg", "retina", "png"):
        raise ValueError(f"fmt must be 'svg', 'retina' or 'png', got {fmt!r}")
    if jupyter_shell() is None:
        return
    from matplotlib_inline.backend_inline import set_matplotlib_formats

    set_matplotlib_formats(fmt)
