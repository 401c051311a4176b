"""Project metadata: dependency lists agree, workflows are valid, CI calls the README's command."""

import re
import subprocess
import sys
try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import pytest

    tomllib = pytest.importorskip("tomli")
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CONDA_TO_PYPI = {"pytorch": "torch", "matplotlib-base": "matplotlib"}


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~;\[ ]", requirement.strip(), maxsplit=1)[0].lower()


def test_environment_yml_lists_the_same_packages_as_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pyproject = {_name(r) for r in project["dependencies"]}
    for extra in project["optional-dependencies"].values():
        pyproject |= {_name(r) for r in extra}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = {CONDA_TO_PYPI.get(_name(d), _name(d)) for d in env["dependencies"] if isinstance(d, str)}
    conda -= {"python", "pip"}
    assert pyproject - conda == set(), f"in pyproject.toml, not in environment.yml: {sorted(pyproject - conda)}"
    assert conda - pyproject == set(), f"in environment.yml, not in pyproject.toml: {sorted(conda - pyproject)}"


def test_dependencies_are_ranges_not_pins():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        requirements += extra
    pinned = [r for r in requirements if "==" in r]
    assert pinned == []


def test_workflows_are_valid_github_workflows():
    workflows = sorted(str(p) for p in (ROOT / ".github" / "workflows").glob("*.yml"))
    assert len(workflows) >= 3
    # check-jsonschema ships the GitHub workflow schema: no network needed
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows", *workflows],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_gpu_workflow_builds_the_full_profile():
    gpu = yaml.safe_load((ROOT / ".github" / "workflows" / "gpu.yml").read_text())
    job = next(iter(gpu["jobs"].values()))
    assert "self-hosted" in job["runs-on"] and job["env"]["D2LCV_PROFILE"] == "full"
    assert "workflow_dispatch" in gpu[True] and "schedule" in gpu[True]  # `on:` parses as True


def _readme_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    return re.findall(r"^\s*(make \w+)\s*$", readme, flags=re.M)


def test_ci_runs_the_readme_test_command():
    commands = _readme_commands()
    assert "make test" in commands and "make book" in commands
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert "make test" in ci
    workflow = (ROOT / ".github" / "workflows" / "ci.yml").read_text()
    assert "run: make test" in workflow


def test_makefile_targets_exist():
    makefile = (ROOT / "Makefile").read_text()
    for target in ("test", "book", "chapter", "colab", "bench"):
        assert re.search(rf"^{target}:", makefile, flags=re.M), target
