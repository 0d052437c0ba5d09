"""Configuration files and command lines of each component, derived from the layout.

Kept apart from the start-up sequence so that what each component is told can be read
in one place, flag by flag.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from pytest_codelab.engine import versions
from pytest_codelab.engine.layout import (
    API_PORT,
    CONTROL_PLANE_TAINT,
    DNS_IP,
    NODE_IP,
    NODE_NAME,
    POD_CIDR,
    SERVICE_CIDR,
    ZONE_LABEL,
    Layout,
    Node,
)


def pki(layout: Layout, name: str) -> str:
    """Path of a PKI file by name (``ca.crt``, ``apiserver.key``...)."""
    return str(layout.pki / name)


def etcd_args(layout: Layout) -> list[str]:
    """etcd: one member, TLS for clients and peers, plain HTTP only for /health metrics."""
    url = f"https://{NODE_IP}:2379"
    peer = f"https://{NODE_IP}:2380"
    return [
        str(layout.bin / "etcd"),
        f"--name={NODE_NAME}",
        f"--data-dir={layout.state / 'etcd'}",
        f"--listen-client-urls={url}",
        f"--advertise-client-urls={url}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster={NODE_NAME}={peer}",
        f"--listen-metrics-urls=http://{NODE_IP}:2381",
        f"--cert-file={pki(layout, 'etcd-server.crt')}",
        f"--key-file={pki(layout, 'etcd-server.key')}",
        f"--trusted-ca-file={pki(layout, 'etcd-ca.crt')}",
        "--client-cert-auth=true",
        f"--peer-cert-file={pki(layout, 'etcd-server.crt')}",
        f"--peer-key-file={pki(layout, 'etcd-server.key')}",
        f"--peer-trusted-ca-file={pki(layout, 'etcd-ca.crt')}",
        "--peer-client-cert-auth=true",
        "--snapshot-count=10000",
        "--log-level=warn",
        "--unsafe-no-fsync=true",
    ]


def containerd_config(layout: Layout, node: Node) -> str:
    """containerd 2.x (config version 3): runc via our binary, CNI from the node's folders.

    NRI is off: every containerd would serve the one machine-wide NRI socket.
    """
    runtime = 'plugins."io.containerd.cri.v1.runtime"'
    d = layout.node_dir(node)
    return f"""version = 3
root = "{layout.node_containerd_root(node)}"
state = "{d / "containerd" / "state"}"

[grpc]
  address = "{layout.node_containerd_socket(node)}"

[plugins."io.containerd.nri.v1.nri"]
  disable = true

