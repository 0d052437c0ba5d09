"""Bring the local cluster up as ordered actions, each with one job and a readiness wait.

Modelled on kind's create actions: an action either leaves its component ready or raises
an EngineError naming the component, with its last log lines. A failed ``up`` tears down
what it started, so nothing is left behind.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import requests
import urllib3

from pytest_codelab.engine import addons, config, pki, processes, velero
from pytest_codelab.engine.down import down_locked
from pytest_codelab.engine.errors import EngineError
from pytest_codelab.engine.images import loading
from pytest_codelab.engine.layout import (
    API_SERVICE_IP,
    HOST_IP,
    HOST_VETH,
    NETNS,
    NODE_IP,
    NODE_NAME,
    NODE_VETH,
    VETH_PREFIX,
    Layout,
)
from pytest_codelab.engine.progress import step
from pytest_codelab.engine.state import Cluster, exclusive
from pytest_codelab.engine.timeouts import Timeouts
from pytest_codelab.engine.waiting import poll, timed_out

urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)

#: Host sysctls kubelet changes; recorded before ``up`` and restored by ``down``.
KUBELET_SYSCTLS = (
    "vm/overcommit_memory",
    "vm/panic_on_oom",
    "kernel/panic",
    "kernel/panic_on_oops",
    "kernel/keys/root_maxkeys",
    "kernel/keys/root_maxbytes",
)


def sh(*cmd: str) -> str:
    """Run a host command for set-up; failures carry the command and its output."""
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        raise EngineError.from_command(list(cmd), proc.returncode, proc.stdout)
    return proc.stdout


def preflight(layout: Layout) -> None:
    """Root, built binaries, and no other cluster of ours on this machine."""
    if os.geteuid() != 0:
        raise EngineError("codelab-cluster up needs root (it creates a network namespace)")
    missing = [
        n
        for n in ("kube-apiserver", "kubelet", "etcd", "containerd", "runc")
        if not (layout.bin / n).exists()
    ]
    if missing:
        raise EngineError(
            f"engine not built (missing {', '.join(missing)} in {layout.bin}): "
            "run `codelab-cluster build` first"
        )


def setup_network() -> None:
    """The cluster's network namespace and its veth link to the host."""
    sh("ip", "netns", "add", NETNS)
    sh("ip", "link", "add", HOST_VETH, "type", "veth", "peer", "name", NODE_VETH, "netns", NETNS)
    sh("ip", "addr", "add", f"{HOST_IP}/{VETH_PREFIX}", "dev", HOST_VETH)
    sh("ip", "link", "set", HOST_VETH, "up")
    ns = ("ip", "-n", NETNS)
    sh(*ns, "addr", "add", f"{NODE_IP}/{VETH_PREFIX}", "dev", NODE_VETH)
    sh(*ns, "link", "set", NODE_VETH, "up")
    sh(*ns, "link", "set", "lo", "up")
    sh(*ns, "route", "add", "default", "via", HOST_IP)
    for key, value in (
        ("net.ipv4.ip_forward", "1"),
        ("net.bridge.bridge-nf-call-iptables", "1"),
        ("net.ipv4.conf.all.route_localnet", "1"),
    ):
        sh("ip", "netns", "exec", NETNS, "sysctl", "-qw", f"{key}={value}")


def make_pki(layout: Layout) -> None:
    """Fresh CAs, certificates and kubeconfigs for every component."""
    d = layout.pki
    ca = pki.Authority(d, "ca")
    etcd_ca = pki.Authority(d, "etcd-ca")
    proxy_ca = pki.Authority(d, "front-proxy-ca")
    etcd_ca.issue(
        d / "etcd-server",
        NODE_NAME,
        server=True,
        client=True,
        hosts=(NODE_IP, "127.0.0.1", "localhost"),
    )
    etcd_ca.issue(d / "apiserver-etcd-client", "kube-apiserver-etcd-client", client=True)
    ca.issue(
        d / "apiserver",
        "kube-apiserver",
        server=True,
        hosts=(
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
            "localhost",
            "127.0.0.1",
            NODE_IP,
            API_SERVICE_IP,
        ),
    )
    ca.issue(
        d / "apiserver-kubelet-client",
        "kube-apiserver-kubelet-client",
        org="system:masters",
        client=True,
    )
    ca.issue(d / "kubelet-server", NODE_NAME, server=True, hosts=(NODE_NAME, NODE_IP))
    proxy_ca.issue(d / "front-proxy-client", "front-proxy-client", client=True)
    pki.service_account_key(d)
    identities = {
        "kubeconfig": ("codelab-admin", "system:masters"),
        "controller-manager.kubeconfig": ("system:kube-controller-manager", None),
        "scheduler.kubeconfig": ("system:kube-scheduler", None),
        "kubelet.kubeconfig": (f"system:node:{NODE_NAME}", "system:nodes"),
        "kube-proxy.kubeconfig": ("system:kube-proxy", None),
    }
    for filename, (cn, org) in identities.items():
        pair = ca.issue(d / cn.replace(":", "-"), cn, org=org, client=True)
        pki.kubeconfig(
            layout.state / filename, server=layout.server, ca=ca.pair.cert, client=pair, user=cn
        )


