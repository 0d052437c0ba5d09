"""Bring the local cluster up as ordered actions, each with one job and a readiness wait.

Modelled on kind's create actions: an action either leaves its component ready or raises
an EngineError naming the component, with its last log lines. A failed ``up`` tears down
what it started, so nothing is left behind.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import requests
import urllib3

from pytest_codelab.engine import addons, certmanager, config, pki, processes, velero, vpa
from pytest_codelab.engine.down import down_locked
from pytest_codelab.engine.errors import EngineError
from pytest_codelab.engine.images import loading
from pytest_codelab.engine.layout import (
    API_SERVICE_IP,
    CONTROL_PLANE_TAINT,
    DEFAULT_WORKERS,
    HOST_IP,
    HOST_VETH,
    MAX_WORKERS,
    NETNS,
    NODE_IP,
    NODE_NAME,
    NODE_PREFIX,
    NODE_VETH,
    SWITCH_BRIDGE,
    SWITCH_NETNS,
    SWITCH_UPLINK,
    Layout,
    Node,
    cluster_nodes,
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


def setup_switch() -> None:
    """The switch: a namespace with the bridge every node's link plugs into, joined to
    the host by the veth ``codelab0`` (the host's address on the node network)."""
    sh("ip", "netns", "add", SWITCH_NETNS)
    sw = ("ip", "-n", SWITCH_NETNS)
    sh(*sw, "link", "set", "lo", "up")
    sh(*sw, "link", "add", SWITCH_BRIDGE, "type", "bridge")
    sh(*sw, "link", "set", SWITCH_BRIDGE, "up")
    sh(
        "ip", "link", "add", HOST_VETH, "type", "veth",
        "peer", "name", SWITCH_UPLINK, "netns", SWITCH_NETNS,
    )  # fmt: skip
    sh(*sw, "link", "set", SWITCH_UPLINK, "master", SWITCH_BRIDGE, "up")
    sh("ip", "addr", "add", f"{HOST_IP}/{NODE_PREFIX}", "dev", HOST_VETH)
    sh("ip", "link", "set", HOST_VETH, "up")
    # Frames between nodes are only switched here: no packet filter of this namespace.
    sh("ip", "netns", "exec", SWITCH_NETNS, "sysctl", "-qw", "net.bridge.bridge-nf-call-iptables=0")


def setup_node_network(node: Node, nodes: list[Node]) -> None:
    """A node's namespace, its link to the switch, and routes to every other node's pods."""
    sh("ip", "netns", "add", node.netns)
    sw = ("ip", "-n", SWITCH_NETNS)
    sh(*sw, "link", "add", node.switch_port, "type", "veth",
       "peer", "name", NODE_VETH, "netns", node.netns)  # fmt: skip
    sh(*sw, "link", "set", node.switch_port, "master", SWITCH_BRIDGE, "up")
    ns = ("ip", "-n", node.netns)
    sh(*ns, "addr", "add", f"{node.ip}/{NODE_PREFIX}", "dev", NODE_VETH)
    sh(*ns, "link", "set", NODE_VETH, "up")
    sh(*ns, "link", "set", "lo", "up")
    sh(*ns, "route", "add", "default", "via", HOST_IP)
    for other in nodes:
        if other != node:
            sh(*ns, "route", "add", other.pod_cidr, "via", other.ip)
    for key, value in (
        ("net.ipv4.ip_forward", "1"),
        ("net.bridge.bridge-nf-call-iptables", "1"),
        ("net.ipv4.conf.all.route_localnet", "1"),
    ):
        sh("ip", "netns", "exec", node.netns, "sysctl", "-qw", f"{key}={value}")
    sh("ip", "netns", "exec", node.netns, "iptables", *config.masquerade_rule())


def setup_network(nodes: list[Node]) -> None:
    """The switch and every node's namespace."""
    setup_switch()
    for node in nodes:
        setup_node_network(node, nodes)


def make_pki(layout: Layout, nodes: list[Node]) -> None:
    """Fresh CAs, certificates and kubeconfigs for every component and node."""
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
    proxy_ca.issue(d / "front-proxy-client", "front-proxy-client", client=True)
    pki.service_account_key(d)
    identities = {
        layout.state / "kubeconfig": ("codelab-admin", "system:masters"),
        layout.state / "controller-manager.kubeconfig": ("system:kube-controller-manager", None),
        layout.state / "scheduler.kubeconfig": ("system:kube-scheduler", None),
        layout.state / "kube-proxy.kubeconfig": ("system:kube-proxy", None),
    }
    for node in nodes:
        ca.issue(
            d / f"kubelet-server-{node.name}", node.name, server=True, hosts=(node.name, node.ip)
        )
        layout.node_dir(node).mkdir(parents=True, exist_ok=True)
        kubeconfig = layout.node_dir(node) / "kubelet.kubeconfig"
        identities[kubeconfig] = (f"system:node:{node.name}", "system:nodes")
    for path, (cn, org) in identities.items():
        pair = ca.issue(d / cn.replace(":", "-"), cn, org=org, client=True)
        pki.kubeconfig(path, server=layout.server, ca=ca.pair.cert, client=pair, user=cn)


def write_configs(layout: Layout, nodes: list[Node]) -> None:
    """Every component's configuration file, and each node's cgroup subtree."""
    config.write(layout.state / "resolv.conf", "")
    for node in nodes:
        n = layout.node_dir(node)
        config.write(n / "containerd.toml", config.containerd_config(layout, node))
        config.write(n / "cni" / "10-codelab.conflist", config.cni_config(layout, node))
        config.write(n / "kubelet.yaml", config.kubelet_config(layout, node))
        config.write(n / "kube-proxy.yaml", config.kube_proxy_config(layout, node))
        layout.node_volumes(node).mkdir(parents=True, exist_ok=True)
        processes.make_node_cgroup(node.cgroup_root)


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
        self.nodes = cluster_nodes(cluster.workers)

    def start(self, name: str, argv: list[str], node: Node | None = None) -> processes.Component:
        netns = node.netns if node else NETNS
        comp = processes.start(self.layout, name, argv, netns=netns)
        self.cluster.components[name] = comp.pid
        self.cluster.save()
        return comp

    def datastore_runtime_apiserver(self, with_addons: bool) -> None:
        """etcd, every node's containerd and the API server start together (the API
        server retries etcd); images are imported while the API server boots."""
        lay, t = self.layout, self.timeouts
        etcd = self.start("etcd", config.etcd_args(lay))
        api = self.start("kube-apiserver", config.apiserver_args(lay))
        for node in self.nodes:
            start_containerd(self, node)
        wait_component(etcd, http_ok(f"http://{NODE_IP}:2381/health", t.probe), t.component)
        for node in self.nodes:
            wait_containerd(self, node)
        with step(f"images into {len(self.nodes)} nodes"):
            loading.load_engine_images(lay, with_addons, t, self.nodes)
        wait_component(api, http_ok(f"{lay.server}/readyz", t.probe, **admin_tls(lay)), t.apiserver)

    def control_plane_and_nodes(self, with_addons: bool) -> None:
        """Controllers, scheduler, and every node's kubelet and kube-proxy start together;
        add-on objects are created while the nodes register."""
        lay, t = self.layout, self.timeouts
        cm = self.start("kube-controller-manager", config.controller_manager_args(lay))
        sched = self.start("kube-scheduler", config.scheduler_args(lay))
        started = [start_node_agents(self, node) for node in self.nodes]
        if with_addons:
            addons.apply(lay, self.nodes, t)
        for comp, url, tls in (
            (cm, f"https://{NODE_IP}:10257/healthz", {"verify": False}),
            (sched, f"https://{NODE_IP}:10259/healthz", {"verify": False}),
        ):
            wait_component(comp, http_ok(url, t.probe, **tls), t.component)
        for node, (kubelet, proxy) in zip(self.nodes, started, strict=True):
            wait_node_agents(self, node, kubelet, proxy)
        mark_nodes(lay, self.nodes, t)


def start_containerd(s: Starter, node: Node) -> processes.Component:
    """Start a node's containerd."""
    return s.start(node.component("containerd"), config.containerd_args(s.layout, node), node)


def wait_containerd(s: Starter, node: Node) -> None:
    """Wait until a node's containerd serves its socket."""
    comp = recorded(s, node.component("containerd"))
    sock = s.layout.node_containerd_socket(node)
    wait_component(comp, lambda: (sock.exists(), f"no socket {sock} yet"), s.timeouts.component)


def start_node_agents(s: Starter, node: Node) -> tuple[processes.Component, processes.Component]:
    """Start a node's kubelet and kube-proxy."""
    lay = s.layout
    kubelet = s.start(node.component("kubelet"), config.kubelet_args(lay, node), node)
    proxy = s.start(node.component("kube-proxy"), config.kube_proxy_args(lay, node), node)
    return kubelet, proxy


def wait_node_agents(
    s: Starter, node: Node, kubelet: processes.Component, proxy: processes.Component
) -> None:
    """Wait for a node's kube-proxy to answer and the node to be Ready."""
    t = s.timeouts
    wait_component(proxy, http_ok(f"http://{node.ip}:10256/healthz", t.probe), t.component)
    wait_component(kubelet, node_ready(s.layout, node.name, t.probe), t.node)


def recorded(s: Starter, name: str) -> processes.Component:
    """The started component ``name`` as the record has it."""
    return processes.Component(name, s.cluster.components[name], s.layout.logs / f"{name}.log")


def mark_nodes(layout: Layout, nodes: list[Node], timeouts: Timeouts) -> None:
    """What a kubelet may not say about itself: the control plane's role label, and each
    node's pod range (fixed by the engine, see config.cni_config)."""
    kubectl = addons.kubectl
    t = timeouts.kubectl
    cp = nodes[0]
    kubectl(layout, "label", "node", cp.name, "--overwrite", f"{CONTROL_PLANE_TAINT}=", timeout=t)
    for node in nodes:
        spec = {"spec": {"podCIDR": node.pod_cidr, "podCIDRs": [node.pod_cidr]}}
        kubectl(layout, "patch", "node", node.name, "-p", json.dumps(spec), timeout=t)


def node_ready(layout: Layout, name: str, timeout: float) -> Callable[[], tuple[bool, str]]:
    """Probe: node ``name`` is registered and its Ready condition is True (each request
    within ``timeout`` seconds), and the ``default`` service account exists."""
    tls = admin_tls(layout)

    def probe() -> tuple[bool, str]:
        r = requests.get(f"{layout.server}/api/v1/nodes/{name}", timeout=timeout, **tls)
        if r.status_code != 200:
            return False, f"node {name} not registered (HTTP {r.status_code})"
        conds = {c["type"]: c for c in r.json().get("status", {}).get("conditions", [])}
        ready = conds.get("Ready", {})
        if ready.get("status") != "True":
            return False, f"{name} Ready={ready.get('status')} {ready.get('message', '')}"
        # Pods cannot be created before the service-account controller made `default`.
        sa = requests.get(
            f"{layout.server}/api/v1/namespaces/default/serviceaccounts/default",
            timeout=timeout,
            **tls,
        )
        return (
            sa.status_code == 200,
            f"{name} Ready; default service account: HTTP {sa.status_code}",
        )

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
    workers: int = DEFAULT_WORKERS,
) -> Cluster:
    """Start the cluster (a control plane and ``workers`` workers); refuse if one runs; on
    failure tear down what was started.

    Every deadline of the start (and of the add-ons in ``extras``) is its base value in
    :class:`~pytest_codelab.engine.timeouts.Timeouts` times ``timeout_scale``.
    """
    if not 1 <= workers <= MAX_WORKERS:
        raise EngineError(f"--workers must be between 1 and {MAX_WORKERS}, not {workers}")
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
            workers=workers,
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
        f"[codelab] cluster up ({workers + 1} nodes: 1 control plane, {workers} workers) in "
        f"{time.monotonic() - started:.1f}s; kubeconfig: {layout.kubeconfig}",
        flush=True,
    )
    return cluster


