"""Where the bundled manifests, suites, load tests and profiles live.

Why: the same code runs from a checkout (``pip install -e .`` or ``PYTHONPATH=src``), where these
are top-level folders of the repository, and from an installed wheel, where the build
force-includes them under ``pytest_codelab/_bundled/<name>``. Nothing else should guess paths.
"""

from __future__ import annotations

import tomllib
from functools import cache
from pathlib import Path

PROJECT_NAME = "pytest-codelab"
#: name -> path relative to the checkout root (and to ``_bundled`` in a wheel).
BUNDLED: dict[str, str] = {
    "manifests": "manifests",
    "suites": "suites",
    "loadtests": "loadtests",
    # Profiles ship inside the manifests folder, so a wheel needs no extra force-include.
    "profiles": "manifests/profiles",
    # The guide's expected figures (deploy.expected), inside the manifests folder likewise.
    "expected": "manifests/expected",
}

_PACKAGE_DIR = Path(__file__).resolve().parent


class ResourceError(FileNotFoundError):
    """A bundled folder is missing: a broken install or checkout (one-line message)."""


def _is_project_root(directory: Path) -> bool:
    pyproject = directory / "pyproject.toml"
    if pyproject.is_file():
        try:
            data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError):
            return False
        return bool(data.get("project", {}).get("name") == PROJECT_NAME)
    # Before pyproject.toml exists (or in a stripped source copy): the src layout itself.
    return (directory / "src" / "pytest_codelab").resolve() == _PACKAGE_DIR


@cache
def checkout_root() -> Path | None:
    """The repository root when running from a checkout, else None."""
    for parent in _PACKAGE_DIR.parents:
        if _is_project_root(parent):
            return parent
    return None


def bundled_path(name: str) -> Path:
    """The folder for ``name`` ('manifests', 'suites', 'loadtests', 'profiles', 'expected').

    An installed wheel's ``_bundled`` copy wins over a checkout, since a wheel's package
    directory is never inside a checkout by accident.
    """
    if name not in BUNDLED:
        raise ValueError(f"unknown bundled resource {name!r}; known: {', '.join(BUNDLED)}")
    relative = BUNDLED[name]
    wheel = _PACKAGE_DIR / "_bundled" / relative
    if wheel.is_dir():
        return wheel
    root = checkout_root()
    if root is not None and (root / relative).is_dir():
        return root / relative
    raise ResourceError(
        f"bundled {name!r} not found (looked in {wheel}"
        + (f" and {root / relative}" if root is not None else "")
        + "): reinstall pytest-codelab"
    )
