"""The shape of the one local cluster: addresses, ranges, and where each file lives.

Every process of the cluster runs in its own network namespace, joined to the host by
one veth pair, so that ``down`` removes every interface, route and packet-filter rule
by deleting that namespace.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pytest_codelab.engine.paths import bin_dir, cache_dir, state_dir

NETNS = "codelab"
HOST_VETH = "codelab0"
NODE_VETH = "eth0"
HOST_IP = "172.31.254.1"
NODE_IP = "172.31.254.2"
VETH_PREFIX = 30
NODE_NAME = "codelab"
POD_CIDR = "10.244.0.0/16"
NODE_POD_CIDR = "10.244.0.0/24"
SERVICE_CIDR = "10.96.0.0/16"
API_SERVICE_IP = "10.96.0.1"
DNS_IP = "10.96.0.10"
API_PORT = 6443


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
    def containerd_socket(self) -> Path:
        return self.state / "containerd" / "containerd.sock"

    @property
    def containerd_root(self) -> Path:
        """Image content and snapshots: kept in the cache so images survive ``down``."""
        return self.cache / "containerd"

    @property
    def kubelet_root(self) -> Path:
        return self.state / "kubelet"

    @property
    def volumes(self) -> Path:
        """Where local-path-provisioner creates volume directories."""
        return self.state / "volumes"

    @property
    def server(self) -> str:
        return f"https://{NODE_IP}:{API_PORT}"

    @property
    def ingress_url(self) -> str:
        return f"http://{NODE_IP}"
