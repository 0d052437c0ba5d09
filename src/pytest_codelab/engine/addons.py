"""The cluster's add-ons: DNS, metrics, volumes and ingress, applied and waited for.

The manifests live beside this module as YAML with ``${NAME}`` placeholders for images
and paths, so what runs in the cluster can be read as plain Kubernetes objects.
"""

from __future__ import annotations

import json
import subprocess
from importlib import resources
from string import Template

from pytest_codelab.engine import processes, versions
from pytest_codelab.engine.errors import EngineError
from pytest_codelab.engine.layout import DNS_IP, NODE_IP, Layout, Node
from pytest_codelab.engine.timeouts import Timeouts, seconds_flag

ADDONS = ("network-policies", "coredns", "metrics-server", "local-path", "traefik")

#: Ingress annotations the local ingress controller does not implement, and why (a suite
#: that checks one skips with the reason). proxy-body-size, which Traefik 3.6 lacked, is
#: added by the engine's build (engine/patches); the per-Ingress timeouts and retries below
#: are not: the controller-wide ingress-nginx defaults of addons/traefik.yaml apply instead.
_NO_PER_INGRESS = (
    "ignored by Traefik 3.6's nginx provider, which has no per-Ingress {what}; the local "
    "controller applies ingress-nginx's default {default} to every Ingress"
)
INGRESS_GAPS: dict[str, str] = {
    "nginx.ingress.kubernetes.io/proxy-connect-timeout": _NO_PER_INGRESS.format(
        what="timeouts", default="connect timeout (5s)"
    ),
    "nginx.ingress.kubernetes.io/proxy-read-timeout": (
        "ignored by Traefik 3.6's nginx provider, which has no per-Ingress timeouts; the "
        "local controller waits for a response without a deadline (none is set controller-"
        "wide, so as not to cut an Ingress that allows more than ingress-nginx's 60s)"
    ),
    "nginx.ingress.kubernetes.io/proxy-send-timeout": (
        "ignored: Traefik has no timeout between two writes to the upstream"
    ),
    "nginx.ingress.kubernetes.io/proxy-next-upstream": _NO_PER_INGRESS.format(
        what="retry policy", default='"error timeout" (connection errors only)'
    ),
    "nginx.ingress.kubernetes.io/proxy-next-upstream-tries": _NO_PER_INGRESS.format(
        what="retry policy", default="3 tries"
    ),
}


#: (namespace, kind/name, condition) that say an add-on is ready; ``nodes-ready`` stands
#: for a DaemonSet with a Ready pod on every node.
READY = (
    ("kube-system", "daemonset/kube-network-policies", "nodes-ready"),
    ("kube-system", "deployment/coredns", "Available"),
    ("local-path-storage", "deployment/local-path-provisioner", "Available"),
    ("ingress-nginx", "deployment/ingress-nginx-controller", "Available"),
)
#: Ready only after metrics-server's first scrape (one --metric-resolution after its
#: start): ``up`` leaves this wait to whoever reads metrics (the gate's metrics checks poll
#: with a deadline and say what they saw) instead of adding it to every start.
WARMING = (
    ("kube-system", "deployment/metrics-server", "Available"),
    (None, "apiservice/v1beta1.metrics.k8s.io", "Available"),
)


def node_path_map(layout: Layout, nodes: list[Node]) -> str:
    """local-path-provisioner's nodePathMap: each node's volumes in that node's folder, so
    a volume's data stays on the node it was made on (its PV is pinned there too)."""
    return json.dumps([{"node": n.name, "paths": [str(layout.node_volumes(n))]} for n in nodes])


def substitutions(layout: Layout, nodes: list[Node]) -> dict[str, str]:
    """Values of the placeholders in the add-on manifests."""
    return {
        "KUBE_NETWORK_POLICIES_IMAGE": versions.KUBE_NETWORK_POLICIES_IMAGE,
        "NODE_PATH_MAP": node_path_map(layout, nodes),
        "COREDNS_IMAGE": versions.COREDNS_IMAGE,
        "METRICS_SERVER_IMAGE": versions.METRICS_SERVER_IMAGE,
        "LOCAL_PATH_IMAGE": versions.LOCAL_PATH_IMAGE,
        "TRAEFIK_IMAGE": versions.TRAEFIK_IMAGE,
        "BUSYBOX_IMAGE": versions.BUSYBOX_IMAGE,
        "DNS_IP": DNS_IP,
        "NODE_IP": NODE_IP,
        "GOGC": processes.GOGC,
    }


def render(layout: Layout, nodes: list[Node]) -> str:
    """All add-on manifests as one YAML stream, placeholders filled."""
    folder = resources.files("pytest_codelab.engine") / "addons"
    values = substitutions(layout, nodes)
    docs = [Template((folder / f"{n}.yaml").read_text()).substitute(values) for n in ADDONS]
    return "\n---\n".join(docs)


def kubectl(layout: Layout, *args: str, timeout: float, stdin: str | None = None) -> str:
    """Run the engine's kubectl as the cluster admin, killed after ``timeout`` seconds;
    failures carry the command and output."""
    cmd = [str(layout.bin / "kubectl"), "--kubeconfig", str(layout.kubeconfig), *args]
    proc = subprocess.run(
        cmd,
        input=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
    )
    if proc.returncode != 0:
        raise EngineError.from_command(cmd, proc.returncode, proc.stdout)
    return proc.stdout


def apply(layout: Layout, nodes: list[Node], timeouts: Timeouts) -> None:
    """Create every add-on's objects (their pods start once the nodes are Ready)."""
    kubectl(
        layout,
        "apply",
        "--server-side",
        "--force-conflicts",
        "-f",
        "-",
        stdin=render(layout, nodes),
        timeout=timeouts.kubectl,
    )


def wait(
    layout: Layout,
    timeouts: Timeouts,
    targets: tuple[tuple[str | None, str, str], ...] = READY,
) -> None:
    """Wait until each add-on of ``targets`` reports its ready condition (each within
    ``timeouts.addon_ready``)."""
    timeout = timeouts.addon_ready
    for namespace, target, condition in targets:
        ns = ["-n", namespace] if namespace else []
        until = f"condition={condition}"
        if condition == "nodes-ready":
            until = "jsonpath={.status.numberReady}=" + node_count(layout, timeouts)
        try:
            kubectl(
                layout,
                *ns,
                "wait",
                f"--for={until}",
                target,
                f"--timeout={seconds_flag(timeout)}",
                timeout=timeout + timeouts.slack,
            )
        except EngineError as exc:
            raise EngineError(
                f"add-on {target} did not become {condition} within {timeout:g}s",
                exc.detail + "\n" + describe_pods(layout, namespace, timeouts),
            ) from exc


def node_count(layout: Layout, timeouts: Timeouts) -> str:
    """How many nodes the cluster has, as kubectl prints it."""
    names = kubectl(layout, "get", "nodes", "-o", "name", timeout=timeouts.kubectl)
    return str(len(names.split()))


def describe_pods(layout: Layout, namespace: str | None, timeouts: Timeouts) -> str:
    """Pods and recent events of a namespace, for an add-on that is not ready."""
    if namespace is None:
        return ""
    t = timeouts.diagnose
    try:
        pods = kubectl(layout, "-n", namespace, "get", "pods", "-o", "wide", timeout=t)
        events = kubectl(
            layout, "-n", namespace, "get", "events", "--sort-by=.lastTimestamp", timeout=t
        )
    except (EngineError, subprocess.TimeoutExpired) as exc:
        return f"(could not list pods: {exc})"
    return pods + "\n" + "\n".join(events.splitlines()[-15:])
