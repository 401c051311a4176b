"""Run the chapter notebooks (MyST Markdown, paired with jupytext) under nbval.

``pytest --nbval-lax book`` collects every ``book/<chapter>/*.md`` that has a jupytext
header, converts it in memory and runs it cell by cell in a fresh kernel whose working
directory is the chapter folder. No ``.ipynb`` is written.

Markdown notebooks store no outputs, so a cell whose output must be checked says what it
expects in its metadata (YAML block of the ``code-cell`` directive)::

    ```{code-cell} ipython3
    ---
    tags: [nbval-check-output]
    expect: |
      55
    ---
    print(conv_output_size(224, 11, stride=4, padding=2))
    ```

The expected text becomes the stored ``stdout`` output that nbval compares against.
"""

from __future__ import annotations

from pathlib import Path

import jupytext
import nbformat
import nbval.plugin


def load_markdown_notebook(path: str | Path) -> nbformat.NotebookNode:
    nb = jupytext.read(path)
    code_cells = [cell for cell in nb.cells if cell.cell_type == "code"]
    for count, cell in enumerate(code_cells, start=1):
        cell.outputs = []
        cell.execution_count = count  # nbval only compares the outputs of cells marked as run
        expect = cell.metadata.get("expect")
        if expect is not None:
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=str(expect))]
    return nb


class _NbformatForMarkdown:
    """Stands in for the ``nbformat`` module inside nbval, so it can read ``.md`` notebooks."""

    def __getattr__(self, name: str):
        return getattr(nbformat, name)

    @staticmethod
    def read(path, as_version=4, **kwargs):
        if str(path).endswith(".md"):
            return load_markdown_notebook(path)
        return nbformat.read(path, as_version=as_version, **kwargs)


nbval.plugin.nbformat = _NbformatForMarkdown()


def is_notebook(path: Path) -> bool:
    """A chapter notebook: ``book/<chapter>/<name>.md`` starting with a jupytext header."""
    if path.suffix != ".md" or path.parent.parent != Path(__file__).parent:
        return False
    head = path.read_text(encoding="utf-8")[:600]
    return head.startswith("---") and "jupytext:" in head


def pytest_collect_file(file_path: Path, parent):
    opt = parent.config.option
    if (opt.nbval or opt.nbval_lax) and is_notebook(file_path):
        return nbval.plugin.IPyNbFile.from_parent(parent, path=file_path)
    return None


# Wall time per notebook (the sum of its cells), printed at the end of the test report, so the
# smoke budget (60 s per notebook) can be checked in every CI log.
_NOTEBOOK_SECONDS: dict[str, float] = {}


def pytest_runtest_logreport(report):
    path = report.nodeid.split("::", 1)[0]
    if path.endswith(".md") and report.when in ("setup", "call", "teardown"):
        _NOTEBOOK_SECONDS[path] = _NOTEBOOK_SECONDS.get(path, 0.0) + report.duration


def pytest_terminal_summary(terminalreporter):
    if not _NOTEBOOK_SECONDS:
        return
    terminalreporter.section("notebook wall times")
    for path, seconds in sorted(_NOTEBOOK_SECONDS.items(), key=lambda kv: -kv[1]):
        terminalreporter.write_line(f"{seconds:8.1f} s  {path}")
