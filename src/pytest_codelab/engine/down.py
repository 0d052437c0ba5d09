"""Take the local cluster down and leave nothing behind.

Order matters: kubelet first (so nothing restarts), then pod processes, containerd's
tasks, the control plane; then mounts, pod network namespaces, the cluster's network
namespace (with every interface and packet-filter rule in it), pod cgroups, the host
sysctls kubelet changed, and the state folder. Safe to run after a killed ``up``.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path

from pytest_codelab.engine import processes
from pytest_codelab.engine.errors import EngineError
from pytest_codelab.engine.layout import (
    HOST_VETH,
    SWITCH_NETNS,
    WORKER_PREFIX,
    Layout,
    cluster_nodes,
    node_by_name,
)
from pytest_codelab.engine.progress import step
from pytest_codelab.engine.state import Cluster, exclusive
from pytest_codelab.engine.timeouts import Timeouts

STOP_ORDER = ("kubelet", "kube-proxy", "kube-scheduler", "kube-controller-manager")
NETNS_DIR = Path("/run/netns")
CONTAINER_LOGS = Path("/var/log/containers")


def down(layout: Layout | None = None, *, timeout_scale: float = 1.0) -> bool:
    """Stop the cluster if there is one; True when something was torn down. Deadlines
    are the base values of :class:`Timeouts` times ``timeout_scale``."""
    layout = layout or Layout.default()
    with exclusive(layout):
        if not layout.state.exists() and not cluster_netns():
            return False
        down_locked(layout, Timeouts().scaled(timeout_scale))
        return True


def down_locked(layout: Layout, timeouts: Timeouts) -> None:
    """Tear down under the caller's lock (``up`` uses it to clean a failed start)."""
    t = timeouts
    cluster = Cluster.load(layout) or Cluster(layout)
    stop_components(cluster, t)
    processes.stop(processes.pod_pids(), grace=0, kill_wait=t.kill_wait, what="pod processes")
    for node in cluster_nodes(cluster.workers):
        remove_containers(layout, t, layout.node_containerd_socket(node))
    # The cluster's state is deleted below, so kube-apiserver and etcd need no graceful
    # shutdown (each spends seconds on it); containerd and its shims exit at once anyway.
    processes.stop(
        processes.engine_pids(layout),
        grace=t.engine_stop_grace,
        kill_wait=t.kill_wait,
        what="engine processes",
    )
    unmount_under([layout.state, *containerd_roots(layout)])
    delete_netns()
    processes.remove_pod_cgroups(t.kill_wait)
    restore_sysctls(cluster.sysctls)
    remove_container_log_links(layout, cluster.created_log_dir)
    shutil.rmtree(layout.state, ignore_errors=True)
    if layout.state.exists():
        raise EngineError(f"could not remove {layout.state}")


def stop_components(cluster: Cluster, t: Timeouts) -> None:
    """Stop the recorded components that come before the pods, in order; a recorded pid
    that is no longer the engine's process is named and never signalled."""
    for name, other in sorted(cluster.foreign().items()):
        print(
            f"[codelab] {name}: recorded {processes.describe(other)}, not the engine's "
            "process; left alone",
            flush=True,
        )
    for kind, names in by_kind(cluster.components, STOP_ORDER):
        pids = [cluster.components[n] for n in names if cluster.ours(n)]
        processes.stop(pids, grace=t.stop_grace, kill_wait=t.kill_wait, what=kind)


def by_kind(names: Iterable[str], order: tuple[str, ...]) -> list[tuple[str, list[str]]]:
    """The recorded components (``kubelet``, ``kubelet@codelab-w1``...) grouped by kind,
    the kinds of ``order`` in that order: every node's kubelets stop together."""
    names = list(names)
    return [(k, [n for n in names if n.split("@", 1)[0] == k]) for k in order]


def remove_containers(layout: Layout, timeouts: Timeouts, socket: Path) -> None:
    """Delete a node's containers from its containerd's store while it still runs."""
    ctr = layout.bin / "ctr"
    if not socket.exists() or not ctr.exists():
        return
    base = [str(ctr), "--address", str(socket), "-n", "k8s.io"]
    ids = subprocess.run(
        [*base, "containers", "ls", "-q"],
        capture_output=True,
        text=True,
        timeout=timeouts.ctr_list,
    ).stdout.split()
    if not ids:
        return
    # One call each for all containers: per-container calls cost seconds on a full node.
    for verb in (["tasks", "rm", "-f"], ["containers", "rm"]):
        subprocess.run([*base, *verb, *ids], capture_output=True, timeout=timeouts.ctr_remove)


def mount_points() -> list[str]:
    """Every mount point on the host, from /proc/self/mountinfo."""
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        raw = line.split()[4]
        points.append(raw.encode().decode("unicode_escape"))
    return points


def unmount_under(roots: list[Path]) -> None:
    """Lazily unmount every mount below ``roots``, deepest first.

    Pod network namespaces are among them: containerd is told to keep them under its
    state folder (``netns_mounts_under_state_dir``).
    """
    prefixes = [str(r).rstrip("/") + "/" for r in roots]
    targets = [m for m in mount_points() if any(m.startswith(p) for p in prefixes)]
    for m in sorted(set(targets), key=len, reverse=True):
        subprocess.run(["umount", "-l", m], capture_output=True)


def containerd_roots(layout: Layout) -> list[Path]:
    """Every node's containerd store (in the cache: kept, but its mounts go)."""
    workers = layout.cache.glob(f"containerd-{WORKER_PREFIX}*")
    return [layout.containerd_root, *sorted(workers)]


def cluster_netns() -> list[str]:
    """The network namespaces of this engine: the switch and every node's, whatever the
    number of workers that made them."""
    if not NETNS_DIR.is_dir():
        return []
    found = []
    for entry in sorted(NETNS_DIR.iterdir()):
        try:
            node_by_name(entry.name)
        except ValueError:
            if entry.name != SWITCH_NETNS:
                continue
        found.append(entry.name)
    return found


def delete_netns() -> None:
    """Delete the host end of the uplink (the kernel removes a namespace's devices only
    when it gets round to it, so a later ``up`` or check could still see it), then the
    switch's and the nodes' network namespaces: their links, bridges and rules go with
    them."""
    if Path("/sys/class/net", HOST_VETH).exists():
        subprocess.run(["ip", "link", "del", HOST_VETH], capture_output=True, text=True)
    for name in cluster_netns():
        proc = subprocess.run(["ip", "netns", "del", name], capture_output=True, text=True)
        if proc.returncode != 0:
            raise EngineError(f"could not delete network namespace {name}: {proc.stderr.strip()}")


def restore_sysctls(values: dict[str, str]) -> None:
    """Put back the host sysctls kubelet changed."""
    for key, value in values.items():
        try:
            Path("/proc/sys", key).write_text(value)
        except OSError:
            pass


def remove_container_log_links(layout: Layout, created_dir: bool) -> None:
    """Remove kubelet's /var/log/containers links into our state (and the folder if ours)."""
    if not CONTAINER_LOGS.is_dir():
        return
    prefix = str(layout.state)
    for link in CONTAINER_LOGS.iterdir():
        try:
            if link.is_symlink() and str(link.readlink()).startswith(prefix):
                link.unlink()
        except OSError:
            pass
    if created_dir and not any(CONTAINER_LOGS.iterdir()):
        CONTAINER_LOGS.rmdir()


def main_down(timeout_scale: float = 1.0) -> None:
    """``codelab-cluster down`` body: tear down with progress."""
    with step("down") as s:
        s.note("removed" if down(timeout_scale=timeout_scale) else "nothing running")
