"""Build tooling for the course book (needs the ``book`` extra): ``python -m d2lcv_book``.

Commands (the Makefile wraps them; see README):

``build``
    Build the whole book into ``_build/html``, executing every notebook in the active
    profile. Executed notebooks are cached per (profile, package version, package source
    hash), so changing the package or the profile re-executes what depends on it, and
    an unchanged book rebuilds in seconds.
``chapter PATH [--force]``
    Build one chapter (with the front and back matter) into ``_build/chapters/<path>/_build/html``,
    executing only its notebook.
``colab [--out DIR]``
    Write ``.ipynb`` files for publishing (Colab), each starting with a cell that
    installs this release of ``d2lcv`` when it runs on Colab.

The module is also a Sphinx extension (listed in ``_config.yml``): it points each page's
"Open in Colab" button at the generated ``.ipynb`` on the ``notebooks`` branch instead of
the ``.md`` source, which Colab cannot open.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
from pathlib import Path

from d2lcv import __version__
from d2lcv.config import get_profile

__all__ = ["ROOT", "notebooks", "cache_key", "colab_notebook", "colab_url", "main", "setup"]

ROOT = Path(__file__).resolve().parents[1]
COLAB_MARKER = "d2lcv-colab-setup"


def _toc_files(toc: dict | list) -> list[str]:
    """The ``file`` entries of a jupyter-book toc (or of a list of its entries), in order."""
    files: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if "file" in node:
                files.append(node["file"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    if isinstance(toc, dict) and ("parts" in toc or "chapters" in toc):
        toc = toc.get("parts", toc.get("chapters", []))
    walk(toc)
    return files


def notebooks(root: Path = ROOT) -> list[Path]:
    """The chapter notebooks listed in ``_toc.yml`` (MyST Markdown files under ``book/<chapter>/``)."""
    import yaml

    toc = yaml.safe_load((root / "_toc.yml").read_text())
    paths = [root / f"{f}.md" for f in _toc_files(toc)]
    return [p for p in paths if p.parent.parent == root / "book"]


def cache_key(profile: str | None = None) -> str:
    """``<profile>-d2lcv<version>-<hash of the package source>``: the execution-cache folder name."""
    digest = hashlib.sha256()
    # the package, and the one tooling module whose output is on the pages (source.show)
    for path in sorted([*(ROOT / "d2lcv").rglob("*.py"), ROOT / "d2lcv_book" / "source.py"]):
        digest.update(path.relative_to(ROOT).as_posix().encode())
        digest.update(path.read_bytes())
    return f"{profile or get_profile()}-d2lcv{__version__}-{digest.hexdigest()[:10]}"


def _config_for(profile: str) -> Path:
    """``_config.yml`` with the execution cache moved to this profile's and package's folder."""
    import yaml

    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    config["execute"]["cache"] = str(ROOT / "_build" / ".jupyter_cache" / cache_key(profile))
    config["bibtex_bibfiles"] = [str(ROOT / f) for f in config.get("bibtex_bibfiles", [])]
    out = ROOT / "_build" / f"_config.{profile}.yml"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(config, sort_keys=False))
    return out


def _jupyter_book(*args: str) -> int:
    exe = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(exe) if exe.exists() else "jupyter-book", "build", *args]
    print("+", " ".join(cmd), flush=True)
    return subprocess.call(cmd, cwd=ROOT)


def _kernel_environment(profile: str) -> None:
    """What the notebook kernels inherit: the profile, and no progress bars (the executed
    notebooks are pages to read; training curves show the progress there)."""
    os.environ["D2LCV_PROFILE"] = profile
    os.environ.setdefault("TQDM_DISABLE", "1")
    # A non-interactive backend (MPLBACKEND=Agg, as `make test` sets) would make plt.show() a
    # no-op and silently drop every figure from the pages: the kernels use the inline backend.
    os.environ.pop("MPLBACKEND", None)


def build(profile: str | None = None) -> int:
    profile = profile or get_profile()
    _kernel_environment(profile)
    config = _config_for(profile)
    print(f"Building the book in the '{profile}' profile (cache {cache_key(profile)})", flush=True)
    return _jupyter_book(".", "--config", str(config), "--toc", "_toc.yml", "-W", "--keep-going")


def chapter(path: str, profile: str | None = None, force: bool = False) -> int:
    """Build the book with just the chapter holding ``path`` (with its sections, plus the
    front and back matter), into
    ``_build/chapters/<path>/_build/html``; only that notebook is executed (from the
    cache when nothing changed, unless ``force``)."""
    import yaml

    page = Path(path).resolve()
    if page not in notebooks():
        listed = ", ".join(p.relative_to(ROOT).as_posix() for p in notebooks())
        raise SystemExit(f"chapter: {path!r} is not a chapter notebook listed in _toc.yml ({listed})")
    profile = profile or get_profile()
    _kernel_environment(profile)
    rel = page.relative_to(ROOT).with_suffix("").as_posix()
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    for part in toc["parts"]:  # keep the front and back matter, and the chapter that holds `rel`
        part["chapters"] = [c for c in part["chapters"] if c["file"].count("/") != 2 or rel in _toc_files([c])]
    toc["parts"] = [part for part in toc["parts"] if part["chapters"]]
    out = ROOT / "_build" / "chapters" / rel
    out.mkdir(parents=True, exist_ok=True)
    (out / "_toc.yml").write_text(yaml.safe_dump(toc, sort_keys=False))
    config = _config_for(profile)
    if force:
        settings = yaml.safe_load(config.read_text())
        settings["execute"]["execute_notebooks"] = "force"
        config.write_text(yaml.safe_dump(settings, sort_keys=False))
    return _jupyter_book(".", "--config", str(config), "--toc", str(out / "_toc.yml"),
                         "--path-output", str(out), "-W", "--keep-going")


def colab_notebook(path: Path, version: str = __version__):
    """The notebook at ``path`` as an ``nbformat`` notebook for Colab, with a first setup cell."""
    import jupytext
    import nbformat

    nb = jupytext.read(path)
    setup = nbformat.v4.new_code_cell(
        "# Colab only: install the d2lcv release this notebook belongs to (locally, see the README).\n"
        "import subprocess, sys\n"
        "if 'google.colab' in sys.modules:\n"
        f"    subprocess.run([sys.executable, '-m', 'pip', 'install', '-q', 'd2lcv=={version}'], check=True)\n",
        metadata={"tags": [COLAB_MARKER]},
    )
    nb.cells.insert(0, setup)
    nb.metadata.pop("jupytext", None)
    nb.metadata["colab"] = {"provenance": []}
    return nb


def colab(out: Path) -> int:
    import nbformat

    for path in notebooks():
        target = out / path.relative_to(ROOT).with_suffix(".ipynb")
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(colab_notebook(path), target)
        print(target.relative_to(out))
    return 0


def colab_url(url: str) -> str:
    """A Colab launch URL for a ``.md`` notebook, rewritten to its published ``.ipynb``."""
    return url[: -len(".md")] + ".ipynb" if url.endswith(".md") else url


def _fix_colab_buttons(app, pagename, templatename, context, doctree) -> None:
    for group in context.get("header_buttons", []):
        for button in group.get("buttons", []) if isinstance(group, dict) else []:
            if button.get("text") == "Colab" and "url" in button:
                button["url"] = colab_url(button["url"])


def setup(app) -> dict:
    """Sphinx extension entry point (runs after sphinx-book-theme adds its launch buttons)."""
    app.connect("html-page-context", _fix_colab_buttons, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": __version__}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m d2lcv_book", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("build", help="build the whole book into _build/html")
    p.add_argument("--profile", choices=("smoke", "cpu", "full"))
    p = sub.add_parser("chapter", help="build and execute one chapter page")
    p.add_argument("path")
    p.add_argument("--profile", choices=("smoke", "cpu", "full"))
    p.add_argument("--force", action="store_true", help="re-execute even if the cache is current")
    p = sub.add_parser("colab", help="write .ipynb files for Colab")
    p.add_argument("--out", type=Path, default=ROOT / "_build" / "colab")
    args = parser.parse_args(argv)
    if args.command == "build":
        return build(args.profile)
    if args.command == "chapter":
        return chapter(args.path, args.profile, args.force)
    return colab(args.out)


if __name__ == "__main__":
    raise SystemExit(main())
