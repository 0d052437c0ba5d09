"""The shape of the one local cluster: nodes, addresses, ranges, and where each file lives.

Like kind's node containers, each node (one control plane, N workers) is a network
namespace with its own kubelet, containerd and kube-proxy. The nodes' links meet on a
bridge inside one more namespace (the "switch"), joined to the host by one veth pair, so
that ``down`` removes every interface, route and packet-filter rule by deleting the
namespaces, and the host's own packet filter never sees the traffic between nodes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pytest_codelab.engine.paths import bin_dir, cache_dir, state_dir

#: The control-plane node's network namespace and node name (the name of the one-node
#: cluster before workers existed: the gate's node-name checks keep working).
NETNS = "codelab"
NODE_NAME = NETNS
#: Worker node i (1..N) is called ``codelab-w<i>``, like its network namespace.
WORKER_PREFIX = "codelab-w"
#: The namespace holding the bridge every node's link is plugged into.
SWITCH_NETNS = "codelab-switch"
SWITCH_BRIDGE = "br0"
SWITCH_UPLINK = "uplink"
HOST_VETH = "codelab0"
NODE_VETH = "eth0"
HOST_IP = "172.31.254.1"
NODE_IP = "172.31.254.2"
NODE_PREFIX = 24
POD_CIDR = "10.244.0.0/16"
SERVICE_CIDR = "10.96.0.0/16"
API_SERVICE_IP = "10.96.0.1"
DNS_IP = "10.96.0.10"
API_PORT = 6443
#: The label kind and cloud providers put on nodes; one zone per worker.
ZONE_LABEL = "topology.kubernetes.io/zone"
CONTROL_PLANE_TAINT = "node-role.kubernetes.io/control-plane"
#: The gate's default (the guide asks for three workers); ``up --workers N``.
DEFAULT_WORKERS = 3
MAX_WORKERS = 200


@dataclass(frozen=True)
class Node:
    """One node: index 0 is the control plane, 1..N the workers."""

    index: int

    @property
    def control_plane(self) -> bool:
        return self.index == 0

    @property
    def name(self) -> str:
        """Node name and network namespace name."""
        return NETNS if self.control_plane else f"{WORKER_PREFIX}{self.index}"

    @property
    def netns(self) -> str:
        return self.name

    @property
    def ip(self) -> str:
        return f"172.31.254.{2 + self.index}"

    @property
    def switch_port(self) -> str:
        """The node's end of its link inside the switch namespace."""
        return f"port{self.index}"

    @property
    def pod_cidr(self) -> str:
        return f"10.244.{self.index}.0/24"

    @property
    def zone(self) -> str | None:
        """The worker's zone (one each); the control plane has none, like kind's."""
        return None if self.control_plane else f"zone-{self.index}"

    @property
    def cgroup_root(self) -> str:
        """Each kubelet's own cgroup subtree: kubelets sharing one would reap each other's
        pods as orphans."""
        return f"/{self.name}"

    def component(self, base: str) -> str:
        """A component's record name: ``kubelet`` on the control plane, ``kubelet@codelab-w1``
        on a worker."""
        return base if self.control_plane else f"{base}@{self.name}"


def node_by_name(name: str) -> Node:
    """The node called ``name`` (raises ValueError for a name that is no node's)."""
    if name == NETNS:
        return Node(0)
    suffix = name.removeprefix(WORKER_PREFIX)
    if name.startswith(WORKER_PREFIX) and suffix.isdigit() and int(suffix) >= 1:
        return Node(int(suffix))
    raise ValueError(f"{name!r} is not a node of the local cluster")


def cluster_nodes(workers: int) -> list[Node]:
    """The control plane and ``workers`` workers."""
    return [Node(i) for i in range(workers + 1)]


@dataclass(frozen=True)
class Layout:
    """Paths of one cluster's files; ``state`` is removed whole by ``down``."""

    state: Path
    cache: Path
    bin: Path

    @classmethod
    def default(cls) -> Layout:
        """The layout from the environment (CODELAB_STATE, CODELAB_CACHE)."""
        return cls(state=state_dir(), cache=cache_dir(), bin=bin_dir())

    @property
    def pki(self) -> Path:
        return self.state / "pki"

    @property
    def logs(self) -> Path:
        return self.state / "logs"

    @property
    def pids(self) -> Path:
        return self.state / "pids"

    @property
    def kubeconfig(self) -> Path:
        """The admin kubeconfig that kubectl and the Python client use as is."""
        return self.state / "kubeconfig"

    @property
    def lock(self) -> Path:
        """Held by the running cluster; a second ``up`` finds it and refuses."""
        return self.state / "cluster.json"

    @property
    def nodes_dir(self) -> Path:
        """Every node's own files, one folder per node name (kubelet, containerd, CNI)."""
        return self.state / "nodes"

    def node_dir(self, node: Node) -> Path:
        return self.nodes_dir / node.name

    def node_containerd_socket(self, node: Node) -> Path:
        return self.node_dir(node) / "containerd" / "containerd.sock"

    def node_containerd_root(self, node: Node) -> Path:
        """A node's image content and snapshots: in the cache, so images survive ``down``
        and each node imports an archive once."""
        base = self.cache / "containerd"
        return base if node.control_plane else base.with_name(f"containerd-{node.name}")

    def node_kubelet_root(self, node: Node) -> Path:
        return self.node_dir(node) / "kubelet"

    def node_volumes(self, node: Node) -> Path:
        """Where local-path-provisioner creates the node's volume directories."""
        return self.node_dir(node) / "volumes"

    @property
    def containerd_socket(self) -> Path:
        """The control plane's containerd."""
        return self.node_containerd_socket(Node(0))

    @property
    def containerd_root(self) -> Path:
        """The control plane's image store (see :meth:`node_containerd_root`)."""
        return self.node_containerd_root(Node(0))

    @property
    def kubelet_root(self) -> Path:
        """The control plane's kubelet folder."""
        return self.node_kubelet_root(Node(0))

    @property
    def volumes(self) -> Path:
        """The control plane's volume folder."""
        return self.node_volumes(Node(0))

    @property
    def server(self) -> str:
        return f"https://{NODE_IP}:{API_PORT}"

    @property
    def ingress_url(self) -> str:
        """The ingress controller's host ports on the control-plane node (like kind's
        ``extraPortMappings`` to a node labelled ingress-ready)."""
        return f"http://{NODE_IP}"
