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
    cluster = running_cluster(layout)
    if cluster is None:
        print(f"local cluster: not running (Kubernetes {versions.KUBERNETES})")
        return 3
    print(f"local cluster: running (Kubernetes {versions.KUBERNETES})")
    print(f"kubeconfig: {layout.kubeconfig}")
    print(f"api server: {layout.server}")
    print(f"ingress: {layout.ingress_url}")
    for name, pid in sorted(cluster.components.items()):
        state = "running" if processes.alive(pid) else "DEAD"
        print(f"  {name:<24} pid {pid:<8} {state}")
    return 0
