"""The inputs of a run: which manifests are under test, and whether they and the values load.

Why here: the plugin checks them once before any test (a bad file is one line, not N errors),
and the fixtures load the same folder and values; both ask this module.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_codelab.deploy.manifests import ManifestError, load_manifests
from pytest_codelab.deploy.profiles import load_values
from pytest_codelab.deploy.valueschema import ValuesError
from pytest_codelab.errors import one_line
from pytest_codelab.resources import bundled_path
from pytest_codelab.settings import Settings


def manifests_dir(settings: Settings) -> Path:
    """The folder of the manifests under test: --codelab-manifests or the bundled ones."""
    return settings.manifests or bundled_path("manifests")


def check_inputs(settings: Settings) -> None:
    """Load manifests and values once up front so a bad file is one line, not N errors.

    Only when they matter: a cluster run, or files the user named (the bundled ones are
    checked by the package's own tests).
    """
    if settings.cluster is None and settings.manifests is None and settings.values is None:
        return
    try:
        load_manifests(manifests_dir(settings))
        load_values(settings.profile, settings.values)
    except (ManifestError, ValuesError, FileNotFoundError) as exc:
        raise pytest.UsageError(one_line(str(exc))) from None
