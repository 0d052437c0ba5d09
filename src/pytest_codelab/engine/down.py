"""Take the local cluster down and leave nothing behind.

Order matters: kubelet first (so nothing restarts), then pod processes, containerd's
tasks, the control plane; then mounts, pod network namespaces, the cluster's network
namespace (with every interface and packet-filter rule in it), pod cgroups, the host
sysctls kubelet changed, and the state folder. Safe to run after a killed ``up``.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from pytest_codelab.engine import processes
from pytest_codelab.engine.errors import EngineError
from pytest_codelab.engine.layout import HOST_VETH, NETNS, Layout
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
        if not layout.state.exists() and not (NETNS_DIR / NETNS).exists():
            return False
        down_locked(layout, Timeouts().scaled(timeout_scale))
        return True


def down_locked(layout: Layout, timeouts: Timeouts) -> None:
    """Tear down under the caller's lock (``up`` uses it to clean a failed start)."""
    t = timeouts
    cluster = Cluster.load(layout) or Cluster(layout)
    for name in STOP_ORDER:
        pid = cluster.components.get(name)
        if pid:
            processes.stop([pid], grace=t.stop_grace, kill_wait=t.kill_wait, what=name)
    processes.stop(processes.pod_pids(), grace=0, kill_wait=t.kill_wait, what="pod processes")
    remove_containers(layout, t)
    # The cluster's state is deleted below, so kube-apiserver and etcd need no graceful
    # shutdown (each spends seconds on it); containerd and its shims exit at once anyway.
    processes.stop(
        processes.engine_pids(layout),
        grace=t.engine_stop_grace,
        kill_wait=t.kill_wait,
        what="engine processes",
    )
    unmount_under([layout.state, layout.containerd_root])
    delete_netns()
    processes.remove_pod_cgroups(t.kill_wait)
    restore_sysctls(cluster.sysctls)
    remove_container_log_links(layout, cluster.created_log_dir)
    shutil.rmtree(layout.state, ignore_errors=True)
    if layout.state.exists():
        raise EngineError(f"could not remove {layout.state}")


def remove_containers(layout: Layout, timeouts: Timeouts) -> None:
    """Delete this cluster's containers from containerd's store while it still runs."""
    ctr = layout.bin / "ctr"
    if not layout.containerd_socket.exists() or not ctr.exists():
        return
    base = [str(ctr), "--address", str(layout.containerd_socket), "-n", "k8s.io"]
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


def delete_netns() -> None:
    """Delete the host end of the veth pair (the kernel removes the namespace's devices
    only when it gets round to it, so a later ``up`` or check could still see it), then
    the cluster's network namespace: its bridge and rules go with it."""
    if Path("/sys/class/net", HOST_VETH).exists():
        subprocess.run(["ip", "link", "del", HOST_VETH], capture_output=True, text=True)
    if (NETNS_DIR / NETNS).exists():
        proc = subprocess.run(["ip", "netns", "del", NETNS], capture_output=True, text=True)
        if proc.returncode != 0:
            raise EngineError(f"could not delete network namespace {NETNS}: {proc.stderr.strip()}")


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