def write_configs(layout: Layout) -> None:
    """Every component's configuration file."""
    s = layout.state
    config.write(s / "containerd.toml", config.containerd_config(layout))
    config.write(s / "cni" / "10-codelab.conflist", config.cni_config(layout))
    config.write(s / "kubelet.yaml", config.kubelet_config(layout))
    config.write(s / "kube-proxy.yaml", config.kube_proxy_config(layout))
    config.write(s / "resolv.conf", "")
    layout.volumes.mkdir(parents=True, exist_ok=True)


def admin_tls(layout: Layout) -> dict[str, Any]:
    """requests arguments for the API server as the cluster admin (client certificate).

    Passed per call: a Session with ``verify`` set as an attribute was seen to ignore it.
    """
    return {
        "verify": str(layout.pki / "ca.crt"),
        "cert": (str(layout.pki / "codelab-admin.crt"), str(layout.pki / "codelab-admin.key")),
    }


def http_ok(url: str, timeout: float, **kw: Any) -> Callable[[], tuple[bool, str]]:
    """A readiness probe: True when GET ``url`` answers 200 within ``timeout`` seconds."""

    def probe() -> tuple[bool, str]:
        try:
            r = requests.get(url, timeout=timeout, **kw)
        except requests.RequestException as exc:
            return False, f"{type(exc).__name__}: {str(exc)[-160:]}"
        return r.status_code == 200, f"HTTP {r.status_code} {r.text[:120]!r}"

    return probe


def wait_component(
    comp: processes.Component, probe: Callable[[], tuple[bool, str]], timeout: float
) -> None:
    """Wait for a component's readiness probe; a dead process or a timeout names it, with
    the last lines of its log."""

    def check() -> tuple[bool, str]:
        processes.check_running(comp)
        return probe()

    met, last = poll(check, timeout=timeout, interval=0.1)
    if not met:
        raise EngineError(
            timed_out(timeout, f"{comp.name} to be ready", last), processes.log_tail(comp.log)
        )


class Starter:
    """Runs the ordered actions and records each started component."""

    def __init__(self, cluster: Cluster, timeouts: Timeouts) -> None:
        self.cluster = cluster
        self.layout = cluster.layout
        self.timeouts = timeouts

    def start(self, name: str, argv: list[str]) -> processes.Component:
        comp = processes.start(self.layout, name, argv)
        self.cluster.components[name] = comp.pid
        self.cluster.save()
        return comp

    def datastore_runtime_apiserver(self, with_addons: bool) -> None:
        """etcd, containerd and the API server start together (the API server retries
        etcd); images are imported while the API server boots."""
        lay, t = self.layout, self.timeouts
        etcd = self.start("etcd", config.etcd_args(lay))
        ctrd = self.start(
            "containerd",
            [str(lay.bin / "containerd"), "--config", str(lay.state / "containerd.toml")],
        )
        api = self.start("kube-apiserver", config.apiserver_args(lay))
        wait_component(etcd, http_ok(f"http://{NODE_IP}:2381/health", t.probe), t.component)
        wait_component(ctrd, lambda: (lay.containerd_socket.exists(), "no socket yet"), t.component)
        with step("images"):
            loading.load_engine_images(lay, with_addons, t)
        wait_component(api, http_ok(f"{lay.server}/readyz", t.probe, **admin_tls(lay)), t.apiserver)

    def control_plane_and_node(self, with_addons: bool) -> None:
        """Controllers, scheduler, kubelet and kube-proxy start together; add-on objects are
        created while the node registers."""
        lay, t = self.layout, self.timeouts
        cm = self.start("kube-controller-manager", config.controller_manager_args(lay))
        sched = self.start("kube-scheduler", config.scheduler_args(lay))
        kubelet = self.start("kubelet", config.kubelet_args(lay))
        proxy = self.start("kube-proxy", config.kube_proxy_args(lay))
        if with_addons:
            addons.apply(lay, t)
        for comp, url, tls in (
            (cm, f"https://{NODE_IP}:10257/healthz", {"verify": False}),
            (sched, f"https://{NODE_IP}:10259/healthz", {"verify": False}),
            (proxy, f"http://{NODE_IP}:10256/healthz", {}),
        ):
            wait_component(comp, http_ok(url, t.probe, **tls), t.component)
        wait_component(kubelet, node_ready(lay, t.probe), t.node)


