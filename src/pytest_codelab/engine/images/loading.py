"""Importing images into the cluster's containerd, like ``kind load``.

An import is skipped when containerd already holds that exact archive under that name, so
a warm ``up`` does not pay for it.
"""

from __future__ import annotations

import json
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pytest_codelab.engine.errors import EngineError
from pytest_codelab.engine.images.archive import archive_tags, normalize_ref
from pytest_codelab.engine.images.builder import Recipe, build_recipe
from pytest_codelab.engine.images.commands import ImageError, run
from pytest_codelab.engine.images.recipes import build_all, build_engine_images
from pytest_codelab.engine.layout import Layout, Node, cluster_nodes
from pytest_codelab.engine.state import Cluster
from pytest_codelab.engine.timeouts import Timeouts

#: Nodes importing at once: imports are disk- and CPU-bound, and the machine has two cores.
PARALLEL_IMPORTS = 2


def load_image(
    archive: Path,
    *,
    containerd_address: str,
    namespace: str = "k8s.io",
    name: str | None = None,
    ctr: str = "ctr",
    snapshotter: str | None = None,
    timeouts: Timeouts | None = None,
) -> list[str]:
    """Import a docker-archive into containerd (``ctr images import``), like ``kind load``.

    ``name`` adds one more reference to the imported image. Returns the image names now
    in containerd. Errors carry the failed command and its output.
    """
    t = timeouts or Timeouts()
    archive = Path(archive)
    if not archive.is_file():
        raise ImageError(f"image archive not found: {archive}")
    tags = archive_tags(archive)
    base = [ctr, "--address", containerd_address, "--namespace", namespace]
    cmd = [*base, "images", "import"]
    if snapshotter:
        cmd.append(f"--snapshotter={snapshotter}")
    run([*cmd, str(archive)], timeout=t.image_import)
    if name:
        if not tags:
            raise ImageError(f"cannot retag: {archive} has no RepoTags")
        full = normalize_ref(name)
        if full not in tags:
            run([*base, "images", "tag", "--force", tags[0], full], timeout=t.image_tag)
            tags.append(full)
    return tags


def digest(path: Path) -> str:
    """Identity of an archive build: the builder rewrites an archive only when it changes,
    so size and modification time tell builds apart without hashing gigabytes."""
    st = path.stat()
    return f"{st.st_size}-{st.st_mtime_ns}"


def ctr(layout: Layout, node: Node, *args: str) -> str:
    """Run ctr against a node's containerd in the k8s.io namespace."""
    cmd = [
        str(layout.bin / "ctr"),
        "--address",
        str(layout.node_containerd_socket(node)),
        "-n",
        "k8s.io",
        *args,
    ]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        raise EngineError.from_command(cmd, proc.returncode, proc.stdout)
    return proc.stdout


class ImportRecord:
    """Which archive each image name was imported from, kept beside a node's containerd
    store."""

    def __init__(self, layout: Layout, node: Node) -> None:
        self.path = layout.node_containerd_root(node) / "codelab-imports.json"
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


def present_images(layout: Layout, node: Node) -> set[str]:
    """Names of the images a node's containerd holds."""
    return set(ctr(layout, node, "images", "ls", "-q").split())


def running_nodes(layout: Layout) -> list[Node]:
    """The nodes of the cluster the record describes (the control plane alone when there
    is no record)."""
    cluster = Cluster.load(layout)
    return cluster_nodes(cluster.workers if cluster else 0)


def load(
    layout: Layout,
    archives: list[tuple[Path, str | None]],
    timeouts: Timeouts | None = None,
    nodes: list[Node] | None = None,
) -> list[str]:
    """Import each archive (with an optional extra name) into every node (default: the
    running cluster's), like ``kind load``, unless a node already has it.

    Returns the names imported (once per name); a warm ``up`` imports nothing.
    """
    targets = nodes if nodes is not None else running_nodes(layout)
    with ThreadPoolExecutor(max_workers=PARALLEL_IMPORTS) as pool:
        done = pool.map(lambda n: load_node(layout, n, archives, timeouts), targets)
        return sorted({name for names in done for name in names})


def load_node(
    layout: Layout,
    node: Node,
    archives: list[tuple[Path, str | None]],
    timeouts: Timeouts | None = None,
) -> list[str]:
    """Import each archive into one node's containerd unless it already has it."""
    record = ImportRecord(layout, node)
    present = present_images(layout, node)
    imported: list[str] = []
    for archive, name in archives:
        names = archive_tags(archive) + ([normalize_ref(name)] if name else [])
        d = digest(archive)
        if record.current(names, d, present):
            continue
        load_image(
            archive,
            containerd_address=str(layout.node_containerd_socket(node)),
            name=name or None,
            ctr=str(layout.bin / "ctr"),
            timeouts=timeouts,
        )
        record.remember(names, d)
        imported.extend(names)
    return imported


def load_recipes(
    layout: Layout, recipes: dict[str, Recipe], timeouts: Timeouts | None = None
) -> list[str]:
    """Build (or find cached) an add-on's images, image name -> recipe, and import them into
    every node (skipped where current): the one way Velero, cert-manager and the VPA load."""
    built = {name: build_recipe(r, timeouts=timeouts) for name, r in recipes.items()}
    return load(layout, [(path, name) for name, path in built.items()], timeouts)


def load_codelab_images(layout: Layout, timeouts: Timeouts | None = None) -> list[str]:
    """Build (cached) and import the reference CodeLab images the bundled manifests run."""
    archives = build_all(timeouts=timeouts)
    return load(layout, [(path, None) for path in archives.values()], timeouts)


def load_engine_images(
    layout: Layout,
    with_addons: bool = True,
    timeouts: Timeouts | None = None,
    nodes: list[Node] | None = None,
) -> None:
    """Import the engine's images into every node's containerd."""
    built = build_engine_images(only_pause=not with_addons, timeouts=timeouts)
    load(layout, [(path, name) for name, path in built.items()], timeouts, nodes)


def load_archive(
    archive: Path,
    name: str | None = None,
    layout: Layout | None = None,
    timeouts: Timeouts | None = None,
) -> None:
    """``codelab-cluster load-image``: import one archive into every node of the running
    cluster."""
    layout = layout or Layout.default()
    if not layout.containerd_socket.exists():
        raise EngineError("no local cluster is running: run `codelab-cluster up` first")
    if not archive.exists():
        raise EngineError(f"no such image archive: {archive}")
    nodes = running_nodes(layout)
    for node in nodes:
        load_image(
            archive,
            containerd_address=str(layout.node_containerd_socket(node)),
            name=name,
            ctr=str(layout.bin / "ctr"),
            timeouts=timeouts,
        )
    print(
        f"[codelab] loaded {archive.name}"
        + (f" as {name}" if name else "")
        + f" into {len(nodes)} nodes",
        flush=True,
    )
