"""What the local cluster is doing: running or not, where its kubeconfig is."""

from __future__ import annotations

from pytest_codelab.engine import processes, versions
from pytest_codelab.engine.layout import Layout
from pytest_codelab.engine.state import Cluster


def running_cluster(layout: Layout | None = None) -> Cluster | None:
    """The running cluster's record, or None."""
    layout = layout or Layout.default()
    cluster = Cluster.load(layout)
    return cluster if cluster and cluster.running() else None


def print_status(layout: Layout | None = None) -> int:
    """Print the status; exit code 0 when the cluster runs, 3 when it does not."""
    layout = layout or Layout.default()
    recorded = Cluster.load(layout)
    cluster = recorded if recorded and recorded.running() else None
    if cluster is None:
        print(f"local cluster: not running (Kubernetes {versions.KUBERNETES})")
        for line in stale_lines(recorded):
            print(line)
        return 3
    print(f"local cluster: running (Kubernetes {versions.KUBERNETES})")
    print(f"kubeconfig: {layout.kubeconfig}")
    print(f"api server: {layout.server}")
    print(f"ingress: {layout.ingress_url}")
    print(f"nodes: 1 control plane + {cluster.workers} workers")
    for name, pid in sorted(cluster.components.items()):
        print(f"  {name:<24} pid {pid:<8} {component_state(cluster, name, pid)}")
    return 0


def component_state(cluster: Cluster, name: str, pid: int) -> str:
    """running, DEAD, or NOT OURS with what the pid runs now (a reused pid)."""
    if cluster.ours(name):
        return "running"
    if processes.alive(pid):
        return f"NOT OURS ({processes.describe(pid)}; left alone)"
    return "DEAD"


def stale_lines(recorded: Cluster | None) -> list[str]:
    """Lines on a record left behind whose pids now belong to other processes."""
    if recorded is None:
        return []
    return [
        f"stale record {recorded.layout.lock}: {name} {processes.describe(pid)}, "
        "not the engine's process; left alone (`codelab-cluster down` removes the record)"
        for name, pid in sorted(recorded.foreign().items())
    ]
