"""The cluster's add-ons: DNS, metrics, volumes and ingress, applied and waited for.

The manifests live beside this module as YAML with ``${NAME}`` placeholders for images
and paths, so what runs in the cluster can be read as plain Kubernetes objects.
"""

from __future__ import annotations

import subprocess
from importlib import resources
from string import Template

from pytest_codelab.engine import processes, versions
from pytest_codelab.engine.errors import EngineError
from pytest_codelab.engine.layout import DNS_IP, NODE_IP, Layout
from pytest_codelab.engine.timeouts import Timeouts, seconds_flag

ADDONS = ("coredns", "metrics-server", "local-path", "traefik")

#: Ingress annotations the local ingress controller does not implement, and why (a suite
#: that checks one skips with the reason). None now: proxy-body-size, the one Traefik 3.6
#: lacked, is added by the engine's build (engine/patches).
INGRESS_GAPS: dict[str, str] = {}


#: (namespace, kind/name, condition) that say an add-on is ready.
READY = (
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


def substitutions(layout: Layout) -> dict[str, str]:
    """Values of the placeholders in the add-on manifests."""
    return {
        "COREDNS_IMAGE": versions.COREDNS_IMAGE,
        "METRICS_SERVER_IMAGE": versions.METRICS_SERVER_IMAGE,
        "LOCAL_PATH_IMAGE": versions.LOCAL_PATH_IMAGE,
        "TRAEFIK_IMAGE": versions.TRAEFIK_IMAGE,
        "BUSYBOX_IMAGE": versions.BUSYBOX_IMAGE,
        "DNS_IP": DNS_IP,
        "NODE_IP": NODE_IP,
        "VOLUME_DIR": str(layout.volumes),
        "GOGC": processes.GOGC,
    }


def render(layout: Layout) -> str:
    """All add-on manifests as one YAML stream, placeholders filled."""
    folder = resources.files("pytest_codelab.engine") / "addons"
    values = substitutions(layout)
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


def apply(layout: Layout, timeouts: Timeouts) -> None:
    """Create every add-on's objects (their pods start once the node is Ready)."""
    kubectl(
        layout,
        "apply",
        "--server-side",
        "--force-conflicts",
        "-f",
        "-",
        stdin=render(layout),
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
        try:
            kubectl(
                layout,
                *ns,
                "wait",
                f"--for=condition={condition}",
                target,
                f"--timeout={seconds_flag(timeout)}",
                timeout=timeout + timeouts.slack,
            )
        except EngineError as exc:
            raise EngineError(
                f"add-on {target} did not become {condition} within {timeout:g}s",
                exc.detail + "\n" + describe_pods(layout, namespace, timeouts),
            ) from exc


def apply_and_wait(layout: Layout, timeouts: Timeouts) -> None:
    """Apply every add-on, then wait until each reports its ready condition."""
    apply(layout, timeouts)
    wait(layout, timeouts, READY + WARMING)


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
