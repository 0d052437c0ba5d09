"""What every cluster provider yields and promises: plain data and a small protocol.

A provider only yields a ClusterHandle (kubeconfig, context, ingress URL); it knows
nothing about suites. This module imports nothing else of the project, so that the run
state, the fixtures and the report can name a handle without importing any provider.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol


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
        )


class ClusterProvider(Protocol):
    """Starts (or attaches to) a cluster, and stops it only if this run started it."""

    def start(self) -> ClusterHandle: ...

    def stop(self) -> None: ...
