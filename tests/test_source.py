import pytest

from d2lcv import ops
from d2lcv_book import source


def test_source_is_the_real_code():
    code = source.source(ops.receptive_field)
    assert code.startswith("def receptive_field(")
    assert "jump *= s" in code


def test_docstring_can_be_dropped():
    with_doc = source.source(ops.corr2d)
    without = source.source(ops.corr2d, docstring=False)
    assert "Two-dimensional cross-correlation" in with_doc
    assert "Two-dimensional cross-correlation" not in without
    assert "for i in range(Y.shape[0])" in without


def test_show_renders_markdown():
    md = source.show(ops.im2col)._repr_markdown_()
    assert md.startswith("`d2lcv.ops.conv.im2col`")
    assert "```python\ndef im2col(" in md


def test_bad_object():
    with pytest.raises(ValueError, match="cannot show the source of 3"):
        source.source(3)


def test_show_displays_every_call_in_a_kernel(monkeypatch):
    """In a notebook, two show() calls in one cell both appear (not only the cell's value)."""
    shown = []
    monkeypatch.setattr(source, "_kernel", lambda: True)
    monkeypatch.setattr("IPython.display.display", lambda obj: shown.append(obj._repr_markdown_()))
    assert source.show(ops.im2col) is None and source.show(ops.col2im) is None
    assert [md.split("`")[1] for md in shown] == ["d2lcv.ops.conv.im2col", "d2lcv.ops.conv.col2im"]
