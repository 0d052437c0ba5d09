"""What this process knows about the run: its ids, the cluster, notes for the summary.

The run state lives in the pytest config's stash under :data:`RUN_KEY`, set up by the
plugin and read by the fixtures and the report; :func:`start_cluster` starts the chosen
provider and checks, before any test, that the cluster can be used.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace

import pytest
from kubernetes import client

from pytest_codelab import permissions
from pytest_codelab.deploy.secrets import mask
from pytest_codelab.k8s import kube
from pytest_codelab.k8s.namespaces import NamespaceInfo
from pytest_codelab.k8s.waiting import Timeouts
from pytest_codelab.providers.base import ClusterHandle, ClusterProvider
from pytest_codelab.settings import Settings


def start_cluster(provider: ClusterProvider, settings: Settings) -> ClusterHandle:
    """Start the provider and check the result can be used (reachable, RBAC).

    An explicit ``--codelab-ingress-url`` wins over the provider's.
    """
    handle = provider.start()
    if settings.ingress_url:
        handle = replace(handle, ingress_url=settings.ingress_url)
    timeout = Timeouts().scaled(settings.timeout_scale).api
    tgt = kube.preflight(handle.kubeconfig, handle.context, timeout=timeout)
    return replace(handle, context=tgt.context)


def check_permissions(handle: ClusterHandle, settings: Settings, nodeids: Iterable[str]) -> None:
    """The preflight's second half, once the tests are selected: the permissions the
    selected suites need (``permissions.needed``), each asked of the API server; AccessDenied
    naming every missing one in one line."""
    needed = permissions.needed(
        nodeids, settings.namespace, disruptive_allowed=settings.allow_disruptive
    )
    kube.check_permissions(handle.kubeconfig, handle.context, needed)


@dataclass
class ClusterRun:
    """What this process knows about the run: ids, the cluster, notes for the summary.

    ``namespace`` and ``api`` are set by the fixtures once they exist, so that failure
    diagnostics can find them even when a fixture's setup is what failed. ``secrets``: the
    values of the Secrets this process generated, masked by :meth:`scrub` in whatever it
    writes to the report folder.
    """

    run_id: str
    worker: str
    provider: ClusterProvider | None = None
    handle: ClusterHandle | None = None
    notes: list[str] = field(default_factory=list)
    namespace: NamespaceInfo | None = None
    api: client.ApiClient | None = None
    secrets: set[str] = field(default_factory=set)

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def scrub(self, text: str) -> str:
        """``text`` with every generated secret value masked."""
        return mask(text, self.secrets)


RUN_KEY = pytest.StashKey[ClusterRun]()
