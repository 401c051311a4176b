"""Checks of the built book (``_build/html``) that read its files; no browser needed.

:func:`page_problems` reads one page of the toc as written to disk and returns what a reader
would find broken, one sentence each (an empty list: nothing):

* every local file the page loads (image, script, stylesheet, font link) exists, and every
  image is non-empty;
* every internal link (cross-reference, citation, toc, download button) reaches an existing
  file and, with a ``#fragment``, an element with that id; no reference was left unresolved
  (Sphinx leaves those as a ``.xref`` outside any link);
* no raw ``$$`` is left in the text (math that the parser did not recognise);
* on a notebook page: the Colab button opens the notebook that ``make colab`` publishes for
  this page, the ``.ipynb`` download is this page's executed notebook, every figure that
  notebook produced is on the page, and every cell that calls ``plt.show()`` produced one.

:func:`rendered_problems` judges what the browser saw on the page (:mod:`d2lcv_book.browser`
collects it): console errors, failed or network requests, figures that did not load or have
no size, equations that MathJax did not typeset. Both are plain functions of their inputs,
so ``tests/test_site.py`` feeds them broken pages and checks that each problem is reported.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from urllib.parse import unquote, urlsplit

__all__ = [
    "ROOT",
    "colab_url_for",
    "is_notebook",
    "notebook_figures",
    "page_problems",
    "rendered_problems",
    "toc_pages",
]

ROOT = Path(__file__).resolve().parents[1]
IMAGE_MIMES = ("image/png", "image/svg+xml", "image/jpeg", "image/gif")
RAW_TEX = re.compile(r"\$\$|\\\(|\\\[|\\begin\{|\$\\[a-zA-Z]")
NO_TEXT = "pre, code, script, style, textarea, .math, .highlight"  # where TeX-looking text is fine


def toc_pages(root: Path = ROOT) -> list[str]:
    """Every page of ``_toc.yml`` (``root`` first), as docnames such as ``book/cnn/convolutions``."""
    import yaml

    pages: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key in ("root", "file"):
                if isinstance(node.get(key), str):
                    pages.append(node[key])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(yaml.safe_load((root / "_toc.yml").read_text()))
    return [p.removesuffix(".md") for p in pages]


def is_notebook(page: str, root: Path = ROOT) -> bool:
    """Whether the page's source is a notebook (MyST Markdown with a kernelspec)."""
    source = root / f"{page}.md"
    text = source.read_text() if source.exists() else ""
    return text.startswith("---") and "kernelspec:" in text.split("\n---", 1)[0]


def colab_url_for(page: str, root: Path = ROOT) -> str:
    """The Colab URL of the notebook that ``make colab`` publishes for ``page`` (on the branch of
    ``_config.yml``'s ``repository``: the generated ``.ipynb``, never the ``.md`` source)."""
    import yaml

    config = yaml.safe_load((root / "_config.yml").read_text())
    repo = config["repository"]
    org_repo = urlsplit(repo["url"]).path.strip("/")
    prefix = (repo.get("path_to_book") or "").strip("/")
    path = f"{prefix}/{page}.ipynb" if prefix else f"{page}.ipynb"
    colab = config["launch_buttons"]["colab_url"].rstrip("/")
    return f"{colab}/github/{org_repo}/blob/{repo.get('branch', 'main')}/{path}"


def notebook_figures(notebook: dict) -> tuple[int, list[str]]:
    """The number of figures an executed notebook (nbformat JSON) holds, and the first line of
    each code cell that calls ``plt.show()`` (unindented: always runs) yet produced none
    (a figure that was dropped)."""
    count, missing = 0, []
    for cell in notebook.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        source = "".join(cell.get("source", ""))
        images = sum(any(m in out.get("data", {}) for m in IMAGE_MIMES) for out in cell.get("outputs", []))
        count += images
        if images == 0 and re.search(r"^plt\.show\(", source, flags=re.MULTILINE):  # not in a def, if or loop
            missing.append(source.strip().splitlines()[0][:60])
    return count, missing


@lru_cache(maxsize=256)
def _soup(path: Path):
    from bs4 import BeautifulSoup

    return BeautifulSoup(path.read_text(errors="replace"), "html.parser")


@lru_cache(maxsize=256)
def _ids(path: Path) -> frozenset[str]:
    soup = _soup(path)
    return frozenset([t["id"] for t in soup.find_all(id=True)] + [t["name"] for t in soup.find_all("a", attrs={"name": True})])


def _local(ref: str) -> bool:
    scheme = urlsplit(ref).scheme
    return bool(ref) and scheme in ("", "file") and not ref.startswith("//")


def _target(page_file: Path, ref: str) -> tuple[Path, str]:
    parts = urlsplit(ref)
    path = page_file if not parts.path else (page_file.parent / unquote(parts.path)).resolve()
    return path, unquote(parts.fragment)


def _visible_text(soup) -> str:
    from copy import copy

    body = copy(soup.body or soup)
    for tag in body.select(NO_TEXT):
        tag.decompose()
    return body.get_text(" ")


