"""Importing archives into containerd, against a fake ``ctr``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from pytest_codelab.engine.images import loading
from pytest_codelab.engine.images.builder import Builder, Recipe
from pytest_codelab.engine.images.commands import ImageError

RecipeFactory = Callable[..., Recipe]


def _fake_ctr(tmp_path: Path, fail: bool = False) -> Path:
    script = tmp_path / "ctr"
    log = tmp_path / "ctr.log"
    script.write_text(
        "#!/bin/sh\n"
        f'echo "$@" >> {log}\n'
        + ("echo 'ctr: failed to import: boom' >&2; exit 3\n" if fail else "echo unpacking done\n")
    )
    script.chmod(0o755)
    return script


def test_load_image_imports_and_retags(tmp_path: Path, app_recipe: RecipeFactory) -> None:
    archive = Builder(tmp_path, lambda _: None).build(app_recipe(tags=("busybox:1.36",)))
    ctr = _fake_ctr(tmp_path)
    names = loading.load_image(
        archive, containerd_address="/run/c.sock", name="example/bb:x", ctr=str(ctr)
    )
    assert names == ["docker.io/library/busybox:1.36", "docker.io/example/bb:x"]
    calls = (tmp_path / "ctr.log").read_text().splitlines()
    assert calls[0] == f"--address /run/c.sock --namespace k8s.io images import {archive}"
    assert calls[1] == (
        "--address /run/c.sock --namespace k8s.io images tag --force "
        "docker.io/library/busybox:1.36 docker.io/example/bb:x"
    )


def test_load_image_error_names_the_command_and_output(
    tmp_path: Path, app_recipe: RecipeFactory
) -> None:
    archive = Builder(tmp_path, lambda _: None).build(app_recipe())
    with pytest.raises(ImageError) as err:
        loading.load_image(
            archive, containerd_address="/run/c.sock", ctr=str(_fake_ctr(tmp_path, fail=True))
        )
    assert "images import" in str(err.value) and "exit 3" in str(err.value)
    assert "boom" in err.value.detail
