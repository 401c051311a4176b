"""Show the package source a chapter teaches, so the book never keeps a second copy.

In a notebook, ``d2lcv_book.source.show(d2lcv.ops.im2col)`` displays the function's real
source as a highlighted code block. The output is Markdown, which Jupyter, Colab and
Jupyter Book (MyST-NB) all render.
"""

from __future__ import annotations

import inspect
import textwrap
from typing import Any

__all__ = ["source", "show"]


def source(obj: Any, *, docstring: bool = True) -> str:
    """The source code of a function, class or module, dedented.

    Args:
        obj: anything :func:`inspect.getsource` accepts.
        docstring: if False, drop the leading docstring of a function or class so the
            reader sees just the code.
    """
    try:
        code = textwrap.dedent(inspect.getsource(obj))
    except (TypeError, OSError) as err:
        raise ValueError(f"cannot show the source of {obj!r}: {err}") from err
    if not docstring:
        code = _strip_docstring(obj, code)
    return code.rstrip() + "\n"


def _strip_docstring(obj: Any, code: str) -> str:
    doc = inspect.getdoc(obj)
    raw = getattr(obj, "__doc__", None)
    if not doc or not raw:
        return code
    for quote in ('"""', "'''"):
        start = code.find(quote)
        if start == -1:
            continue
        end = code.find(quote, start + 3)
        if end == -1:
            continue
        line_start = code.rfind("\n", 0, start) + 1
        line_end = code.find("\n", end)
        return code[:line_start] + code[line_end + 1 :]
    return code


class _MarkdownCode:
    """A code block with a Markdown representation (rendered by Jupyter, Colab, MyST-NB)."""

    def __init__(self, code: str, title: str) -> None:
        self.code, self.title = code, title

    def _repr_markdown_(self) -> str:
        return f"`{self.title}`\n\n```python\n{self.code}```\n"

    def __repr__(self) -> str:
        return f"# {self.title}\n{self.code}"


def _kernel() -> bool:
    """Whether this runs in a Jupyter kernel (where ``display`` shows rich output)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    return getattr(get_ipython(), "kernel", None) is not None


def show(obj: Any, *, docstring: bool = True) -> _MarkdownCode | None:
    """Display ``obj``'s source as a highlighted code block titled with its qualified name
    and module (e.g. ``d2lcv.ops.conv.im2col``).

    In a notebook every call displays at once (several calls in one cell show several
    blocks) and returns None; elsewhere the block is returned (its ``_repr_markdown_`` is
    the Markdown, its ``repr`` plain text).
    """
    module = getattr(obj, "__module__", None) or getattr(obj, "__name__", "")
    name = getattr(obj, "__qualname__", None)
    title = f"{module}.{name}" if name and module != getattr(obj, "__name__", None) else module
    block = _MarkdownCode(source(obj, docstring=docstring), title)
    if _kernel():
        from IPython.display import display

        display(block)
        return None
    return block
