"""Sphinx extension (listed in ``_config.yml``): what the theme and MyST-NB put on every page,
fixed where the browser test of the built book (``tests/site``) found it broken.

* sphinx-thebe adds its inline settings script (``const THEBE_JS_URL = ...``) after the HTML
  builder has started, and Sphinx then lists that script twice (once under the file name
  ``None``, once under ``''``): the second copy throws "Identifier 'THEBE_JS_URL' has already
  been declared" on every page. Each page keeps the first of identical scripts.
* pydata-sphinx-theme logs "Got invalid theme mode" on a reader's first visit when the page
  has no ``default_mode`` (an ``html_context`` value): it is ``auto`` (the reader's system
  setting) unless ``_config.yml`` sets one.
* The ``.ipynb`` download button serves ``_sources/<page>.ipynb``, which MyST-NB writes
  *without outputs* when the notebook's outputs came from the execution cache rather than a
  fresh run (any rebuild, and CI with a restored cache). That copy gets the cached outputs.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["executed_download", "setup", "unique_scripts"]


def unique_scripts(scripts: list) -> list:
    """``scripts`` (Sphinx's ``_JavaScript`` assets) without repeats, in order: two are the
    same when their file (``None`` and ``''`` alike) and attributes (inline body included) are."""
    seen, unique = set(), []
    for script in scripts:
        key = (getattr(script, "filename", script) or "", repr(sorted(getattr(script, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    return unique


def executed_download(notebook_file: Path, cache_path: str | Path | None) -> bool:
    """Give the downloadable ``notebook_file`` the outputs of its run in the jupyter-cache at
    ``cache_path`` when it has none. Returns whether the file was rewritten."""
    import nbformat

    notebook = nbformat.read(notebook_file, as_version=4)
    if not cache_path or not Path(cache_path).is_dir() or any(
            cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code"):
        return False
    from jupyter_cache import get_cache

    try:
        _, executed = get_cache(str(cache_path)).merge_match_into_notebook(notebook)
    except KeyError:  # not in the cache: the check of the built book reports the notebook
        return False
    nbformat.write(executed, notebook_file)
    return True


def _fix_page(app, pagename, templatename, context, doctree) -> None:
    if "script_files" in context:
        context["script_files"] = unique_scripts(list(context["script_files"]))
    if not context.get("default_mode"):
        context["default_mode"] = "auto"
    notebook_file = Path(app.outdir) / "_sources" / context.get("ipynb_source", "")
    if context.get("ipynb_source") and notebook_file.is_file():  # copied there by sphinx-book-theme
        executed_download(notebook_file, getattr(app.config, "nb_execution_cache_path", None))


def setup(app) -> dict:
    app.connect("html-page-context", _fix_page, priority=1000)  # after the theme's handlers
    return {"parallel_read_safe": True, "parallel_write_safe": True}
