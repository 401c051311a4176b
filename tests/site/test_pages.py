"""The built book in a real browser (``make site-test``; ``make test`` runs it after the unit
tests): every page of the toc, opened from ``_build/html`` on disk with the network off, has no
console errors, no failed requests, all its figures with a size, every equation typeset by the
MathJax served from the site, working links and the right Colab and download buttons. A copy of
the site with a page broken on purpose must fail the same checks.

Runs when ``D2LCV_SITE_TEST=1`` (``make site-test`` sets it, after building the book from the
current sources), so that ``pytest tests`` does not judge a stale build. Needs the built book and
Chromium (``make browser``): without them the tests are skipped, except in CI (``CI=true``),
where they fail instead."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from d2lcv_book.browser import browser_context, find_chromium, visit, visit_all
from d2lcv_book.site import (
    ROOT,
    is_notebook,
    page_problems,
    rendered_problems,
    toc_pages,
)

HTML = Path(os.environ.get("D2LCV_SITE", ROOT / "_build" / "html"))
SCREENSHOTS = ROOT / "_build" / "screenshots"
PAGES = toc_pages()
pytestmark = pytest.mark.skipif(os.environ.get("D2LCV_SITE_TEST") != "1",
                                reason="the browser test of the built book runs with `make site-test`")


def _missing(reason: str) -> None:
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{reason} (CI must run the browser test)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def seen() -> dict[str, dict]:
    """What Chromium saw on every page (and a screenshot of each in _build/screenshots)."""
    if find_chromium() is None:
        _missing("no Chromium: `make browser` installs Debian's chromium (as root), or set CHROMIUM")
    if not (HTML / "index.html").exists():
        _missing(f"no built book in {HTML}: `make site-test` builds it (smoke profile) and runs this test")
    return visit_all(HTML, PAGES, screenshots=SCREENSHOTS)


@pytest.mark.parametrize("page", PAGES)
def test_page(page, seen):
    problems = page_problems(HTML, page) + rendered_problems(seen[page])
    assert not problems, f"{page}.html:\n  " + "\n  ".join(problems)


def test_equations_are_typeset_offline_by_the_mathjax_of_the_site(seen):
    """The pages were opened with the network off: MathJax came from _static/, not a CDN."""
    assert (HTML / "_static" / "mathjax" / "tex-chtml.js").is_file()
    with_math = [p for p in PAGES if seen[p]["math"]["elements"]]
    assert with_math, "no page has an equation"
    for page in with_math:
        assert seen[page]["math"]["mathjax"] and not seen[page]["math"]["unrendered"], page
        assert "_static/mathjax/" in (HTML / f"{page}.html").read_text(), page


def test_every_page_has_a_screenshot_and_notebooks_one_of_a_figure(seen):
    shots = sorted(p.name for p in SCREENSHOTS.glob("*.png"))
    assert len([s for s in shots if not s.endswith("-figure.png")]) == len(PAGES)
    figures = [p for p in PAGES if any(i["inOutput"] and i["visible"] for i in seen[p]["images"])]
    assert len([s for s in shots if s.endswith("-figure.png")]) == len(figures)


def test_a_page_broken_on_purpose_fails(seen, tmp_path):
    """A copy of the site with one chapter page broken four ways: each is reported."""
    page = next(p for p in PAGES if is_notebook(p) and any(i["inOutput"] for i in seen[p]["images"]))
    site = tmp_path / "html"
    shutil.copytree(HTML, site)
    path = site / f"{page}.html"
    text = path.read_text()
    figure = re.search(r'<div class="cell_output[^"]*">.*?<img [^>]*src="([^"]+)"', text, flags=re.DOTALL).group(1)
    (path.parent / figure).resolve().unlink()  # a deleted figure
    link = re.search(r'href="([^"#]+\.html)#([^"]+)"', text)
    text = text.replace(link.group(0), f'href="{link.group(1)}#no-such-anchor"', 1)  # a bad reference
    text = text.replace("</article>", "<p>A raw $$x^2$$ equation.</p></article>", 1)  # math the parser missed
    mathjax = re.search(r'src="[^"]*_static/mathjax/tex-chtml\.js[^"]*"', text).group(0)
    text = text.replace(mathjax, 'src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-chtml.js"')  # MathJax from a CDN
    path.write_text(text)
    with browser_context() as context:
        problems = "\n".join(page_problems(site, page) + rendered_problems(visit(context, site, page)))
    assert f"missing file: <img src='{figure}'>" in problems
    assert "image does not load" in problems
    assert "no #no-such-anchor there" in problems
    assert "raw $$ in the text" in problems
    assert "needs the network: https://cdn.jsdelivr.net/npm/mathjax@3" in problems
    assert "MathJax did not load" in problems