def node_ready(layout: Layout, timeout: float) -> Callable[[], tuple[bool, str]]:
    """Probe: the node is registered and its Ready condition is True (each request within
    ``timeout`` seconds)."""
    tls = admin_tls(layout)

    def probe() -> tuple[bool, str]:
        r = requests.get(f"{layout.server}/api/v1/nodes/{NODE_NAME}", timeout=timeout, **tls)
        if r.status_code != 200:
            return False, f"node not registered (HTTP {r.status_code})"
        conds = {c["type"]: c for c in r.json().get("status", {}).get("conditions", [])}
        ready = conds.get("Ready", {})
        if ready.get("status") != "True":
            return False, f"Ready={ready.get('status')} {ready.get('message', '')}"
        # Pods cannot be created before the service-account controller made `default`.
        sa = requests.get(
            f"{layout.server}/api/v1/namespaces/default/serviceaccounts/default",
            timeout=timeout,
            **tls,
        )
        return sa.status_code == 200, f"node Ready; default service account: HTTP {sa.status_code}"

    return probe


def record_sysctls() -> dict[str, str]:
    """Current values of the host sysctls kubelet will change."""
    return {k: Path("/proc/sys", k).read_text().strip() for k in KUBELET_SYSCTLS}


def up(
    layout: Layout | None = None,
    *,
    with_addons: bool = True,
    extras: Iterable[str] = (),
    timeout_scale: float = 1.0,
) -> Cluster:
    """Start the cluster; refuse if one runs; on failure tear down what was started.

    Every deadline of the start (and of the add-ons in ``extras``) is its base value in
    :class:`~pytest_codelab.engine.timeouts.Timeouts` times ``timeout_scale``.
    """
    timeouts = Timeouts().scaled(timeout_scale)
    layout = layout or Layout.default()
    started = time.monotonic()
    with exclusive(layout):
        existing = Cluster.load(layout)
        if existing and existing.running():
            raise EngineError(
                f"a local cluster is already running (kubeconfig: {layout.kubeconfig}); "
                "use it, or run `codelab-cluster down` first"
            )
        if existing or layout.state.exists():
            with step("cleaning up a cluster left by a killed run"):
                down_locked(layout, timeouts)
        preflight(layout)
        layout.state.mkdir(parents=True)
        cluster = Cluster(
            layout,
            sysctls=record_sysctls(),
            started_at=time.time(),
            created_log_dir=not Path("/var/log/containers").exists(),
        )
        cluster.save()
        try:
            run_actions(cluster, with_addons, timeouts)
            install_extras(layout, extras, timeout_scale)
        except BaseException:
            with step("tearing down after the failed start"):
                down_locked(layout, timeouts)
            raise
    print(
        f"[codelab] cluster up in {time.monotonic() - started:.1f}s; "
        f"kubeconfig: {layout.kubeconfig}",
        flush=True,
    )
    return cluster


def install_extras(layout: Layout, extras: Iterable[str], timeout_scale: float = 1.0) -> None:
    """Optional add-ons on a running cluster (idempotent): ``velero``."""
    if "velero" in extras:
        velero.install(layout, timeout_scale=timeout_scale)


def run_actions(cluster: Cluster, with_addons: bool, timeouts: Timeouts) -> None:
    """The ordered start-up actions."""
    layout = cluster.layout
    s = Starter(cluster, timeouts)
    with step("network namespace"):
        setup_network()
    with step("certificates and configuration"):
        make_pki(layout)
        write_configs(layout)
    with step("etcd, containerd, kube-apiserver"):
        s.datastore_runtime_apiserver(with_addons)
    with step("controller-manager, scheduler, kubelet, kube-proxy; node Ready"):
        s.control_plane_and_node(with_addons)
    if with_addons:
        with step("add-ons Ready (CoreDNS, local-path, Traefik)") as st:
            addons.wait(layout, timeouts)
            st.note("ok; the metrics API serves after metrics-server's first scrape, ~10 s")
