"""Tooling for the course book, kept outside the ``d2lcv`` library namespace.

* :mod:`d2lcv_book.build`: ``python -m d2lcv_book build|chapter|colab`` (the Makefile
  wraps it) and the Sphinx extension listed in ``_config.yml``.
* :mod:`d2lcv_book.source`: ``show(obj)``, how a chapter displays the package code it teaches.
"""

from __future__ import annotations

from .build import setup
from .source import show

__all__ = ["setup", "show"]
