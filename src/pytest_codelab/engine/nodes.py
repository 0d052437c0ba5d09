"""Lose a worker node and bring it back, as ``docker stop`` / ``docker start`` of a kind node.

A stopped node keeps its files (certificates, kubelet and containerd state, volumes) but
nothing of it runs: its kubelet, containerd and kube-proxy, every process of its pods (the
NetworkPolicy enforcer's among them) and their runtime shims are killed, and its link to
the switch is taken down, so the control plane sees it go NotReady and its pods become
unreachable. ``start_node`` brings the link and the node's agents back and waits until the
node reports Ready again (a heartbeat after the restart, not the stale one).

Standalone like the rest of the engine: callers pass a layout and a Timeouts.
"""

from __future__ import annotations

import signal
import time
from datetime import datetime
from pathlib import Path

import requests

from pytest_codelab.engine import config, processes
from pytest_codelab.engine.errors import EngineError
from pytest_codelab.engine.layout import SWITCH_NETNS, Layout, Node, cluster_nodes, node_by_name
from pytest_codelab.engine.progress import step
from pytest_codelab.engine.state import Cluster, exclusive
from pytest_codelab.engine.timeouts import Timeouts
from pytest_codelab.engine.up import (
    Starter,
    admin_tls,
    http_ok,
    sh,
    start_containerd,
    wait_component,
    wait_containerd,
)
from pytest_codelab.engine.waiting import Probe

#: A node's own agents, in the order they are killed (kubelet first: nothing restarts).
AGENTS = ("kubelet", "kube-proxy", "containerd")


def running(layout: Layout) -> Cluster:
    """The running cluster's record; an EngineError when none runs."""
    cluster = Cluster.load(layout)
    if cluster is None or not cluster.running():
        raise EngineError("no local cluster is running: run `codelab-cluster up` first")
    return cluster


def worker_names(layout: Layout | None = None) -> list[str]:
    """Names of the running cluster's worker nodes (``codelab-w1``...)."""
    cluster = running(layout or Layout.default())
    return [n.name for n in cluster_nodes(cluster.workers) if not n.control_plane]


def worker(cluster: Cluster, name: str) -> Node:
    """The worker called ``name``; the control plane and unknown names are refused."""
    names = [n.name for n in cluster_nodes(cluster.workers) if not n.control_plane]
    if name not in names:
        raise EngineError(
            f"{name!r} is not a worker of the local cluster; workers: {', '.join(names)}"
        )
    return node_by_name(name)


def shim_pids(layout: Layout, node: Node) -> list[int]:
    """The runtime shims a node's containerd started (they live outside the pods'
    cgroups, and name their containerd's socket on their command line)."""
    socket = str(layout.node_containerd_socket(node))
    shim = str(layout.bin / "containerd-shim-runc-v2")
    found = []
    for pid in processes.engine_pids(layout):
        if processes.exe_of(pid) != shim:
            continue
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if socket.encode() in argv:
            found.append(pid)
    return found


def stop_node(layout: Layout | None, name: str, timeouts: Timeouts) -> None:
    """Lose worker ``name``: its agents, its pods' processes and shims killed, its link
    down. Its files stay, for :func:`start_node`."""
    layout = layout or Layout.default()
    with exclusive(layout):
        cluster = running(layout)
        node = worker(cluster, name)
        for kind in AGENTS:
            comp = node.component(kind)
            if comp in cluster.components and cluster.ours(comp):
                pid = cluster.components[comp]
                processes.stop([pid], grace=0, kill_wait=timeouts.kill_wait, what=comp)
        pods = processes.pod_pids(node.cgroup_root) | set(shim_pids(layout, node))
        processes.signal_all(pods, signal.SIGKILL)
        processes.stop(pods, grace=0, kill_wait=timeouts.kill_wait, what=f"{name}'s pods")
        sh("ip", "-n", SWITCH_NETNS, "link", "set", node.switch_port, "down")


def start_node(layout: Layout | None, name: str, timeouts: Timeouts) -> None:
    """Bring worker ``name`` back after :func:`stop_node`: link up, containerd, kubelet
    and kube-proxy started, and the node Ready with a heartbeat from after the restart."""
    layout = layout or Layout.default()
    with exclusive(layout):
        cluster = running(layout)
        node = worker(cluster, name)
        if any(cluster.ours(node.component(kind)) for kind in AGENTS):
            raise EngineError(
                f"node {name} is running: stop it first (`codelab-cluster node stop`)"
            )
        since = time.time()
        sh("ip", "-n", SWITCH_NETNS, "link", "set", node.switch_port, "up")
        s = Starter(cluster, timeouts)
        layout.node_containerd_socket(node).unlink(missing_ok=True)
        start_containerd(s, node)
        wait_containerd(s, node)
        kubelet = s.start(node.component("kubelet"), config.kubelet_args(layout, node), node)
        proxy = s.start(node.component("kube-proxy"), config.kube_proxy_args(layout, node), node)
        t = timeouts
        wait_component(proxy, http_ok(f"http://{node.ip}:10256/healthz", t.probe), t.component)
        wait_component(kubelet, heartbeat_after(layout, name, since, t.probe), t.node)


def heartbeat_after(layout: Layout, name: str, since: float, timeout: float) -> Probe:
    """Probe: node ``name`` is Ready with a heartbeat taken after ``since`` (epoch seconds;
    the API's timestamps have whole seconds)."""
    tls = admin_tls(layout)

    def probe() -> tuple[bool, str]:
        r = requests.get(f"{layout.server}/api/v1/nodes/{name}", timeout=timeout, **tls)
        if r.status_code != 200:
            return False, f"node {name}: HTTP {r.status_code}"
        conds = {c["type"]: c for c in r.json().get("status", {}).get("conditions", [])}
        ready = conds.get("Ready", {})
        beat = ready.get("lastHeartbeatTime", "1970-01-01T00:00:00Z")
        at = datetime.fromisoformat(beat.replace("Z", "+00:00")).timestamp()
        fresh = at >= int(since)
        ok = ready.get("status") == "True" and fresh
        return (
            ok,
            f"{name} Ready={ready.get('status')} heartbeat {beat} ({'new' if fresh else 'old'})",
        )

    return probe


def main_node(verb: str, name: str, timeout_scale: float = 1.0) -> None:
    """``codelab-cluster node stop|start NAME``, with progress."""
    timeouts = Timeouts().scaled(timeout_scale)
    with step(f"node {verb} {name}"):
        (stop_node if verb == "stop" else start_node)(None, name, timeouts)
