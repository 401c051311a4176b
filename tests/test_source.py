import pytest

from d2lcv import conv, source


def test_source_is_the_real_code():
    code = source.source(conv.receptive_field)
    assert code.startswith("def receptive_field(")
    assert "jump *= s" in code


def test_docstring_can_be_dropped():
    with_doc = source.source(conv.corr2d)
    without = source.source(conv.corr2d, docstring=False)
    assert "Two-dimensional cross-correlation" in with_doc
    assert "Two-dimensional cross-correlation" not in without
    assert "for i in range(Y.shape[0])" in without


def test_show_renders_markdown():
    md = source.show(conv.im2col)._repr_markdown_()
    assert md.startswith("`d2lcv.conv.im2col`")
    assert "```python\ndef im2col(" in md


def test_bad_object():
    with pytest.raises(ValueError, match="cannot show the source of 3"):
        source.source(3)
