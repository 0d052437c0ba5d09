"""The ``existing`` cluster provider: a cluster that already runs, as a kubeconfig names it."""

from __future__ import annotations

from pytest_codelab.k8s import kube
from pytest_codelab.providers.base import ClusterHandle
from pytest_codelab.settings import Settings


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
