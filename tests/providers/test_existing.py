"""The existing provider: the cluster a kubeconfig names, read as kubectl reads it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from pytest_codelab.errors import ContextError
from pytest_codelab.k8s import kube
from pytest_codelab.providers.existing import ExistingCluster
from pytest_codelab.settings import Settings


def test_the_context_may_live_in_a_later_file_of_the_list(tmp_path: Path) -> None:
    first = tmp_path / "clusters"
    first.write_text(
        yaml.safe_dump({"clusters": [{"name": "c", "cluster": {"server": "https://s:6443"}}]})
    )
    second = tmp_path / "contexts"
    second.write_text(
        yaml.safe_dump(
            {
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "staging", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "staging",
            }
        )
    )
    listed = Path(f"{first}{os.pathsep}{second}")
    handle = ExistingCluster(Settings(cluster="existing", kubeconfig=listed)).start()
    assert (handle.context, handle.name, handle.kubeconfig) == (
        "staging",
        "existing:staging",
        listed,
    )
    with pytest.raises(ContextError, match="context 'prod' not found .*; available: staging"):
        ExistingCluster(Settings(cluster="existing", kubeconfig=listed, context="prod")).start()


def test_in_a_pod_without_kubeconfig_the_service_account_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = tmp_path / "sa"
    account.mkdir()
    (account / "token").write_text("t")
    monkeypatch.setattr(kube, "SERVICE_ACCOUNT_DIR", account)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    settings = Settings(cluster="existing", kubeconfig=tmp_path / "absent")
    assert ExistingCluster(settings).start().name == "existing:in-cluster"
