"""The engine's own images (pause, add-ons, busybox) and their import into containerd.

Images are built by ``images.py`` and imported like ``kind load``; an import is skipped
when containerd already holds that exact archive under that name, so a warm ``up`` does
not pay for it.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

from pytest_codelab.engine import images, versions
from pytest_codelab.engine.errors import EngineError
from pytest_codelab.engine.layout import Layout
from pytest_codelab.engine.paths import bin_dir

#: image name -> (binary in the engine's bin folder, entrypoint)
STATIC_IMAGES = {
    versions.PAUSE_IMAGE: ("pause", ["/pause"]),
    versions.COREDNS_IMAGE: ("coredns", ["/coredns"]),
    versions.METRICS_SERVER_IMAGE: ("metrics-server", ["/metrics-server"]),
    versions.LOCAL_PATH_IMAGE: ("local-path-provisioner", ["/local-path-provisioner"]),
    versions.TRAEFIK_IMAGE: ("traefik", ["/traefik"]),
}


def build_engine_images(only_pause: bool = False) -> dict[str, Path]:
    """Build (or find cached) archives of the pod sandbox image and the add-ons' images."""
    archives: dict[str, Path] = {}
    for name, (binary, entrypoint) in STATIC_IMAGES.items():
        if only_pause and name != versions.PAUSE_IMAGE:
            continue
        path = bin_dir() / binary
        if not path.exists():
            raise EngineError(f"{path} missing: run `codelab-cluster build` first")
        archives[name] = images.build_recipe(images.static(name, path, entrypoint))
    if not only_pause:
        archives[versions.BUSYBOX_IMAGE] = images.build("busybox")
    return archives


def digest(path: Path) -> str:
    """Content hash of an archive (cheap against the cost of a needless import)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def ctr(layout: Layout, *args: str) -> str:
    """Run ctr against the cluster's containerd in the k8s.io namespace."""
    cmd = [str(layout.bin / "ctr"), "--address", str(layout.containerd_socket), "-n", "k8s.io",
           *args]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        raise EngineError.from_command(cmd, proc.returncode, proc.stdout)
    return proc.stdout


class ImportRecord:
    """Which archive each image name was imported from, kept beside containerd's store."""

    def __init__(self, layout: Layout) -> None:
        self.path = layout.containerd_root / "codelab-imports.json"
        try:
            self.data: dict[str, str] = json.loads(self.path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            self.data = {}

    def current(self, name: str, archive_digest: str, present: set[str]) -> bool:
        return name in present and self.data.get(name) == archive_digest

    def remember(self, name: str, archive_digest: str) -> None:
        self.data[name] = archive_digest
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(self.data, indent=1, sort_keys=True))


def present_images(layout: Layout) -> set[str]:
    """Names of the images containerd holds."""
    return set(ctr(layout, "images", "ls", "-q").split())


def load(layout: Layout, archives: dict[str, Path]) -> list[str]:
    """Import each archive under its name unless already there; return what was imported."""
    record = ImportRecord(layout)
    present = present_images(layout)
    imported = []
    for name, archive in archives.items():
        d = digest(archive)
        if record.current(normalize(name), d, present):
            continue
        images.load_image(archive, containerd_address=str(layout.containerd_socket),
                          name=name, ctr=str(layout.bin / "ctr"))
        record.remember(normalize(name), d)
        imported.append(name)
    return imported


def normalize(name: str) -> str:
    """The fully qualified reference containerd lists (docker.io/library/ added)."""
    first = name.split("/", 1)[0]
    if "/" not in name:
        return f"docker.io/library/{name}"
    if "." not in first and ":" not in first and first != "localhost":
        return f"docker.io/{name}"
    return name


def load_engine_images(layout: Layout, with_addons: bool = True) -> None:
    """Import the engine's images into the running containerd."""
    load(layout, build_engine_images(only_pause=not with_addons))


def load_archive(archive: Path, name: str | None = None, layout: Layout | None = None) -> None:
    """``codelab-cluster load-image``: import one archive into the running cluster."""
    layout = layout or Layout.default()
    if not layout.containerd_socket.exists():
        raise EngineError("no local cluster is running: run `codelab-cluster up` first")
    if not archive.exists():
        raise EngineError(f"no such image archive: {archive}")
    images.load_image(archive, containerd_address=str(layout.containerd_socket), name=name,
                      ctr=str(layout.bin / "ctr"))
    print(f"[codelab] loaded {archive.name}" + (f" as {name}" if name else ""), flush=True)
