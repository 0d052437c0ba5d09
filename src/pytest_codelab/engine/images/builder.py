"""The builder: images as recipes (tags, ordered layers, config), built into the cache.

Why: the local cluster has no Docker engine and no registry. Every image it runs is built
here as a docker-archive and imported into containerd. Layers are cached by a hash of
their inputs and archives by a hash of their layers, config and tags, so a second build is
near-instant and a change to one service's code rebuilds only that service's code layer.
One build at a time per cache (a file lock): xdist workers and parallel CLIs wait.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from pytest_codelab.engine.images.archive import (
    LayerResult,
    canonical,
    file_sha256,
    sha256,
    write_archive,
)
from pytest_codelab.engine.images.commands import ImageError, run
from pytest_codelab.engine.images.layers import DEFAULT_PATH, RECIPE_VERSION, Layer
from pytest_codelab.engine.paths import cache_dir
from pytest_codelab.engine.timeouts import Timeouts

Log = Callable[[str], None]


def stderr_log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def images_dir(cache: Path | None = None) -> Path:
    """``${CODELAB_CACHE:-~/.cache/pytest-codelab}/images``: layers, archives, .deb files."""
    return (cache or cache_dir()) / "images"


@dataclass(frozen=True)
class ImageConfig:
    """The runtime part of an image config (Docker's ``config`` object)."""

    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    env: tuple[tuple[str, str], ...] = (("PATH", DEFAULT_PATH),)
    workdir: str = ""
    ports: tuple[str, ...] = ()  # "8000/tcp"
    user: str = ""
    labels: tuple[tuple[str, str], ...] = ()
    stop_signal: str = ""
    volumes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, object]:
        """Docker image config ``config`` object (only the set fields)."""
        out: dict[str, object] = {"Env": [f"{k}={v}" for k, v in self.env]}
        if self.entrypoint is not None:
            out["Entrypoint"] = list(self.entrypoint)
        if self.cmd is not None:
            out["Cmd"] = list(self.cmd)
        if self.workdir:
            out["WorkingDir"] = self.workdir
        if self.ports:
            out["ExposedPorts"] = {p if "/" in p else f"{p}/tcp": {} for p in self.ports}
        if self.user:
            out["User"] = self.user
        if self.labels:
            out["Labels"] = dict(self.labels)
        if self.stop_signal:
            out["StopSignal"] = self.stop_signal
        if self.volumes:
            out["Volumes"] = {v: {} for v in self.volumes}
        return out


def env(**values: str) -> tuple[tuple[str, str], ...]:
    """An image environment with PATH first (defaulting to the usual one)."""
    values.setdefault("PATH", DEFAULT_PATH)
    path = values.pop("PATH")
    return (("PATH", path), *sorted(values.items()))


@dataclass(frozen=True)
class Recipe:
    """One image: its tags, ordered layers and config. ``name`` names the archive."""

    name: str
    tags: tuple[str, ...]
    layers: tuple[Layer, ...]
    config: ImageConfig
    description: str = ""

    def key(self) -> str:
        """Cache key of the archive: layer keys, config and tags."""
        return sha256(
            canonical(
                [
                    RECIPE_VERSION,
                    list(self.tags),
                    [la.key() for la in self.layers],
                    self.config.to_json(),
                ]
            )
        )


