"""The recipes: the image table, the engine's static images and (slow, as root) real
Debian-based builds."""

from __future__ import annotations

import io
import json
import os
import shutil
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from pytest_codelab.engine import versions
from pytest_codelab.engine.images import recipes
from pytest_codelab.engine.images.commands import ImageError
from pytest_codelab.engine.images.layers import FilesLayer

LogFactory = Callable[[], tuple[list[str], Callable[[str], None]]]


ROOT = Path(__file__).resolve().parents[3]


def test_recipe_table_names_and_tags() -> None:
    table = recipes.recipe_table()
    assert set(recipes.DEFAULT_SET) <= set(table)
    assert table["busybox"].tags == ("busybox:1.36", "busybox:latest")
    assert table["postgres"].tags == ("postgres:15-alpine",)
    assert table["redis"].tags == ("redis:7-alpine",)
    for svc in ("gateway", "agent-runtime", "auth-service"):
        for ver in ("1.0.0", "1.1.0"):
            r = table[f"{svc}-{ver}"]
            assert r.tags == (f"ghcr.io/codelab/{svc}:{ver}",)
            assert f"SERVICE_VERSION={ver}" in r.config.to_json()["Env"]  # type: ignore[operator]
    one, two = table["gateway-1.0.0"], table["gateway-1.1.0"]
    assert [la.key() for la in one.layers] == [la.key() for la in two.layers]
    assert one.key() != two.key()
    assert table["python"].layers[0].key() == one.layers[0].key()
    assert recipes.recipe_table(litellm_image="example/litellm:x")["litellm"].tags == (
        "example/litellm:x",
    )


def test_litellm_image_name_matches_bundled_manifests() -> None:
    text = (ROOT / "manifests" / "20-llm-proxy.yaml").read_text()
    assert f"image: {versions.LITELLM_IMAGE}" in text


def test_static_recipe(tmp_path: Path) -> None:
    binary = tmp_path / "tool"
    binary.write_bytes(b"\x7fELF fake")
    recipe = recipes.static("registry.k8s.io/pause:3.10", binary, ["/tool", "-v"])
    assert recipe.name == "registry.k8s.io_pause_3.10"
    assert recipe.tags == ("registry.k8s.io/pause:3.10",)
    assert recipe.config.entrypoint == ("/tool", "-v")
    files = recipe.layers[-1]
    assert isinstance(files, FilesLayer) and files.entries[0].path == "tool"
    base = recipe.layers[1]
    assert isinstance(base, FilesLayer)
    paths = {e.path: e for e in base.entries}
    assert paths["tmp"].mode == 0o1777 and "etc/passwd" in paths and "etc/group" in paths
    assert b"nonroot:x:65532" in paths["etc/passwd"].data


def test_unknown_recipe_lists_known_ones() -> None:
    with pytest.raises(ImageError, match="known: busybox"):
        recipes.build("nope")


@pytest.mark.slow
@pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("apt-get"), reason="needs root and Debian's apt"
)
def test_busybox_image_from_debian(tmp_path: Path) -> None:
    archive = recipes.build("busybox", cache=tmp_path)
    with tarfile.open(archive) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        layer = tar.extractfile(manifest[0]["Layers"][0]).read()  # type: ignore[union-attr]
    with tarfile.open(fileobj=io.BytesIO(layer)) as tar:
        names = {m.name: m for m in tar.getmembers()}
    assert names["bin/busybox"].isreg() and names["bin/sh"].issym()
    assert manifest[0]["RepoTags"] == ["busybox:1.36", "busybox:latest"]


@pytest.mark.slow
@pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("mmdebstrap"), reason="needs root and mmdebstrap"
)
def test_python_base_layer_is_cached_across_services(build_log: LogFactory) -> None:
    lines, log = build_log()
    recipes.build_all(["gateway-1.0.0", "gateway-1.1.0"], log=log)
    lines.clear()
    recipes.build_all(["gateway-1.0.0"], force=False, log=log)
    assert lines == ["[images] image gateway-1.0.0 (ghcr.io/codelab/gateway:1.0.0): cached"]


def test_gate_recipe_installs_the_given_wheel(tmp_path: Path) -> None:
    wheel = tmp_path / "pytest_codelab-0.1.0-py3-none-any.whl"
    wheel.write_bytes(b"PK fake wheel")
    kubectl = tmp_path / "kubectl"
    kubectl.write_bytes(b"\x7fELF fake")
    recipe = recipes.gate_recipe(wheel, kubectl, image="example/gate:1")
    assert recipe.tags == ("example/gate:1",)
    assert recipe.config.entrypoint == ("/opt/gate/bin/codelab-gate",)
    names = [layer.name for layer in recipe.layers]  # type: ignore[attr-defined]
    assert names == ["python", "gate-venv", "gate-kubectl"]
    assert wheel.name in recipe.layers[1].script  # type: ignore[attr-defined]
    other = tmp_path / "other.whl"
    other.write_bytes(b"PK another wheel")
    assert recipes.gate_recipe(other).key() != recipes.gate_recipe(wheel).key()
    assert len(recipes.gate_recipe(wheel).layers) == 2  # no kubectl unless given