[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = "{versions.PAUSE_IMAGE}"

[{runtime}]
  # This VM's root lacks CAP_SYS_RESOURCE, so no process may lower its OOM score:
  # clamp the scores kubelet asks for (-998 for sandboxes) to containerd's own.
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  [{runtime}.containerd]
    default_runtime_name = "runc"
    [{runtime}.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [{runtime}.containerd.runtimes.runc.options]
        BinaryName = "{layout.bin / "runc"}"
        Root = "{d / "runc"}"
        SystemdCgroup = false
  [{runtime}.cni]
    bin_dirs = ["{layout.bin / "cni"}"]
    conf_dir = "{d / "cni"}"
"""


def cni_config(layout: Layout, node: Node) -> str:
    """A bridge network for the node's pods, with host ports.

    No masquerade here: the bridge plugin's would hide a pod's address from pods of other
    nodes, so NetworkPolicies could not tell who calls. The node masquerades only what
    leaves the pod network (:func:`masquerade_rule`)."""
    return json.dumps(
        {
            "cniVersion": "1.0.0",
            "name": "codelab",
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": "cni0",
                    "isGateway": True,
                    "ipMasq": False,
                    "hairpinMode": True,
                    "ipam": {
                        "type": "host-local",
                        "ranges": [[{"subnet": node.pod_cidr}]],
                        "routes": [{"dst": "0.0.0.0/0"}],
                        "dataDir": str(layout.node_dir(node) / "cni-ipam"),
                    },
                },
                {"type": "portmap", "capabilities": {"portMappings": True}},
            ],
        },
        indent=2,
    )


def masquerade_rule() -> list[str]:
    """iptables arguments: pods' traffic leaving the pod network takes the node's address
    (inside the pod network, addresses stay as they are)."""
    return [
        "-t", "nat", "-A", "POSTROUTING", "-s", POD_CIDR, "!", "-d", POD_CIDR,
        "-m", "comment", "--comment", "codelab: pods leaving the pod network",
        "-j", "MASQUERADE",
    ]  # fmt: skip


def apiserver_args(layout: Layout) -> list[str]:
    """kube-apiserver: Node+RBAC authorization, TLS to etcd and kubelets, aggregation."""
    p = lambda n: pki(layout, n)  # noqa: E731
    return [
        str(layout.bin / "kube-apiserver"),
        f"--advertise-address={NODE_IP}",
        f"--bind-address={NODE_IP}",
        f"--secure-port={API_PORT}",
        f"--etcd-servers=https://{NODE_IP}:2379",
        f"--etcd-cafile={p('etcd-ca.crt')}",
        f"--etcd-certfile={p('apiserver-etcd-client.crt')}",
        f"--etcd-keyfile={p('apiserver-etcd-client.key')}",
        f"--client-ca-file={p('ca.crt')}",
        f"--tls-cert-file={p('apiserver.crt')}",
        f"--tls-private-key-file={p('apiserver.key')}",
        f"--kubelet-client-certificate={p('apiserver-kubelet-client.crt')}",
        f"--kubelet-client-key={p('apiserver-kubelet-client.key')}",
        f"--kubelet-certificate-authority={p('ca.crt')}",
        "--kubelet-preferred-address-types=InternalIP",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        f"--service-account-key-file={p('sa.pub')}",
        f"--service-account-signing-key-file={p('sa.key')}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        "--authorization-mode=Node,RBAC",
        "--enable-admission-plugins=NodeRestriction",
        "--allow-privileged=true",
        f"--requestheader-client-ca-file={p('front-proxy-ca.crt')}",
        "--requestheader-allowed-names=front-proxy-client",
        "--requestheader-extra-headers-prefix=X-Remote-Extra-",
        "--requestheader-group-headers=X-Remote-Group",
        "--requestheader-username-headers=X-Remote-User",
        f"--proxy-client-cert-file={p('front-proxy-client.crt')}",
        f"--proxy-client-key-file={p('front-proxy-client.key')}",
        "--enable-aggregator-routing=true",
        "--profiling=false",
        "--v=1",
    ]


def controller_manager_args(layout: Layout) -> list[str]:
    """kube-controller-manager: signs CSRs, runs HPA a little faster."""
    kc = str(layout.state / "controller-manager.kubeconfig")
    return [
        str(layout.bin / "kube-controller-manager"),
        f"--kubeconfig={kc}",
        f"--authentication-kubeconfig={kc}",
        f"--authorization-kubeconfig={kc}",
        f"--bind-address={NODE_IP}",
        f"--cluster-signing-cert-file={pki(layout, 'ca.crt')}",
        f"--cluster-signing-key-file={pki(layout, 'ca.key')}",
        f"--root-ca-file={pki(layout, 'ca.crt')}",
        f"--service-account-private-key-file={pki(layout, 'sa.key')}",
        "--use-service-account-credentials=true",
        "--controllers=*,bootstrapsigner,tokencleaner",
        # Each node's pod range is fixed by the engine (its CNI configuration and the
        # routes between nodes), and set on the Node object by ``up``.
        "--allocate-node-cidrs=false",
        f"--cluster-cidr={POD_CIDR}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        "--leader-elect=false",
        "--horizontal-pod-autoscaler-sync-period=10s",
        "--profiling=false",
        "--v=1",
    ]


def scheduler_args(layout: Layout) -> list[str]:
    """kube-scheduler."""
    kc = str(layout.state / "scheduler.kubeconfig")
    return [
        str(layout.bin / "kube-scheduler"),
        f"--kubeconfig={kc}",
        f"--authentication-kubeconfig={kc}",
        f"--authorization-kubeconfig={kc}",
        f"--bind-address={NODE_IP}",
        "--leader-elect=false",
        "--profiling=false",
        "--v=1",
    ]


def kubelet_config(layout: Layout, node: Node) -> str:
    """KubeletConfiguration: webhook authn/authz, serving certs, cgroup v1 allowed, the
    node's own cgroup subtree; the control plane registers tainted, as kind's does."""
    d = layout.node_dir(node)
    cfg = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": node.ip,
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": pki(layout, "ca.crt")},
        },
        "authorization": {"mode": "Webhook"},
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": node.cgroup_root,
        "failCgroupV1": False,
        "failSwapOn": False,
        "clusterDNS": [DNS_IP],
        "clusterDomain": "cluster.local",
        "containerRuntimeEndpoint": f"unix://{layout.node_containerd_socket(node)}",
        "tlsCertFile": pki(layout, f"kubelet-server-{node.name}.crt"),
        "tlsPrivateKeyFile": pki(layout, f"kubelet-server-{node.name}.key"),
        "resolvConf": str(layout.state / "resolv.conf"),
        "podLogsDir": str(d / "pod-logs"),
        "podCIDR": node.pod_cidr,
        "maxPods": 200,
        "serializeImagePulls": False,
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "evictionHard": {
            "memory.available": "100Mi",
            "nodefs.available": "1%",
            "imagefs.available": "1%",
            "nodefs.inodesFree": "1%",
        },
        "syncFrequency": "10s",
        "fileCheckFrequency": "10s",
        "nodeStatusReportFrequency": "10s",
        "shutdownGracePeriod": "0s",
        "rotateCertificates": False,
        "serverTLSBootstrap": False,
        "registerNode": True,
        "staticPodPath": "",
        "localStorageCapacityIsolation": True,
    }
    if node.control_plane:
        cfg["registerWithTaints"] = [{"key": CONTROL_PLANE_TAINT, "effect": "NoSchedule"}]
    return yaml.safe_dump(cfg)


def node_labels(node: Node) -> str:
    """``--node-labels``: the control-plane role (kubelets may not set node-role labels on
    themselves, so ``up`` adds it) or the worker's zone."""
    if node.control_plane:
        return "ingress-ready=true"
    return f"{ZONE_LABEL}={node.zone}"


def kubelet_args(layout: Layout, node: Node) -> list[str]:
    """kubelet."""
    d = layout.node_dir(node)
    return [
        str(layout.bin / "kubelet"),
        f"--config={d / 'kubelet.yaml'}",
        f"--kubeconfig={d / 'kubelet.kubeconfig'}",
        f"--hostname-override={node.name}",
        f"--node-ip={node.ip}",
        f"--node-labels={node_labels(node)}",
        f"--root-dir={layout.node_kubelet_root(node)}",
        f"--cert-dir={d / 'kubelet-certs'}",
        "--v=1",
    ]


def kube_proxy_config(layout: Layout, node: Node) -> str:
    """KubeProxyConfiguration: iptables mode inside the node's network namespace."""
    cfg = {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "mode": "iptables",
        "clusterCIDR": POD_CIDR,
        "hostnameOverride": node.name,
        "bindAddress": node.ip,
        "healthzBindAddress": f"{node.ip}:10256",
        "metricsBindAddress": f"{node.ip}:10249",
        "clientConnection": {"kubeconfig": str(layout.state / "kube-proxy.kubeconfig")},
        "conntrack": {"maxPerCore": 0, "min": 0},
    }
    return yaml.safe_dump(cfg)


def kube_proxy_args(layout: Layout, node: Node) -> list[str]:
    """kube-proxy."""
    return [
        str(layout.bin / "kube-proxy"),
        f"--config={layout.node_dir(node) / 'kube-proxy.yaml'}",
        "--v=1",
    ]


def containerd_args(layout: Layout, node: Node) -> list[str]:
    """containerd."""
    return [
        str(layout.bin / "containerd"),
        "--config",
        str(layout.node_dir(node) / "containerd.toml"),
    ]


def write(path: Path, text: str) -> Path:
    """Write a config file, making its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path
