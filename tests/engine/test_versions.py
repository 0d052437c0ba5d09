"""Every pinned version of the engine lives in versions.py."""

from __future__ import annotations

import re
from importlib.metadata import version
from pathlib import Path

from pytest_codelab.engine import versions
from pytest_codelab.engine.images import recipes

SRC = Path(versions.__file__).resolve().parents[1]


def test_the_worker_image_runs_the_gates_locust() -> None:
    """Master and worker pods speak one protocol version: the image the local cluster
    builds carries the Locust the gate itself runs."""
    # Not ``import locust``: it monkey-patches the whole process with gevent.
    assert versions.LOCUST == version("locust")
    assert versions.LOCUST_IMAGE.endswith(":" + versions.LOCUST)
    assert "locust" in recipes.DEFAULT_SET
    assert recipes.recipe_table()["locust"].tags == (versions.LOCUST_IMAGE,)


def test_pypi_pins_are_written_once() -> None:
    """LiteLLM's and Locust's versions appear in no other module of the package."""
    pins = {versions.LITELLM, versions.LOCUST}
    elsewhere = [
        f"{path.relative_to(SRC)}: {pin}"
        for path in SRC.rglob("*.py")
        if path.name != "versions.py"
        for pin in pins
        if re.search(re.escape(pin) + r"\b", path.read_text())
    ]
    assert not elsewhere
