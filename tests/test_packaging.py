"""Packaging: the wheel carries plugin, suites, manifests and load tests; docs match code.

The wheel build takes about a second (hatchling, no isolation), so it is not marked slow.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from pytest_codelab.options import OPTIONS, markdown_table

ROOT = Path(__file__).resolve().parents[1]


def test_readme_options_table_is_generated_from_the_option_table() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    begin, end = "<!-- options-table:begin -->\n", "\n<!-- options-table:end -->"
    table = readme[readme.index(begin) + len(begin) : readme.index(end)]
    assert table == markdown_table(), "run: python -m pytest_codelab.options"
    for spec in OPTIONS:
        assert f"`{spec.flag}" in table and f"`{spec.env}`" in table


def test_pyproject_declares_plugin_scripts_and_bundles() -> None:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    project = data["project"]
    assert project["name"] == "pytest-codelab"
    assert project["requires-python"] == ">=3.11"
    assert project["entry-points"]["pytest11"] == {"codelab": "pytest_codelab.plugin"}
    assert project["scripts"] == {
        "codelab-gate": "pytest_codelab.__main__:main",
        "codelab-cluster": "pytest_codelab.engine.cli:main",
    }
    assert "kubernetes>=37,<38" in project["dependencies"]
    wheel = data["tool"]["hatch"]["build"]["targets"]["wheel"]
    assert wheel["packages"] == ["src/pytest_codelab"]
    assert wheel["force-include"] == {
        name: f"pytest_codelab/_bundled/{name}" for name in ("manifests", "suites", "loadtests")
    }


def test_dev_extras_hold_the_build_backend() -> None:
    """The wheel tests build without isolation, so the venv that ``pip install -e '.[dev]'``
    gives must hold every build requirement itself: a fresh machine has nothing else."""
    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    dev = data["project"]["optional-dependencies"]["dev"]
    for requirement in data["build-system"]["requires"]:
        assert requirement in dev, f"{requirement!r} missing from the dev extras"
    assert "build" in dev


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "build",
            "--wheel",
            "--no-isolation",
            "--outdir",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (built,) = out.glob("pytest_codelab-*.whl")
    return built


def test_wheel_contents(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        entry_text = zf.read(entry_points).decode()
    for folder in ("manifests", "suites", "loadtests"):
        assert any(n.startswith(f"pytest_codelab/_bundled/{folder}/") for n in names), folder
    assert "pytest_codelab/_bundled/loadtests/README.md" in names
    assert "pytest_codelab/plugin.py" in names and "pytest_codelab/py.typed" in names
    assert "[pytest11]\ncodelab = pytest_codelab.plugin" in entry_text
    assert "codelab-gate = pytest_codelab.__main__:main" in entry_text
    assert not any(n.startswith(("tests/", "src/")) for n in names)


def test_wheel_runs_the_bundled_suites_without_a_checkout(wheel: Path, tmp_path: Path) -> None:
    """``codelab-gate`` from the unpacked wheel, outside the checkout, finds its suites."""
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(site)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}
    env = {k: v for k, v in env.items() if not k.startswith("CODELAB_") or k == "CODELAB_CACHE"}
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import pytest_codelab.resources as r; print(r.bundled_path('suites'))",
        ],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stdout.strip() == str(site / "pytest_codelab" / "_bundled" / "suites")
    gate = subprocess.run(
        [sys.executable, "-m", "pytest_codelab", "--collect-only", "-q", "-p", "no:cacheprovider"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
    )
    assert gate.returncode == 0, gate.stdout + gate.stderr
    assert re.search(r"^\d+ tests? collected", gate.stdout, re.MULTILINE), gate.stdout
    assert "error" not in gate.stdout.lower()
