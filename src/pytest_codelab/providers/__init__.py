"""Cluster providers: where the cluster under test comes from.

``existing`` uses a kubeconfig context as is; ``local`` is the embedded engine
(``pytest_codelab.engine``), whose provider module is imported only when asked for: a run
on an existing cluster never loads the engine (nor its side effects, such as silencing
urllib3's warnings about the local API server's certificate).
"""

from __future__ import annotations

from collections.abc import Callable

from pytest_codelab.errors import ProviderUnavailable
from pytest_codelab.providers.base import ClusterProvider
from pytest_codelab.providers.existing import ExistingCluster
from pytest_codelab.settings import Settings

ProviderFactory = Callable[[Settings], ClusterProvider]


def _existing(settings: Settings) -> ClusterProvider:
    return ExistingCluster(settings)


def _local(settings: Settings) -> ClusterProvider:
    try:
        from pytest_codelab.providers.local import LocalCluster
    except ImportError as exc:
        raise ProviderUnavailable(f"local cluster engine not available: {exc}") from None
    return LocalCluster(settings)


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