def install_extras(layout: Layout, extras: Iterable[str], timeout_scale: float = 1.0) -> None:
    """Optional add-ons on a running cluster (idempotent): ``velero``, ``cert-manager``
    (with Pebble and ClusterIssuer letsencrypt-prod), ``vpa``."""
    if "velero" in extras:
        velero.install(layout, timeout_scale=timeout_scale)
    if "cert-manager" in extras:
        certmanager.install(layout, timeout_scale=timeout_scale)
    if "vpa" in extras:
        vpa.install(layout, timeout_scale=timeout_scale)


def run_actions(cluster: Cluster, with_addons: bool, timeouts: Timeouts) -> None:
    """The ordered start-up actions."""
    layout = cluster.layout
    s = Starter(cluster, timeouts)
    n = len(s.nodes)
    with step(f"network: switch and {n} node namespaces"):
        setup_network(s.nodes)
    with step("certificates and configuration"):
        make_pki(layout, s.nodes)
        write_configs(layout, s.nodes)
    with step(f"etcd, kube-apiserver, {n} containerd"):
        s.datastore_runtime_apiserver(with_addons)
    with step(f"controller-manager, scheduler, {n} kubelet and kube-proxy; nodes Ready"):
        s.control_plane_and_nodes(with_addons)
    if with_addons:
        with step("add-ons Ready (NetworkPolicy enforcer, CoreDNS, local-path, Traefik)") as st:
            addons.wait(layout, timeouts)
            st.note("ok; the metrics API serves after metrics-server's first scrape, ~10 s")
