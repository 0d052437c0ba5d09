"""The kubeconfig and context checks, and permissions described for people."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

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


# ----------------------------------------------------------------- kubectl's reading rules


def write(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def cluster(name: str, server: str, **extra: str) -> dict[str, Any]:
    return {"name": name, "cluster": {"server": server, **extra}}


def test_a_kubeconfig_list_is_merged_as_kubectl_does(tmp_path: Path) -> None:
    """First file wins per name; the current context comes from the first file setting one;
    relative paths are relative to the file that holds them."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = write(
        tmp_path / "a" / "config",
        {
            "clusters": [cluster("c", "https://first:6443", **{"certificate-authority": "ca.crt"})],
            "users": [{"name": "u", "user": {"token": "first"}}],
            "contexts": [],
        },
    )
    second = write(
        tmp_path / "b" / "config",
        {
            "clusters": [cluster("c", "https://second:6443"), cluster("d", "https://d:6443")],
            "users": [
                {"name": "u", "user": {"token": "second"}},
                {"name": "v", "user": {"client-certificate": "v.crt", "client-key": "v.key"}},
            ],
            "contexts": [
                {"name": "staging", "context": {"cluster": "c", "user": "u"}},
                {"name": "dev", "context": {"cluster": "d", "user": "v"}},
            ],
            "current-context": "staging",
        },
    )
    third = write(tmp_path / "third", {"contexts": [], "current-context": "dev"})
    joined = os.pathsep.join(map(str, (tmp_path / "missing", first, second, third)))
    merged = kube.load_kubeconfig(joined)
    assert merged["current-context"] == "staging"  # the first file setting one, not the last
    assert kube.server_url(merged, "staging") == "https://first:6443"  # first file wins
    assert merged["clusters"][0]["cluster"]["certificate-authority"] == str(
        tmp_path / "a" / "ca.crt"
    )
    users = {u["name"]: u["user"] for u in merged["users"]}
    assert users["u"] == {"token": "first"}
    assert users["v"]["client-key"] == str(tmp_path / "b" / "v.key")
    tgt = kube.target(Path(joined), None)  # the context lives in the second file
    assert (tgt.context, tgt.server) == ("staging", "https://first:6443")
    assert kube.kubectl_env(joined)["KUBECONFIG"] == os.pathsep.join(
        map(str, (tmp_path / "missing", first, second, third))
    )


def test_a_list_without_any_existing_file_is_named(tmp_path: Path) -> None:
    joined = f"{tmp_path / 'x'}{os.pathsep}{tmp_path / 'y'}"
    with pytest.raises(KubeconfigError, match="kubeconfig not found: .*x.*y"):
        kube.load_kubeconfig(joined)


def exec_kubeconfig(tmp_path: Path, script: str, server: str = "https://127.0.0.1:1") -> Path:
    plugin = tmp_path / "bin" / "credential-plugin"
    plugin.parent.mkdir()
    plugin.write_text(script, encoding="utf-8")
    plugin.chmod(0o755)
    return write(
        tmp_path / "config",
        {
            "clusters": [cluster("c", server)],
            "users": [
                {
                    "name": "u",
                    "user": {
                        "exec": {
                            "apiVersion": "client.authentication.k8s.io/v1",
                            "command": "bin/credential-plugin",  # relative to the file
                            "args": ["--cluster", "staging"],
                            "interactiveMode": "Never",
                        }
                    },
                }
            ],
            "contexts": [{"name": "staging", "context": {"cluster": "c", "user": "u"}}],
            "current-context": "staging",
        },
    )


EXEC_PLUGIN = """#!/bin/sh
[ "$2" = staging ] || exit 3
printf '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential",'
printf '"status":{"token":"token-from-plugin"}}\\n'
"""


def test_exec_credential_plugin_gives_the_token(tmp_path: Path) -> None:
    api = kube.new_client(exec_kubeconfig(tmp_path, EXEC_PLUGIN), None)
    try:
        assert api.configuration.api_key["BearerToken"] == "Bearer token-from-plugin"
    finally:
        api.close()


def test_a_failing_exec_plugin_is_one_line(tmp_path: Path) -> None:
    kubeconfig = exec_kubeconfig(tmp_path, "#!/bin/sh\necho 'not logged in' >&2\nexit 1\n")
    with pytest.raises(KubeconfigError, match="exec credential plugin .*credential-plugin.* gave"):
        kube.new_client(kubeconfig, None)


def test_token_file_and_bearer_token(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("from-file\n", encoding="utf-8")
    kubeconfig = write(
        tmp_path / "config",
        {
            "clusters": [cluster("c", "https://127.0.0.1:1")],
            "users": [
                {"name": "f", "user": {"tokenFile": "token"}},
                {"name": "t", "user": {"token": "inline"}},
            ],
            "contexts": [
                {"name": "file", "context": {"cluster": "c", "user": "f"}},
                {"name": "inline", "context": {"cluster": "c", "user": "t"}},
            ],
        },
    )
    for context, token in (("file", "Bearer from-file"), ("inline", "Bearer inline")):
        api = kube.new_client(kubeconfig, context)
        assert api.configuration.api_key["BearerToken"] == token
        api.close()


def test_in_cluster_when_no_kubeconfig_exists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a pod (the gate run as a Job), with no kubeconfig: the service account's token,
    CA and namespace, as kubectl's in-cluster fallback."""
    account = tmp_path / "sa"
    account.mkdir()
    (account / "token").write_text("pod-token", encoding="utf-8")
    (account / "ca.crt").write_text("", encoding="utf-8")
    (account / "namespace").write_text("codelab\n", encoding="utf-8")
    monkeypatch.setattr(kube, "SERVICE_ACCOUNT_DIR", account)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    tgt = kube.target(tmp_path / "no-kubeconfig", None)
    assert (tgt.context, tgt.server) == (kube.IN_CLUSTER, "https://10.96.0.1:443")
    data = kube.load_kubeconfig(tmp_path / "no-kubeconfig")
    assert data["contexts"][0]["context"]["namespace"] == "codelab"
    assert data["users"][0]["user"] == {"tokenFile": str(account / "token")}
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST")
    with pytest.raises(KubeconfigError, match="kubeconfig not found"):
        kube.load_kubeconfig(tmp_path / "no-kubeconfig")
