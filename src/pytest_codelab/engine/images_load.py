"""The engine's own images (pause, add-ons, busybox) and their import into containerd.

Images are built by ``images.py`` and imported like ``kind load``; an import is skipped
when containerd already holds that exact archive under that name, so a warm ``up`` does
not pay for it.
"""

from __future__ import annotations

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
    """Identity of an archive build: the builder rewrites an archive only when it changes,
    so size and modification time tell builds apart without hashing gigabytes."""
    st = path.stat()
    return f"{st.st_size}-{st.st_mtime_ns}"


def ctr(layout: Layout, *args: str) -> str:
    """Run ctr against the cluster's containerd in the k8s.io namespace."""
    cmd = [
        str(layout.bin / "ctr"),
        "--address",
        str(layout.containerd_socket),
        "-n",
        "k8s.io",
        *args,
    ]
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

    def current(self, names: list[str], archive_digest: str, present: set[str]) -> bool:
        """True when every name is in containerd and came from this very archive."""
        return all(n in present and self.data.get(n) == archive_digest for n in names)

    def remember(self, names: list[str], archive_digest: str) -> None:
        for n in names:
            self.data[n] = archive_digest
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(self.data, indent=1, sort_keys=True))


def present_images(layout: Layout) -> set[str]:
    """Names of the images containerd holds."""
    return set(ctr(layout, "images", "ls", "-q").split())


def load(layout: Layout, archives: list[tuple[Path, str | None]]) -> list[str]:
    """Import each archive (with an optional extra name) unless containerd already has it.

    Returns the names imported; a warm ``up`` imports nothing.
    """
    record = ImportRecord(layout)
    present = present_images(layout)
    imported: list[str] = []
    for archive, name in archives:
        names = images.archive_tags(archive) + ([images.normalize_ref(name)] if name else [])
        d = digest(archive)
        if record.current(names, d, present):
            continue
        images.load_image(
            archive,
            containerd_address=str(layout.containerd_socket),
            name=name or None,
            ctr=str(layout.bin / "ctr"),
        )
        record.remember(names, d)
        imported.extend(names)
    return imported


def load_codelab_images(layout: Layout) -> list[str]:
    """Build (cached) and import the reference CodeLab images the bundled manifests run."""
    archives = images.build_all()
    return load(layout, [(path, None) for path in archives.values()])


def load_engine_images(layout: Layout, with_addons: bool = True) -> None:
    """Import the engine's images into the running containerd."""
    built = build_engine_images(only_pause=not with_addons)
    load(layout, [(path, name) for name, path in built.items()])


def load_archive(archive: Path, name: str | None = None, layout: Layout | None = None) -> None:
    """``codelab-cluster load-image``: import one archive into the running cluster."""
    layout = layout or Layout.default()
    if not layout.containerd_socket.exists():
        raise EngineError("no local cluster is running: run `codelab-cluster up` first")
    if not archive.exists():
        raise EngineError(f"no such image archive: {archive}")
    images.load_image(
        archive,
        containerd_address=str(layout.containerd_socket),
        name=name,
        ctr=str(layout.bin / "ctr"),
    )
    print(f"[codelab] loaded {archive.name}" + (f" as {name}" if name else ""), flush=True)
