"""The checker of the built book (d2lcv_book.site), fed small pages on disk: a sound page
passes, and each way a page can break (a deleted figure, a bad reference, raw TeX, a wrong
button, a dropped figure, a console error, MathJax missing) is reported. No build, no browser:
tests/site/test_pages.py runs the same checks on the real book in Chromium."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from d2lcv_book import site
from d2lcv_book.browser import find_chromium, screenshot_name

ROOT = Path(__file__).resolve().parents[1]
PAGE = "book/ch/nb"
CONFIG = """
repository: {url: "https://github.com/org/repo", path_to_book: "", branch: notebooks}
launch_buttons: {colab_url: "https://colab.research.google.com"}
"""
TOC = "format: jb-book\nroot: book/intro\nparts:\n  - chapters:\n      - file: book/ch/nb\n      - file: book/refs\n"
SOURCE = """---
jupytext:
  text_representation: {extension: .md, format_name: myst}
kernelspec: {display_name: Python 3, language: python, name: python3}
---
# A chapter

```{code-cell} ipython3
x = 1
```

```{code-cell} ipython3
plt.plot([1, 2])
plt.show()
```
"""
COLAB = "https://colab.research.google.com/github/org/repo/blob/notebooks/book/ch/nb.ipynb"
HTML = f"""<html><body>
<div class="header"><a href="{COLAB}">Colab</a>
<a href="../../_sources/book/ch/nb.ipynb">.ipynb</a><a href="../../_sources/book/ch/nb.md">.md</a></div>
<main><h1 id="top">A chapter</h1>
<p>As in <a class="reference internal" href="../intro.html#running">the intro</a>, with
<span class="math notranslate nohighlight">\\(x^2\\)</span> and <a href="#top">a link up</a>.</p>
<div class="math notranslate nohighlight">\\[y = x\\]</div>
<pre>price = "$$"</pre>
<div class="cell"><div class="cell_output"><img src="../../_images/fig.svg" alt=""></div></div>
</main></body></html>"""


def _notebook(figure: bool = True) -> dict:
    output = {"output_type": "display_data", "metadata": {}, "data": {"image/svg+xml": "<svg/>", "text/plain": "<Figure>"}}
    return {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
        {"cell_type": "markdown", "id": "a", "metadata": {}, "source": "# A chapter"},
        {"cell_type": "code", "id": "b", "metadata": {}, "execution_count": 1, "source": "x = 1",
         "outputs": [{"output_type": "execute_result", "execution_count": 1, "metadata": {}, "data": {"text/plain": "1"}}]},
        {"cell_type": "code", "id": "c", "metadata": {}, "execution_count": 2, "source": "plt.plot([1, 2])\nplt.show()",
         "outputs": [output] if figure else []},
    ]}


@pytest.fixture
def book(tmp_path) -> tuple[Path, Path]:
    """A one-chapter repository and its built site: (root, html)."""
    root, html = tmp_path / "repo", tmp_path / "html"
    (root / "book" / "ch").mkdir(parents=True)
    (root / "_config.yml").write_text(CONFIG)
    (root / "_toc.yml").write_text(TOC)
    (root / "book" / "ch" / "nb.md").write_text(SOURCE)
    (root / "book" / "intro.md").write_text("# Intro\n")
    for path, text in {
        f"{PAGE}.html": HTML,
        "book/intro.html": '<html><body><main><h2 id="running">Running</h2></main></body></html>',
        "_images/fig.svg": '<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"/>',
        f"_sources/{PAGE}.md": SOURCE,
        f"_sources/{PAGE}.ipynb": json.dumps(_notebook()),
    }.items():
        (html / path).parent.mkdir(parents=True, exist_ok=True)
        (html / path).write_text(text)
    return root, html


def _edit(html: Path, old: str, new: str, page: str = PAGE) -> None:
    path = html / f"{page}.html"
    assert old in path.read_text()
    path.write_text(path.read_text().replace(old, new))


def _problems(book) -> str:
    root, html = book
    return "\n".join(site.page_problems(html, PAGE, root))


def test_a_sound_page_has_no_problems(book):
    assert _problems(book) == ""


def test_a_deleted_figure_is_reported(book):
    (book[1] / "_images" / "fig.svg").unlink()
    assert "missing file: <img src='../../_images/fig.svg'>" in _problems(book)


def test_an_empty_figure_file_is_reported(book):
    (book[1] / "_images" / "fig.svg").write_text("")
    assert "empty image file" in _problems(book)


def test_a_figure_missing_from_the_page_is_reported(book):
    _edit(book[1], '<img src="../../_images/fig.svg" alt="">', "")
    assert "the executed notebook has 1 figure(s), the page shows 0" in _problems(book)


def test_a_figure_shown_only_in_a_branch_or_function_may_be_absent(book):
    notebook = _notebook(figure=False)
    notebook["cells"][2]["source"] = "def show():\n    plt.show()\nif False:\n    plt.show()"
    assert site.notebook_figures(notebook) == (0, [])


def test_a_dropped_figure_is_reported(book):
    """What a non-interactive Matplotlib backend did once: plt.show() and no figure anywhere."""
    (book[1] / "_sources" / f"{PAGE}.ipynb").write_text(json.dumps(_notebook(figure=False)))
    assert "a cell calls plt.show() but its output has no figure: 'plt.plot([1, 2])'" in _problems(book)


@pytest.mark.parametrize("href, message", [
    ("../intro.html#nowhere", "no #nowhere there"),
    ("../missing.html", "no such file"),
    ("#gone", "no #gone there"),
])
def test_a_broken_link_is_reported(book, href, message):
    _edit(book[1], 'href="../intro.html#running"', f'href="{href}"')
    assert f"broken link {href!r} ('the intro'): {message}" in _problems(book)


def test_an_unresolved_reference_is_reported(book):
    _edit(book[1], "<pre>", '<p>See <span class="xref std std-ref">chap-missing</span>.</p><pre>')
    assert "unresolved reference: 'chap-missing'" in _problems(book)


def test_raw_display_math_is_reported_but_not_in_code(book):
    assert "raw $$" not in _problems(book)  # the "$$" in <pre> is code
    _edit(book[1], "<pre>", "<p>Then $$ y = x^2 $$ holds.</p><pre>")
    assert "raw $$ in the text" in _problems(book)


def test_a_colab_button_at_the_markdown_source_is_reported(book):
    _edit(book[1], COLAB, COLAB.replace(".ipynb", ".md"))
    assert f"expected {COLAB!r}" in _problems(book)


def test_a_missing_download_button_is_reported(book):
    _edit(book[1], '<a href="../../_sources/book/ch/nb.ipynb">.ipynb</a>', "")
    assert "no .ipynb download button" in _problems(book)


def test_a_download_of_another_notebook_is_reported(book):
    other = _notebook()
    other["cells"][1]["source"] = "y = 2"
    (book[1] / "_sources" / f"{PAGE}.ipynb").write_text(json.dumps(other))
    assert "is not the notebook of book/ch/nb.md (stale build?): its code cell 1 is 'y = 2', the source's 'x = 1'" in _problems(book)


def test_a_page_that_was_not_built_is_reported(book):
    (book[1] / f"{PAGE}.html").unlink()
    assert _problems(book) == f"{PAGE}.html was not built"


def test_a_missing_local_script_is_reported(book):
    _edit(book[1], "<main>", '<script src="../../_static/mathjax/tex-chtml.js"></script><main>')
    assert "missing file: <script src='../../_static/mathjax/tex-chtml.js'>" in _problems(book)


SEEN = {"console_errors": [], "page_errors": [], "failed_requests": [], "network_requests": [],
        "images": [{"src": "fig.svg", "naturalWidth": 4, "width": 4, "height": 4, "inOutput": True, "visible": True}],
        "math": {"elements": 2, "mathjax": True, "unrendered": [], "errors": []},
        "text": "A chapter with x2 and y = x, at $5."}


def _seen(**changes) -> dict:
    return json.loads(json.dumps(SEEN)) | changes


@pytest.mark.parametrize("changes, message", [
    ({"console_errors": ["Uncaught TypeError: x is undefined"]}, "console error: Uncaught TypeError"),
    ({"page_errors": ["ReferenceError: require is not defined"]}, "script error: ReferenceError"),
    ({"failed_requests": ["_images/fig.svg (net::ERR_FILE_NOT_FOUND)"]}, "failed request: _images/fig.svg"),
    ({"network_requests": ["https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-chtml.js"]}, "needs the network: https://cdn"),
    ({"images": [{"src": "fig.svg", "naturalWidth": 0, "width": 0, "height": 0, "inOutput": True, "visible": True}]},
     "image does not load: fig.svg"),
    ({"images": [{"src": "fig.svg", "naturalWidth": 4, "width": 0, "height": 0, "inOutput": True, "visible": True}]},
     "figure has no size on the page: fig.svg"),
    ({"math": {"elements": 2, "mathjax": False, "unrendered": [], "errors": []}}, "MathJax did not load"),
    ({"math": {"elements": 2, "mathjax": True, "unrendered": ["\\(x^2\\)"], "errors": []}}, "equation not typeset"),
    ({"math": {"elements": 2, "mathjax": True, "unrendered": [], "errors": ["Undefined control sequence \\foo"]}},
     "MathJax error"),
    ({"text": "so $$ y = x $$ holds"}, "raw TeX in the visible text"),
    ({"text": "where \\(x\\) is"}, "raw TeX in the visible text"),
    ({"text": "where $\\alpha$ is"}, "raw TeX in the visible text"),
])
def test_what_the_browser_saw_is_judged(changes, message):
    assert site.rendered_problems(_seen()) == []
    assert any(p.startswith(message) for p in site.rendered_problems(_seen(**changes))), message


def test_hidden_images_may_have_no_size():
    hidden = {"src": "fig.svg", "naturalWidth": 4, "width": 0, "height": 0, "inOutput": True, "visible": False}
    assert site.rendered_problems(_seen(images=[hidden])) == []


def test_toc_pages_are_the_root_then_every_file_in_order(book):
    assert site.toc_pages(book[0]) == ["book/intro", "book/ch/nb", "book/refs"]
    assert site.is_notebook("book/ch/nb", book[0]) and not site.is_notebook("book/intro", book[0])


def test_the_real_toc_lists_every_chapter_notebook():
    from d2lcv_book import build

    pages = site.toc_pages()
    assert pages[0] == "book/intro"
    assert [p for p in pages if site.is_notebook(p)] == [n.relative_to(ROOT).with_suffix("").as_posix() for n in build.notebooks()]


def test_every_colab_button_opens_a_notebook_that_make_colab_publishes(tmp_path):
    """The Colab URL's path on the `notebooks` branch is where `make colab` writes the page's notebook."""
    from d2lcv_book import build

    build.colab(tmp_path)
    prefix = "https://colab.research.google.com/github/d2lcv/d2lcv/blob/notebooks/"
    for page in (p for p in site.toc_pages() if site.is_notebook(p)):
        url = site.colab_url_for(page)
        assert url.startswith(prefix) and (tmp_path / url.removeprefix(prefix)).is_file(), url


def test_chromium_comes_from_the_environment_or_the_distribution(monkeypatch):
    monkeypatch.setenv("CHROMIUM", shutil.which("true"))
    assert find_chromium() == shutil.which("true")
    monkeypatch.setenv("CHROMIUM", "/nonexistent/chrome")
    assert find_chromium() is None
    assert screenshot_name(3, "book/cnn/convolutions") == "03-book-cnn-convolutions.png"


def test_identical_scripts_are_listed_once():
    from sphinx.builders.html._assets import _JavaScript

    from d2lcv_book.pages import unique_scripts

    thebe = {"body": 'const THEBE_JS_URL = "x"'}
    scripts = [_JavaScript("_static/a.js"), _JavaScript(None, **thebe), _JavaScript("_static/a.js"),
               _JavaScript("", priority=200, **thebe), _JavaScript(None, body="var y = 1")]
    assert unique_scripts(scripts) == [scripts[0], scripts[1], scripts[4]]


def test_the_download_gets_the_outputs_of_the_cached_run(tmp_path):
    """MyST-NB writes the downloadable .ipynb without outputs when they came from its cache."""
    import nbformat
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    from d2lcv_book.pages import executed_download

    executed = nbformat.from_dict(_notebook())
    blank = nbformat.from_dict(_notebook(figure=False))
    blank.cells[1].outputs = []
    download = tmp_path / "nb.ipynb"
    nbformat.write(blank, download)
    assert not executed_download(download, tmp_path / "no-cache")
    cache = get_cache(str(tmp_path / "cache"))
    assert not executed_download(download, tmp_path / "cache")  # an empty cache: left as it is
    cache.cache_notebook_bundle(CacheBundleIn(executed, "nb.md"), check_validity=False)
    assert executed_download(download, tmp_path / "cache")
    count, dropped = site.notebook_figures(json.loads(download.read_text()))
    assert (count, dropped) == (1, [])
    assert not executed_download(download, tmp_path / "cache")  # has outputs: untouched