@dataclass
class Builder:
    """Builds layers and archives into the cache; one build at a time per cache (file lock)."""

    cache: Path | None = None
    log: Log = stderr_log
    force: bool = False
    timeouts: Timeouts = field(default_factory=Timeouts)
    _done: dict[str, LayerResult] = field(default_factory=dict, init=False)
    _lock_depth: int = field(default=0, init=False)
    _lock_file: BinaryIO | None = field(default=None, init=False)

    @property
    def root(self) -> Path:
        return images_dir(self.cache)

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the cache lock (xdist workers and parallel CLIs build one at a time)."""
        if self._lock_depth == 0:
            self.root.mkdir(parents=True, exist_ok=True)
            self._lock_file = open(self.root / ".lock", "wb")  # noqa: SIM115
            fcntl.flock(self._lock_file, fcntl.LOCK_EX)
        self._lock_depth += 1
        try:
            yield
        finally:
            self._lock_depth -= 1
            if self._lock_depth == 0 and self._lock_file is not None:
                self._lock_file.close()
                self._lock_file = None

    def ensure_tool(self, tool: str, package: str) -> None:
        """Install a missing host tool from Debian (root only)."""
        if shutil.which(tool):
            return
        if os.geteuid() != 0:
            raise ImageError(f"{tool} is missing: apt-get install {package} (as root)")
        self.log(f"[images] installing {package} (apt-get)...")
        run(
            ["apt-get", "install", "-y", "-q", package],
            timeout=self.timeouts.apt_install,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )

    def layer(self, layer: Layer) -> LayerResult:
        """The layer's tar from the cache, building it first if its inputs are new."""
        key = layer.key()
        if key in self._done:
            return self._done[key]
        layers = self.root / "layers"
        path, meta = layers / f"{key}.tar", layers / f"{key}.json"
        with self.locked():
            if not self.force and path.is_file() and meta.is_file():
                info = json.loads(meta.read_text())
                if info.get("size") == path.stat().st_size:
                    self.log(f"[images] {layer.role} {layer.name}: cached")
                    result = LayerResult(path, info["digest"], info["size"])
                    self._done[key] = result
                    return result
            hint = f" ({layer.hint})" if layer.hint else ""
            self.log(f"[images] building {layer.role} {layer.name}{hint}...")
            started = time.monotonic()
            layers.mkdir(parents=True, exist_ok=True)
            tmp = layers / f"{key}.tmp{os.getpid()}"
            try:
                layer.make(tmp, self)
                digest, size = file_sha256(tmp)
                os.replace(tmp, path)
            finally:
                tmp.unlink(missing_ok=True)
            meta.write_text(
                json.dumps(
                    {
                        "name": layer.name,
                        "digest": f"sha256:{digest}",
                        "size": size,
                        "built": time.time(),
                    },
                    indent=1,
                )
            )
            self.log(
                f"[images] {layer.role} {layer.name}: built, {size / 1e6:.1f} MB "
                f"in {time.monotonic() - started:.1f}s"
            )
            result = LayerResult(path, f"sha256:{digest}", size)
            self._done[key] = result
            return result

    def build(self, recipe: Recipe) -> Path:
        """The recipe's docker-archive in the cache, (re)built only if its inputs changed."""
        archives = self.root / "archives"
        archive, meta = archives / f"{recipe.name}.tar", archives / f"{recipe.name}.json"
        key = recipe.key()
        with self.locked():
            if not self.force and archive.is_file() and meta.is_file():
                info = json.loads(meta.read_text())
                if info.get("key") == key and info.get("size") == archive.stat().st_size:
                    self.log(f"[images] image {recipe.name} ({', '.join(recipe.tags)}): cached")
                    return archive
            started = time.monotonic()
            results = [self.layer(la) for la in recipe.layers]
            archives.mkdir(parents=True, exist_ok=True)
            tmp = archives / f"{recipe.name}.tar.tmp{os.getpid()}"
            try:
                config_digest = write_archive(
                    tmp,
                    recipe.tags,
                    recipe.config.to_json(),
                    [la.name for la in recipe.layers],
                    results,
                )
                os.replace(tmp, archive)
            finally:
                tmp.unlink(missing_ok=True)
            size = archive.stat().st_size
            meta.write_text(
                json.dumps(
                    {
                        "key": key,
                        "tags": list(recipe.tags),
                        "config": config_digest,
                        "size": size,
                        "layers": [
                            {"name": la.name, "digest": r.digest, "size": r.size}
                            for la, r in zip(recipe.layers, results, strict=True)
                        ],
                    },
                    indent=1,
                )
            )
            self.log(
                f"[images] image {recipe.name} ({', '.join(recipe.tags)}): "
                f"{size / 1e6:.1f} MB in {time.monotonic() - started:.1f}s -> {archive}"
            )
            return archive


def build_recipe(
    recipe: Recipe,
    *,
    cache: Path | None = None,
    force: bool = False,
    log: Log | None = None,
    timeouts: Timeouts | None = None,
) -> Path:
    """Build one recipe (e.g. from ``recipes.static``) and return its docker-archive path."""
    return Builder(cache, log or stderr_log, force, timeouts or Timeouts()).build(recipe)
