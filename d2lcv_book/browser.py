"""The built book in a real browser: Debian's headless Chromium, driven by Playwright.

Pages are opened from disk (``file://``) with the network off, as a reader without internet
opens ``_build/html/index.html``; a page that needs anything from the network (MathJax from a
CDN, a web font) fails. :func:`visit` records what a reader would meet: console and script
errors, requests that failed, requests to the network, every image with its size, and whether
MathJax typeset every equation. :func:`d2lcv_book.site.rendered_problems` judges the record.

The browser is never downloaded (``playwright install`` is not used): :func:`find_chromium`
takes ``$CHROMIUM``, else the distribution's ``chromium`` (``make browser`` installs it).

Command line (``make screenshots`` wraps the second)::

    python -m d2lcv_book.browser check [--html _build/html]
    python -m d2lcv_book.browser screenshots [--html _build/html] [--out _build/screenshots]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from .site import ROOT, page_problems, rendered_problems, toc_pages

__all__ = ["browser_context", "find_chromium", "main", "screenshot_name", "visit", "visit_all"]

CANDIDATES = ("/usr/lib/chromium/chromium", "chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# As root (CI) Chromium needs --no-sandbox; the rest keeps it from calling home on a closed network.
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-quic", "--no-first-run"]
VIEWPORT = {"width": 1280, "height": 900}

# Runs in the page once it has loaded: waits for MathJax, images and fonts, then reports.
SNAPSHOT = """async () => {
  const wait = (p, ms) => Promise.race([p, new Promise(r => setTimeout(r, ms))]);
  const mathjax = !!(window.MathJax && MathJax.startup && MathJax.startup.promise);
  if (mathjax) await wait(MathJax.startup.promise, 20000);
  for (const img of document.images) if (img.loading === 'lazy') img.loading = 'eager';
  await wait(Promise.all([...document.images].map(img => img.complete ? null :
    new Promise(r => { img.addEventListener('load', r); img.addEventListener('error', r); }))), 10000);
  await wait(document.fonts.ready, 5000);
  const images = [...document.images].map(img => {
    const box = img.getBoundingClientRect();
    return {src: img.getAttribute('src'), naturalWidth: img.naturalWidth, width: box.width, height: box.height,
            inOutput: !!img.closest('.cell_output'), visible: img.checkVisibility ? img.checkVisibility() : true};
  });
  const math = [...document.querySelectorAll('.math')];
  const unrendered = math.filter(m => !m.querySelector('mjx-container')).map(m => m.textContent.trim().slice(0, 80));
  const errors = [...document.querySelectorAll('mjx-merror')].map(e => e.getAttribute('data-mjx-error') || e.textContent);
  const main = (document.querySelector('main') || document.body).cloneNode(true);
  main.querySelectorAll('pre, code, script, style, textarea, .highlight, mjx-container, mjx-assistive-mml')
    .forEach(e => e.remove());
  return {images, math: {elements: math.length, mathjax, unrendered, errors}, text: main.textContent};
}"""


def find_chromium() -> str | None:
    """The Chromium executable to drive: ``$CHROMIUM``, else the first of :data:`CANDIDATES` found."""
    if os.environ.get("CHROMIUM"):
        return shutil.which(os.environ["CHROMIUM"])
    for name in CANDIDATES:
        if shutil.which(name):
            return shutil.which(name)
    return None


@contextmanager
def browser_context(offline: bool = True):
    """A fresh Chromium context (network off unless ``offline=False``), closed afterwards."""
    from playwright.sync_api import sync_playwright

    executable = find_chromium()
    if executable is None:
        raise RuntimeError("no Chromium found: `make browser` installs Debian's chromium (or set CHROMIUM)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=FLAGS)
        context = browser.new_context(offline=offline, viewport=VIEWPORT, device_scale_factor=1)
        try:
            yield context
        finally:
            context.close()
            browser.close()


def _short(url: str, html: Path) -> str:
    path = urlsplit(url).path
    prefix = html.resolve().as_posix() + "/"
    return path[len(prefix):] if url.startswith("file:") and path.startswith(prefix) else url


def visit(context, html: Path, page: str, screenshot: Path | None = None) -> dict:
    """Open ``html/<page>.html`` and record what happened (see the module docstring). With
    ``screenshot``, write the top of the page there and the first figure beside it (``-figure``)."""
    html = Path(html).resolve()
    seen: dict = {"console_errors": [], "page_errors": [], "failed_requests": [], "network_requests": []}

    def on_console(message) -> None:
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            where = message.location.get("url", "")
            seen["console_errors"].append(f"{message.text} ({_short(where, html)})" if where else message.text)

    def on_failed(request) -> None:
        if request.url.startswith("file:"):
            seen["failed_requests"].append(f"{_short(request.url, html)} ({request.failure})")

    def on_request(request) -> None:
        if urlsplit(request.url).scheme not in ("file", "data", "blob", "about", "chrome-extension"):
            seen["network_requests"].append(request.url)

    tab = context.new_page()
    tab.on("console", on_console)
    tab.on("pageerror", lambda error: seen["page_errors"].append(str(error)))
    tab.on("requestfailed", on_failed)
    tab.on("request", on_request)
    try:
        tab.goto((html / f"{page}.html").as_uri(), wait_until="load", timeout=60_000)
        seen.update(tab.evaluate(SNAPSHOT))
        if screenshot is not None:
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            tab.screenshot(path=str(screenshot))
            figure = tab.locator(".cell_output img:visible").first
            if figure.count():
                figure.screenshot(path=str(screenshot.with_name(screenshot.stem + "-figure.png")), timeout=20_000)
    finally:
        tab.close()
    return seen


def screenshot_name(index: int, page: str) -> str:
    return f"{index:02d}-{page.replace('/', '-')}.png"


def visit_all(html: Path, pages: list[str] | None = None, screenshots: Path | None = None,
              offline: bool = True) -> dict[str, dict]:
    """:func:`visit` every page of the toc (or ``pages``) in one browser, in toc order."""
    pages = toc_pages() if pages is None else pages
    if screenshots is not None:
        shutil.rmtree(screenshots, ignore_errors=True)
    seen = {}
    with browser_context(offline=offline) as context:
        for index, page in enumerate(pages, 1):
            shot = None if screenshots is None else Path(screenshots) / screenshot_name(index, page)
            seen[page] = visit(context, html, page, shot)
    return seen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m d2lcv_book.browser", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("check", "screenshots"))
    parser.add_argument("--html", type=Path, default=ROOT / "_build" / "html")
    parser.add_argument("--out", type=Path, default=ROOT / "_build" / "screenshots")
    args = parser.parse_args(argv)
    if not (args.html / "index.html").exists():
        print(f"no built book in {args.html}: run `make book` first", file=sys.stderr)
        return 2
    pages = toc_pages()
    seen = visit_all(args.html, pages, screenshots=args.out if args.command == "screenshots" else None)
    if args.command == "screenshots":
        shots = sorted(args.out.glob("*.png"))
        print(f"{len(shots)} screenshots of {len(pages)} pages in {args.out}")
        return 0
    failed = 0
    for page in pages:
        problems = page_problems(args.html, page) + rendered_problems(seen[page])
        failed += bool(problems)
        print(f"{'FAIL' if problems else 'ok  '} {page}")
        for problem in problems:
            print(f"     {problem}")
    print(f"{len(pages) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
