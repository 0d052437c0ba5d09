"""What every cluster provider yields and promises: plain data and a small protocol.

A provider only yields a ClusterHandle (kubeconfig, context, ingress URL); it knows
nothing about suites. This module imports nothing else of the project, so that the run
state, the fixtures and the report can name a handle without importing any provider.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class ClusterHandle:
    """How to reach a started cluster; plain data so it can travel to xdist workers."""

    kubeconfig: Path
    context: str | None
    ingress_url: str | None
    name: str
    created: bool = False
    #: Ingress annotations the cluster's controller is known not to implement, each with
    #: why: a check of one skips with that reason instead of failing the deployment.
    ingress_gaps: dict[str, str] = field(default_factory=dict)
    #: The Locust worker image the cluster provides (the local cluster builds and loads
    #: one); None: the cluster provides none, ``--codelab-load-image`` must name one.
    load_image: str | None = None
    #: Where a test ACME server publishes the root it issues from, read through the API
    #: server's service proxy: (namespace, "scheme:service:port", path). None: the issuer's
    #: root is a public one (system CAs) or given with --codelab-ca-file.
    issuer_root_proxy: tuple[str, str, str] | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["kubeconfig"] = str(self.kubeconfig)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ClusterHandle:
        return cls(
            kubeconfig=Path(data["kubeconfig"]),
            context=data.get("context"),
            ingress_url=data.get("ingress_url"),
            name=str(data["name"]),
            created=bool(data.get("created", False)),
            ingress_gaps=dict(data.get("ingress_gaps") or {}),
            load_image=data.get("load_image"),
            issuer_root_proxy=_proxy(data.get("issuer_root_proxy")),
        )


def _proxy(value: Any) -> tuple[str, str, str] | None:
    """A JSON round trip turns the tuple into a list."""
    if not value:
        return None
    namespace, service, path = value
    return str(namespace), str(service), str(path)


class ClusterProvider(Protocol):
    """Starts (or attaches to) a cluster, and stops it only if this run started it."""

    def start(self) -> ClusterHandle: ...

    def stop(self) -> None: ...


@runtime_checkable
class NodeControl(Protocol):
    """A provider that can lose a worker node on purpose and bring it back.

    Why a capability of its own: a drain goes through the Kubernetes API, which any cluster
    serves, but a node *loss* (kubelet, container runtime and the pods' processes gone, the
    node NotReady) needs a hand on the machine. The local cluster has one; a cluster reached
    only through a kubeconfig has none, and a check that needs it is reported as not checked
    with :func:`node_control_gap`'s reason.
    """

    def stop_node(self, name: str) -> None:
        """Lose node ``name`` as a power cut would: it goes NotReady, its pods unreachable."""
        ...

    def start_node(self, name: str) -> None:
        """Bring node ``name`` back and Ready."""
        ...


#: Why a provider without NodeControl cannot lose a node (``{name}``: the cluster's).
NO_NODE_CONTROL = (
    "cluster {name} cannot lose a node on purpose: the gate reaches it only through the "
    "Kubernetes API, which can drain a node but not stop its kubelet and container runtime "
    "(the local cluster can: --codelab-cluster=local)"
)


def node_control_gap(provider: object, name: str) -> str | None:
    """None when ``provider`` can stop and start nodes, else why not (a skip reason)."""
    if isinstance(provider, NodeControl):
        return None
    return NO_NODE_CONTROL.format(name=name)
