"""The builder: file-only layers (no root, no network) built into a temporary cache."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import time
from collections.abc import Callable
from pathlib import Path

from pytest_codelab.engine.images import archive
from pytest_codelab.engine.images.builder import Builder, Recipe

RecipeFactory = Callable[..., Recipe]
LogFactory = Callable[[], tuple[list[str], Callable[[str], None]]]


def test_same_inputs_same_digest_in_separate_caches(
    tmp_path: Path, app_recipe: RecipeFactory
) -> None:
    a = Builder(tmp_path / "c1", lambda _: None).build(app_recipe())
    b = Builder(tmp_path / "c2", lambda _: None).build(app_recipe())
    assert hashlib.sha256(a.read_bytes()).digest() == hashlib.sha256(b.read_bytes()).digest()


def test_docker_archive_structure(tmp_path: Path, app_recipe: RecipeFactory) -> None:
    archive = Builder(tmp_path, lambda _: None).build(app_recipe())
    assert archive == tmp_path / "images" / "archives" / "app.tar"
    with tarfile.open(archive) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        assert len(manifest) == 1 and manifest[0]["RepoTags"] == ["example/app:1"]
        config_raw = tar.extractfile(manifest[0]["Config"]).read()  # type: ignore[union-attr]
        assert manifest[0]["Config"] == "blobs/sha256/" + hashlib.sha256(config_raw).hexdigest()
        config = json.loads(config_raw)
        layers = [tar.extractfile(p).read() for p in manifest[0]["Layers"]]  # type: ignore[union-attr]
        repositories = json.load(tar.extractfile("repositories"))  # type: ignore[arg-type]
    assert config["architecture"] == "amd64" and config["os"] == "linux"
    assert config["rootfs"]["diff_ids"] == [
        "sha256:" + hashlib.sha256(raw).hexdigest() for raw in layers
    ]
    assert [p.rsplit("/", 1)[1] for p in manifest[0]["Layers"]] == [
        hashlib.sha256(raw).hexdigest() for raw in layers
    ]
    c = config["config"]
    assert c["Entrypoint"] == ["python3", "/app/main.py"]
    assert c["WorkingDir"] == "/app" and c["User"] == "10001:10001"
    assert c["ExposedPorts"] == {"8000/tcp": {}}
    assert c["Env"][0].startswith("PATH=") and "SERVICE_VERSION=1.0.0" in c["Env"]
    assert len(config["history"]) == 2
    assert repositories == {"example/app": {"1": manifest[0]["Config"].rsplit("/", 1)[1]}}
    with tarfile.open(fileobj=io.BytesIO(layers[1])) as code:
        assert code.extractfile("app/main.py").read() == b"print('v1')\n"  # type: ignore[union-attr]


def test_rebuild_is_a_cache_hit(
    tmp_path: Path, app_recipe: RecipeFactory, build_log: LogFactory
) -> None:
    first = Builder(tmp_path, lambda _: None).build(app_recipe())
    mtime = first.stat().st_mtime_ns
    lines, log = build_log()
    started = time.monotonic()
    again = Builder(tmp_path, log).build(app_recipe())
    assert time.monotonic() - started < 1.0
    assert again == first and again.stat().st_mtime_ns == mtime
    assert lines == ["[images] image app (example/app:1): cached"]


def test_code_change_rebuilds_only_the_code_layer(
    tmp_path: Path, app_recipe: RecipeFactory, build_log: LogFactory
) -> None:
    Builder(tmp_path, lambda _: None).build(app_recipe("print('v1')\n"))
    lines, log = build_log()
    Builder(tmp_path, log).build(app_recipe("print('v2')\n"))
    assert "[images] base layer fake-base: cached" in lines
    assert "[images] building code layer app-code..." in lines
    assert not any("building base layer" in ln for ln in lines)
    assert len(list((tmp_path / "images" / "layers").glob("*.tar"))) == 3


def test_tag_or_config_change_reassembles_without_rebuilding_layers(
    tmp_path: Path, app_recipe: RecipeFactory, build_log: LogFactory
) -> None:
    Builder(tmp_path, lambda _: None).build(app_recipe())
    lines, log = build_log()
    Builder(tmp_path, log).build(app_recipe(tags=("example/app:2",)))
    assert not any(ln.startswith("[images] building") for ln in lines)
    assert archive.archive_tags(tmp_path / "images" / "archives" / "app.tar") == [
        "docker.io/example/app:2"
    ]
