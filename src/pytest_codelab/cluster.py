"""Cluster providers: where the cluster under test comes from.

A provider only yields a ClusterHandle (kubeconfig, context, ingress URL); it knows
nothing about suites. ``existing`` uses a kubeconfig context as is; ``local`` is the
embedded engine (``pytest_codelab.engine``), imported only when asked for so that the
plugin works without it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import pytest
from kubernetes import client

from pytest_codelab import kube
from pytest_codelab.errors import ProviderUnavailable
from pytest_codelab.namespaces import NamespaceInfo
from pytest_codelab.settings import Settings


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
        )


class ClusterProvider(Protocol):
    """Starts (or attaches to) a cluster, and stops it only if this run started it."""

    def start(self) -> ClusterHandle: ...

    def stop(self) -> None: ...


class ExistingCluster:
    """A cluster that already runs, reached through a kubeconfig context."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def start(self) -> ClusterHandle:
        tgt = kube.target(self.settings.kubeconfig, self.settings.context)
        return ClusterHandle(
            kubeconfig=tgt.kubeconfig,
            context=tgt.context,
            ingress_url=self.settings.ingress_url,
            name=f"existing:{tgt.context}",
            created=False,
        )

    def stop(self) -> None:
        """Nothing to do: the gate never stops a cluster it did not start."""


ProviderFactory = Callable[[Settings], ClusterProvider]


def _existing(settings: Settings) -> ClusterProvider:
    return ExistingCluster(settings)


def _local(settings: Settings) -> ClusterProvider:
    try:
        module = importlib.import_module("pytest_codelab.engine.provider")
        factory = module.LocalCluster
    except (ImportError, AttributeError) as exc:
        raise ProviderUnavailable(f"local cluster engine not available: {exc}") from None
    provider: ClusterProvider = factory(settings)
    return provider


PROVIDERS: dict[str, ProviderFactory] = {"existing": _existing, "local": _local}


def get_provider(settings: Settings) -> ClusterProvider:
    """The provider named by ``settings.cluster``."""
    if settings.cluster is None:
        raise ValueError("no cluster requested")
    try:
        factory = PROVIDERS[settings.cluster]
    except KeyError:
        valid = ", ".join(sorted(PROVIDERS))
        raise ProviderUnavailable(
            f"unknown cluster provider {settings.cluster!r}; valid: {valid}"
        ) from None
    return factory(settings)


def start_cluster(provider: ClusterProvider, settings: Settings) -> ClusterHandle:
    """Start the provider and check the result can be used (reachable, RBAC).

    An explicit ``--codelab-ingress-url`` wins over the provider's.
    """
    handle = provider.start()
    if settings.ingress_url:
        handle = replace(handle, ingress_url=settings.ingress_url)
    tgt = kube.preflight(handle.kubeconfig, handle.context, settings.namespace)
    return replace(handle, context=tgt.context)


@dataclass
class ClusterRun:
    """What this process knows about the run: ids, the cluster, notes for the summary.

    ``namespace`` and ``api`` are set by the fixtures once they exist, so that failure
    diagnostics can find them even when a fixture's setup is what failed.
    """

    run_id: str
    worker: str
    provider: ClusterProvider | None = None
    handle: ClusterHandle | None = None
    notes: list[str] = field(default_factory=list)
    namespace: NamespaceInfo | None = None
    api: client.ApiClient | None = None

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)


RUN_KEY = pytest.StashKey[ClusterRun]()
