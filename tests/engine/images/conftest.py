"""Fixtures of the image tests: a small file-only recipe and a log that keeps its lines."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from pytest_codelab.engine.images.archive import directory, file, symlink
from pytest_codelab.engine.images.builder import ImageConfig, Recipe, env
from pytest_codelab.engine.images.layers import FilesLayer


def _recipe(code: str = "print('v1')\n", tags: tuple[str, ...] = ("example/app:1",)) -> Recipe:
    base = FilesLayer(
        "fake-base",
        (
            file("etc/os-release", "ID=test\n"),
            directory("tmp", 0o1777),
            symlink("bin/sh", "/bin/busybox"),
        ),
        role="base layer",
    )
    code_layer = FilesLayer("app-code", (file("app/main.py", code),), role="code layer")
    return Recipe(
        "app",
        tags,
        (base, code_layer),
        ImageConfig(
            entrypoint=("python3", "/app/main.py"),
            workdir="/app",
            ports=("8000/tcp",),
            user="10001:10001",
            env=env(SERVICE_VERSION="1.0.0"),
        ),
    )


@pytest.fixture
def app_recipe() -> Callable[..., Recipe]:
    """``app_recipe(code=..., tags=...)``: two file layers (a base and a code layer)."""
    return _recipe


@pytest.fixture
def build_log() -> Callable[[], tuple[list[str], Callable[[str], None]]]:
    """``lines, log = build_log()``: a builder log that keeps what it was told."""

    def make() -> tuple[list[str], Callable[[str], None]]:
        lines: list[str] = []
        return lines, lines.append

    return make
