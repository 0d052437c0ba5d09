"""The kubeconfig and context checks, and permissions described for people."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_codelab.errors import (
    ContextError,
    KubeconfigError,
)
from pytest_codelab.k8s import kube


def test_kubeconfig_problems(tmp_path: Path) -> None:
    with pytest.raises(KubeconfigError, match="kubeconfig not found: .*missing"):
        kube.load_kubeconfig(tmp_path / "missing")
    (tmp_path / "list").write_text("- a\n- b\n", encoding="utf-8")
    with pytest.raises(KubeconfigError, match="has no contexts: not a kubeconfig"):
        kube.load_kubeconfig(tmp_path / "list")
    (tmp_path / "bad").write_text("a: [\nb: c\n", encoding="utf-8")
    with pytest.raises(KubeconfigError, match=r"is not valid YAML \(line \d+\)"):
        kube.load_kubeconfig(tmp_path / "bad")


def test_context_resolution(tmp_path: Path) -> None:
    data = {"contexts": [{"name": "dev"}, {"name": "prod"}], "current-context": "dev"}
    assert kube.resolve_context(data, tmp_path, None) == "dev"
    assert kube.resolve_context(data, tmp_path, "prod") == "prod"
    with pytest.raises(ContextError, match="context 'stage' not found .*; available: dev, prod"):
        kube.resolve_context(data, tmp_path, "stage")
    with pytest.raises(ContextError, match="no current context; pass --codelab-context"):
        kube.resolve_context({"contexts": [{"name": "dev"}]}, tmp_path, None)


def test_access_is_described_for_people() -> None:
    assert str(kube.Access("create", "namespaces")) == "create namespaces"
    assert (
        str(kube.Access("create", "pods", namespace="ns", subresource="exec"))
        == "create pods/exec in namespace ns"
    )
    assert (
        str(kube.Access("list", "deployments", "apps", "ns"))
        == "list deployments.apps in namespace ns"
    )
