"""The provider registry: names to providers, one-line errors for the rest."""

from __future__ import annotations

import sys

import pytest

from pytest_codelab.errors import ProviderUnavailable
from pytest_codelab.providers import PROVIDERS, get_provider
from pytest_codelab.providers.existing import ExistingCluster
from pytest_codelab.settings import Settings


def test_known_providers() -> None:
    assert sorted(PROVIDERS) == ["existing", "local"]
    assert isinstance(get_provider(Settings(cluster="existing")), ExistingCluster)


def test_unknown_provider_names_the_valid_ones() -> None:
    with pytest.raises(ProviderUnavailable, match="unknown cluster provider 'kind'; valid: "):
        get_provider(Settings(cluster="kind"))


def test_local_provider_without_the_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pytest_codelab.providers.local", None)
    with pytest.raises(ProviderUnavailable, match="^local cluster engine not available: "):
        get_provider(Settings(cluster="local"))
