"""The package's structure rules (see the ``d2lcv`` package docstring), checked on every module.

* no module is over 300 lines (data tables excepted);
* every module has an ``__all__`` that lists exactly its public functions and classes;
* imports go down the layers of ``d2lcv.LAYERS`` (or stay inside a subpackage), and the
  three peers of layer 4 (models, losses, metrics) do not import each other;
* no module imports another module's private (``_name``) objects;
* importing any module changes no global state (random generators, matplotlib, torch
  flags and threads).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import d2lcv

PACKAGE = Path(d2lcv.__file__).parent
MAX_LINES = 300
DATA_TABLES = {"data/registry.py"}  # tables of URLs and checksums may be longer


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def _name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


MODULES = _modules()
IDS = [p.relative_to(PACKAGE).as_posix() for p in MODULES]


def _top(module: str) -> str:
    """``d2lcv.ops.iou`` -> ``ops``; ``d2lcv`` -> ``""``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _imports(path: Path) -> list[tuple[str, list[str], int]]:
    """Every ``d2lcv`` import in the file (module level and inside functions), as
    ``(absolute module, imported names, line)``."""
    tree = ast.parse(path.read_text())
    me = _name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, [], node.lineno) for a in node.names if a.name.split(".")[0] == "d2lcv"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if module.split(".")[0] == "d2lcv":
                found.append((module, [a.name for a in node.names], node.lineno))
    return found


@pytest.mark.parametrize("path", MODULES, ids=IDS)
def test_module_size(path):
    rel = path.relative_to(PACKAGE).as_posix()
    n = len(path.read_text().splitlines())
    if rel not in DATA_TABLES:
        assert n <= MAX_LINES, f"{rel} has {n} lines (> {MAX_LINES}): split it by concept"


@pytest.mark.parametrize("path", MODULES, ids=IDS)
def test_all_lists_the_public_names(path):
    tree = ast.parse(path.read_text())
    declared = None
    defined, bound = set(), set()
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets):
            declared = [e.value for e in node.value.elts if isinstance(e, ast.Constant)]
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defined.add(node.name)
        for target in getattr(node, "targets", []) + [getattr(node, "target", None)]:
            if isinstance(target, ast.Name):
                bound.add(target.id)
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            bound |= {(a.asname or a.name).split(".")[0] for a in node.names}
    rel = path.relative_to(PACKAGE).as_posix()
    if path.name == "__main__.py":
        return
    assert declared is not None, f"{rel} has no __all__"
    assert len(declared) == len(set(declared)), f"{rel}: duplicates in __all__"
    public = {n for n in defined if not n.startswith("_")}
    assert public <= set(declared), f"{rel}: public names missing from __all__: {sorted(public - set(declared))}"
    unknown = set(declared) - defined - bound
    if path.name == "__init__.py":  # lazy submodules of the top-level package
        unknown -= set(getattr(d2lcv, "_SUBMODULES", ())) | {"__version__"}
    assert not unknown, f"{rel}: __all__ names what the module does not define: {sorted(unknown)}"


@pytest.mark.parametrize("path", MODULES, ids=IDS)
def test_imports_follow_the_layers(path):
    me = _name(path)
    mine = _top(me)
    if mine == "":
        return
    layer = d2lcv.LAYERS[mine]
    for module, names, line in _imports(path):
        other = _top(module)
        if other in ("", mine):
            continue
        assert other in d2lcv.LAYERS, f"{me}:{line} imports {module}, which is in no layer"
        assert d2lcv.LAYERS[other] < layer, (
            f"{me}:{line} imports {module}: layer {mine} ({layer}) may import only lower layers, "
            f"and {other} is layer {d2lcv.LAYERS[other]}"
        )


@pytest.mark.parametrize("path", MODULES, ids=IDS)
def test_no_private_names_across_modules(path):
    me = _name(path)
    for module, names, line in _imports(path):
        if module == me:
            continue
        private = [n for n in names if n.startswith("_")]
        assert not private, f"{me}:{line} imports private {private} from {module}: make them public or move them"
        assert not any(part.startswith("_") for part in module.split(".")[1:]), (
            f"{me}:{line} imports from the private module {module}"
        )


def test_the_layer_table_covers_every_subpackage():
    tops = {p.relative_to(PACKAGE).parts[0].removesuffix(".py") for p in MODULES} - {"__init__"}
    assert tops == set(d2lcv.LAYERS), f"subpackages without a layer: {sorted(tops - set(d2lcv.LAYERS))}"


SIDE_EFFECTS = r"""
import json, random, sys, threading
import numpy as np, torch, matplotlib
names = json.loads(sys.argv[1])
def state():
    return {
        "python_random": random.getstate()[1][:8],
        "numpy_random": np.random.get_state()[1][:8].tolist(),
        "torch_random": torch.get_rng_state()[:16].tolist(),
        "deterministic": torch.are_deterministic_algorithms_enabled(),
        "threads": torch.get_num_threads(),
        "rcParams": {k: repr(v) for k, v in matplotlib.rcParams.items()},
        "backend": matplotlib.get_backend(),
        "python_threads": threading.active_count(),
    }
before = state()
import importlib
for name in names:
    importlib.import_module(name)
after = state()
changed = sorted(k for k in before if before[k] != after[k])
if "matplotlib.pyplot" in sys.modules:
    import matplotlib.pyplot as plt
    if plt.get_fignums():
        changed.append("open figures")
print(json.dumps(changed))
"""


def test_importing_every_module_has_no_side_effects():
    names = [_name(p) for p in MODULES if p.name != "__main__.py"]
    out = subprocess.run([sys.executable, "-c", SIDE_EFFECTS, json.dumps(names)], capture_output=True, text=True,
                         check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [], f"importing d2lcv changed {out.stdout}"


def test_the_structure_checks_can_fail(tmp_path):
    """The checkers flag a bad module (a fake one parsed from a temporary file)."""
    bad = PACKAGE / "ops" / "_structure_probe.py"
    bad.write_text("from d2lcv.engine import fit\nfrom d2lcv.ops.iou import _reduce\n\ndef public():\n    pass\n")
    try:
        with pytest.raises(AssertionError, match="may import only lower layers"):
            test_imports_follow_the_layers(bad)
        with pytest.raises(AssertionError, match="imports private"):
            test_no_private_names_across_modules(bad)
        with pytest.raises(AssertionError, match="has no __all__"):
            test_all_lists_the_public_names(bad)
    finally:
        bad.unlink()
