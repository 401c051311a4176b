"""The book's structure: table of contents, notebook headers, build tooling, Colab notebooks."""

import re
from pathlib import Path

import jupytext
import pytest
import yaml

from d2lcv import __version__
from d2lcv_book import build as book

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"


def _toc_entries() -> set[str]:
    return set(book._toc_files(yaml.safe_load((ROOT / "_toc.yml").read_text())))


def _chapter_markdown() -> list[Path]:
    return sorted(BOOK.glob("*/*.md"))


def test_every_chapter_notebook_is_in_the_toc_and_back():
    on_disk = {p.relative_to(ROOT).with_suffix("").as_posix() for p in _chapter_markdown()}
    in_toc = {entry for entry in _toc_entries() if entry.count("/") == 2}  # book/<chapter>/<name>
    assert on_disk, "no chapter notebooks found under book/<chapter>/"
    assert on_disk - in_toc == set(), f"notebooks missing from _toc.yml: {sorted(on_disk - in_toc)}"
    assert in_toc - on_disk == set(), f"_toc.yml entries with no file: {sorted(in_toc - on_disk)}"


def test_every_toc_entry_exists():
    missing = [e for e in _toc_entries() if not (ROOT / f"{e}.md").exists()]
    assert missing == []


@pytest.mark.parametrize("path", _chapter_markdown(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_notebook_has_jupytext_header_and_kernel(path):
    text = path.read_text(encoding="utf-8")
    assert text.startswith("---\njupytext:"), f"{path} lacks the jupytext header"
    nb = jupytext.reads(text, fmt="md:myst")
    assert nb.metadata["kernelspec"]["name"] == "python3"
    assert nb.metadata["jupytext"]["text_representation"]["format_name"] == "myst"
    assert any(c.cell_type == "code" for c in nb.cells)


@pytest.mark.parametrize("path", _chapter_markdown(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_notebook_takes_its_sizes_from_the_profile(path):
    text = path.read_text(encoding="utf-8")
    assert text.count("d2lcv.config.by_profile(") == 1, "one visible profile cell per notebook"


_GLUE_USE = re.compile(r"\{glue:(?:text|)\}`([A-Za-z_][\w]*)(?::[^`]*)?`")
_GLUE_CALL = re.compile(r"\bglue\(\s*([^,]+),")
_NAMES = re.compile(r"""["']([A-Za-z_]\w*)["']|\b([A-Za-z_]\w*)=""")


def _glued_patterns(nb) -> list[re.Pattern]:
    """What a page's code cells glue: literal keys exactly, f-strings and ``key + "_se"`` as
    patterns, and a variable key as any name the code spells as a string or a keyword."""
    code = "\n".join(cell.source for cell in nb.cells if cell.cell_type == "code")
    names = {a or b for a, b in _NAMES.findall(code)}
    patterns = []
    for arg in _GLUE_CALL.findall(code):
        arg = arg.strip()
        literal = re.fullmatch(r"""(f?)(["'])(.*)\2""", arg)
        if literal:
            text = re.escape(literal[3])
            patterns.append(re.compile(re.sub(r"\\\{[^}]*\\\}", r"\\w+", text) if literal[1] else text))
        elif re.fullmatch(r"""\w+\s*\+\s*(["'])\w+\1""", arg):  # key + "_suffix"
            patterns.append(re.compile(r"\w+" + re.escape(arg.split("+")[1].strip()[1:-1])))
        else:  # a variable: any name the code spells
            patterns += [re.compile(re.escape(n)) for n in names]
    return patterns


@pytest.mark.parametrize("path", _chapter_markdown(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_glued_number_in_the_prose_is_glued_by_the_page(path):
    # numbers in the prose come from the run: each {glue:text}`key` needs a glue("key", ...) in a code cell
    nb = jupytext.reads(path.read_text(encoding="utf-8"), fmt="md:myst")
    used = {key for cell in nb.cells if cell.cell_type == "markdown" for key in _GLUE_USE.findall(cell.source)}
    patterns = _glued_patterns(nb)
    missing = sorted(key for key in used if not any(p.fullmatch(key) for p in patterns))
    assert missing == [], f"{path.name}: prose uses glue keys that no cell glues: {missing}"


# Numbers with two or more decimals in the prose look like results; results are glued from the
# run. The ones below are constants (thresholds, settings) or numbers quoted from papers.
_PROSE_CONSTANTS = {
    "augmentation/experiment.md": {"0.99"},  # a threshold
    "detection/anchors.md": {"0.05"},  # an IoU in a hand-made exercise matrix
    "detection/boxes.md": {"0.95"},  # COCO's IoU range
    "detection/map.md": {"0.01", "0.55", "0.95"},  # COCO's recall and IoU steps
    "detection/nms.md": {"0.45"},  # SSD's NMS threshold
    "detection/ssd.md": {"0.01"},  # the score threshold for mAP
    "finetune/finetune.md": {"0.85", "0.94", "1.28"},  # d2l's hot dog results; ImageNet's size
    "finetune/reuse.md": {"0.25"},  # chance for four classes
    "yolo/freebies.md": {"80.25", "80.81", "81.23", "81.69", "82.14", "83.68", "64.26",
                         "0.56", "0.42", "0.46", "0.45", "1.54"},  # Zhang et al.'s table
    "style/fast.md": {"0.015", "0.05", "0.21", "15.86", "214.44", "54.85"},  # Johnson et al.'s table
}
_RESULT_LIKE = re.compile(r"(?<![\w.])\d+\.\d{2,}(?![\w.])")


def _prose(nb) -> str:
    text = "\n".join(cell.source for cell in nb.cells if cell.cell_type == "markdown")
    for pattern in (r"```.*?```", r"\$\$.*?\$\$", r"\$[^$]*\$", r"`[^`]*`"):  # code, math, roles
        text = re.sub(pattern, "", text, flags=re.S)
    return text


@pytest.mark.parametrize("path", _chapter_markdown(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_result_like_numbers_in_the_prose_are_glued(path):
    nb = jupytext.reads(path.read_text(encoding="utf-8"), fmt="md:myst")
    typed = set(_RESULT_LIKE.findall(_prose(nb))) - _PROSE_CONSTANTS.get(path.relative_to(BOOK).as_posix(), set())
    assert typed == set(), f"{path.name}: numbers typed into the prose (glue them from the run): {sorted(typed)}"


def test_glue_key_check_can_fail():
    nb = jupytext.reads("```{code-cell} ipython3\nglue(f\"acc_{name}\", 1)\n```\n\n{glue:text}`acc_x:.2f` "
                        "{glue:text}`other`\n", fmt="md:myst")
    patterns = _glued_patterns(nb)
    assert any(p.fullmatch("acc_x") for p in patterns) and not any(p.fullmatch("other") for p in patterns)


# Code that a page shows with source.show is rendered in blocks that cut lines at the page edge.
SHOWN_WIDTH = 88
_SHOW = re.compile(r"source\.show\(([\w.]+)(?:, docstring=(True|False))?\)")
_D2LCV_IMPORT = re.compile(r"(?m)^from (?:d2lcv[\w.]*|d2lcv_book) import [\w, ]+$")
# book/yolo/ is being written right now: its pages may show objects the package does not have yet
_BEING_WRITTEN = {"yolo"}


def _shown(text: str) -> list[tuple[str, object, bool]]:
    """Each ``source.show(expr[, docstring=...])`` in a page's text as ``(expr, object,
    docstring)``, resolved with the page's ``from d2lcv... import ...`` lines (None: unresolved)."""
    namespace: dict = {}
    exec("import d2lcv", namespace)
    for line in _D2LCV_IMPORT.findall(text):
        try:
            exec(line, namespace)
        except ImportError:  # its names stay unresolved
            pass
    shown = []
    for expr, docstring in _SHOW.findall(text):
        try:
            obj = eval(expr, namespace)
        except (AttributeError, NameError):
            obj = None
        shown.append((expr, obj, docstring != "False"))
    return shown


def _long_shown_lines(obj, docstring: bool) -> list[str]:
    from d2lcv_book import source

    return [line for line in source.source(obj, docstring=docstring).splitlines() if len(line) > SHOWN_WIDTH]


@pytest.mark.parametrize("path", _chapter_markdown(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_shown_source_fits_the_code_blocks(path):
    text = path.read_text(encoding="utf-8")
    shown = _shown(text)
    assert len(shown) == text.count("source.show("), f"{path.name}: a source.show call the test cannot read"
    unresolved = [expr for expr, obj, _ in shown if obj is None]
    if path.parent.name not in _BEING_WRITTEN:
        assert unresolved == [], f"{path.name}: source.show of names that do not resolve: {unresolved}"
    long = {expr: _long_shown_lines(obj, docstring) for expr, obj, docstring in shown if obj is not None}
    long = {expr: lines for expr, lines in long.items() if lines}
    assert long == {}, f"{path.name}: shown lines over {SHOWN_WIDTH} columns (wrap them in the package): {long}"


def _wide_example():
    """A docstring line that runs past the right edge of the book's code blocks (88 columns wide)."""
    return 1


def test_shown_width_check_can_fail():
    assert _long_shown_lines(_wide_example, docstring=True) == [f'    """{_wide_example.__doc__}"""']
    assert _long_shown_lines(_wide_example, docstring=False) == []
    page = "from d2lcv import ops\n\nsource.show(ops.corr2d, docstring=False)\nsource.show(ops.not_there)\n"
    (expr, obj, docstring), missing = _shown(page)
    assert (expr, docstring, missing[1]) == ("ops.corr2d", False, None) and obj.__name__ == "corr2d"


def test_no_generated_notebooks_are_tracked():
    import subprocess

    tracked = subprocess.run(["git", "ls-files", "*.ipynb"], cwd=ROOT, capture_output=True, text=True).stdout
    assert tracked.strip() == ""


def test_notebooks_listed_for_tooling():
    assert set(book.notebooks()) == set(_chapter_markdown())


def test_cache_key_has_profile_version_and_source_hash():
    key = book.cache_key("cpu")
    assert key.startswith(f"cpu-d2lcv{__version__}-")
    assert book.cache_key("smoke") != key
    assert key == book.cache_key("cpu")  # stable


def test_generated_config_moves_the_cache(tmp_path, monkeypatch):
    config = yaml.safe_load(book._config_for("smoke").read_text())
    assert config["execute"]["cache"].endswith(book.cache_key("smoke"))
    assert config["execute"]["execute_notebooks"] == "cache"
    assert Path(config["bibtex_bibfiles"][0]).exists()


def test_config_fails_the_build_on_errors():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["execute"]["allow_errors"] is False
    assert config["sphinx"]["config"]["nb_execution_raise_on_error"] is True
    assert {".venv/*", "data/*", "tests/*"} <= set(config["exclude_patterns"])
    assert config["launch_buttons"]["colab_url"] == "https://colab.research.google.com"
    assert "sphinx_exercise" in config["sphinx"]["extra_extensions"]


def test_colab_notebook_installs_the_release(tmp_path):
    path = _chapter_markdown()[0]
    nb = book.colab_notebook(path, version="9.9.9")
    first = nb.cells[0]
    assert first.cell_type == "code" and book.COLAB_MARKER in first.metadata["tags"]
    assert "'d2lcv==9.9.9'" in first.source and "google.colab" in first.source
    assert "jupytext" not in nb.metadata
    # the rest of the notebook is the chapter, unchanged
    assert [c.source for c in nb.cells[1:]] == [c.source for c in jupytext.read(path).cells]


def test_colab_command_writes_every_notebook(tmp_path):
    assert book.main(["colab", "--out", str(tmp_path)]) == 0
    written = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.ipynb"))
    assert written == sorted(p.relative_to(ROOT).with_suffix(".ipynb").as_posix() for p in _chapter_markdown())


def test_colab_button_points_at_the_published_notebook():
    url = "https://colab.research.google.com/github/d2lcv/d2lcv/blob/notebooks/book/cnn/convolutions.md"
    assert book.colab_url(url) == url[:-3] + ".ipynb"
    context = {"header_buttons": [{"type": "group", "buttons": [{"text": "Colab", "url": url}]}]}
    book._fix_colab_buttons(None, "book/cnn/convolutions", None, context, None)
    assert context["header_buttons"][0]["buttons"][0]["url"].endswith("convolutions.ipynb")


def _book_conftest():
    import importlib.util

    spec = importlib.util.spec_from_file_location("book_conftest", BOOK / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_nbval_reads_markdown_notebooks_with_expected_outputs(tmp_path):
    chapter = tmp_path / "book" / "demo"
    chapter.mkdir(parents=True)
    header = _chapter_markdown()[0].read_text().split("---\n", 2)[1]
    page = chapter / "page.md"
    page.write_text(
        f"---\n{header}---\n\n# Demo\n\n"
        "```{code-cell} ipython3\n---\ntags: [nbval-check-output]\nexpect: |\n  3\n---\nprint(1 + 2)\n```\n\n"
        "```{code-cell} ipython3\nx = 1\n```\n"
    )
    conftest = _book_conftest()
    nb = conftest.load_markdown_notebook(page)
    checked, plain = [c for c in nb.cells if c.cell_type == "code"]
    assert checked.outputs == [{"output_type": "stream", "name": "stdout", "text": "3\n"}]
    assert checked.execution_count == 1 and plain.execution_count == 2 and plain.outputs == []
    assert "nbval-check-output" in checked.metadata["tags"]


def test_only_chapter_notebooks_are_collected():
    conftest = _book_conftest()
    assert all(conftest.is_notebook(p) for p in _chapter_markdown())
    assert not conftest.is_notebook(BOOK / "intro.md")
    assert not conftest.is_notebook(ROOT / "README.md")


def test_chapter_builds_only_that_chapter(monkeypatch):
    calls = []
    monkeypatch.setattr(book, "_jupyter_book", lambda *args: calls.append(args) or 0)
    monkeypatch.delenv("TQDM_DISABLE", raising=False)  # chapter() sets both for its kernels;
    monkeypatch.setenv("D2LCV_PROFILE", "smoke")  # monkeypatch restores them afterwards
    full_toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    entries = [c for part in full_toc["parts"] for c in part["chapters"] if c["file"].count("/") == 2]
    for entry in entries:  # a chapter, or one of its sections, selects the chapter with its sections
        for target in book._toc_files([entry]):
            calls.clear()
            assert book.chapter(str(ROOT / f"{target}.md"), profile="smoke", force=True) == 0
            args = calls[0]
            toc = yaml.safe_load(Path(args[args.index("--toc") + 1]).read_text())
            files = book._toc_files(toc)
            assert [f for f in files if f.count("/") == 2] == book._toc_files([entry])
    assert "book/references" in files and toc["root"] == "book/intro"
    config = yaml.safe_load(Path(args[args.index("--config") + 1]).read_text())
    assert config["execute"]["execute_notebooks"] == "force"
    assert "-W" in args


def test_chapter_rejects_a_page_that_is_not_a_chapter():
    with pytest.raises(SystemExit, match="is not a chapter notebook listed in _toc.yml"):
        book.chapter(str(BOOK / "intro.md"), profile="smoke")


def test_kernel_environment_keeps_figures(monkeypatch):
    """A build started with MPLBACKEND=Agg must not pass it to the kernels (figures would vanish)."""
    import os

    from d2lcv_book import build as book

    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.delenv("D2LCV_PROFILE", raising=False)
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    book._kernel_environment("smoke")

    assert "MPLBACKEND" not in os.environ
    assert os.environ["D2LCV_PROFILE"] == "smoke"