def _files_and_links(page_file: Path, soup, html: Path) -> list[str]:
    problems = []
    for tag, attr in (("img", "src"), ("script", "src"), ("link", "href"), ("source", "src")):
        for el in soup.find_all(tag, attrs={attr: True}):
            ref = el[attr]
            if not _local(ref) or ref.startswith("data:"):
                continue
            path, _ = _target(page_file, ref)
            if not path.is_file():
                problems.append(f"missing file: <{tag} {attr}={ref!r}> ({path.relative_to(html) if path.is_relative_to(html) else path})")
            elif tag == "img" and path.stat().st_size == 0:
                problems.append(f"empty image file: {ref}")
    for a in soup.find_all("a", href=True):
        ref = a["href"]
        if not _local(ref) or ref in ("#", ""):
            continue
        path, fragment = _target(page_file, ref)
        if path.is_dir():
            path = path / "index.html"
        if not path.exists():
            problems.append(f"broken link {ref!r} ({a.get_text(' ', strip=True)[:40]!r}): no such file")
        elif fragment and path.suffix == ".html" and fragment not in _ids(path):
            problems.append(f"broken link {ref!r} ({a.get_text(' ', strip=True)[:40]!r}): no #{fragment} there")
    for el in soup.select(".xref"):
        if el.find_parent("a") is None and el.name != "a":
            problems.append(f"unresolved reference: {el.get_text(' ', strip=True)[:60]!r}")
    return problems


def _notebook_checks(page: str, soup, html: Path, root: Path) -> list[str]:
    problems = []
    expected = colab_url_for(page, root)
    colab = [a["href"] for a in soup.find_all("a", href=True) if "colab.research.google.com" in a["href"]]
    if colab != [expected]:
        problems.append(f"Colab button {colab or 'missing'}: expected {expected!r}")
    if not (root / f"{page}.md").exists():
        problems.append(f"Colab button: {page}.md is not in the repository, `make colab` publishes no notebook for it")
    downloads = [a["href"] for a in soup.find_all("a", href=True) if a["href"].endswith(f"_sources/{page}.ipynb")]
    if not downloads:
        problems.append(f"no .ipynb download button pointing at _sources/{page}.ipynb")
    notebook_file = html / "_sources" / f"{page}.ipynb"
    if not notebook_file.is_file():
        return problems + [f"the executed notebook _sources/{page}.ipynb is missing"]
    notebook = json.loads(notebook_file.read_text())
    problems += _same_notebook(page, notebook, root)
    count, dropped = notebook_figures(notebook)
    for first_line in dropped:
        problems.append(f"a cell calls plt.show() but its output has no figure: {first_line!r}")
    shown = soup.select(".cell_output img, .cell_output svg")
    if len(shown) < count:
        problems.append(f"the executed notebook has {count} figure(s), the page shows {len(shown)}")
    return problems


def _same_notebook(page: str, notebook: dict, root: Path) -> list[str]:
    import jupytext

    source = jupytext.read(root / f"{page}.md")
    want = ["".join(c.source).strip() for c in source.cells if c.cell_type == "code"]
    have = ["".join(c.get("source", "")).strip() for c in notebook.get("cells", []) if c.get("cell_type") == "code"]
    if want != have:
        i = next((i for i, (a, b) in enumerate(zip(have, want)) if a != b), min(len(have), len(want)))
        built = have[i][:50] if i < len(have) else "(none)"
        source_cell = want[i][:50] if i < len(want) else "(none)"
        message = (f"_sources/{page}.ipynb is not the notebook of {page}.md (stale build?): "
                   f"its code cell {i + 1} is {built!r}, the source's {source_cell!r}")
        return [message]
    if not any(c.get("outputs") for c in notebook["cells"] if c.get("cell_type") == "code"):
        return [f"_sources/{page}.ipynb was not executed: no cell has an output"]
    return []


def page_problems(html: Path, page: str, root: Path = ROOT) -> list[str]:
    """What is broken on the built page ``html/<page>.html`` (see the module docstring)."""
    html = Path(html).resolve()
    page_file = html / f"{page}.html"
    if not page_file.is_file():
        return [f"{page}.html was not built"]
    _soup.cache_clear()  # a test may rewrite a page between two calls
    _ids.cache_clear()
    soup = _soup(page_file)
    problems = _files_and_links(page_file, soup, html)
    text = _visible_text(soup)
    for match in re.finditer(r"\$\$", text):
        problems.append(f"raw $$ in the text: {text[max(0, match.start() - 30):match.end() + 30]!r}")
    if is_notebook(page, root):
        problems += _notebook_checks(page, soup, html, root)
    return problems


def rendered_problems(seen: dict) -> list[str]:
    """What is broken in what the browser saw (the dict :func:`d2lcv_book.browser.visit` returns)."""
    problems = [f"console error: {m}" for m in seen.get("console_errors", [])]
    problems += [f"script error: {m}" for m in seen.get("page_errors", [])]
    problems += [f"failed request: {r}" for r in seen.get("failed_requests", [])]
    problems += [f"needs the network: {r}" for r in seen.get("network_requests", [])]
    for img in seen.get("images", []):
        if not img["naturalWidth"]:
            problems.append(f"image does not load: {img['src']}")
        elif img["inOutput"] and img["visible"] and not (img["width"] and img["height"]):
            problems.append(f"figure has no size on the page: {img['src']}")
    math = seen.get("math", {})
    if math.get("elements") and not math.get("mathjax"):
        problems.append(f"MathJax did not load: {math['elements']} equations are raw TeX")
    for tex in math.get("unrendered", []):
        problems.append(f"equation not typeset: {tex!r}")
    for err in math.get("errors", []):
        problems.append(f"MathJax error: {err!r}")
    text = seen.get("text", "")
    for match in RAW_TEX.finditer(text):
        problems.append(f"raw TeX in the visible text: {text[max(0, match.start() - 30):match.end() + 30]!r}")
    return problems
