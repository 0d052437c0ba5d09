"""Locust worker pods: their manifest, the images they run, the master's address."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from pytest_codelab.clients.load import workers

HOST = "codelab.test"


def test_worker_pod_takes_the_secret_from_a_secret() -> None:
    pod = workers.worker_pod_manifest(
        "w-0",
        image="codelab/locust:2.47.0",
        master_host="172.31.254.1",
        master_port=5557,
        env={"CODELAB_INGRESS_HOST": HOST},
        secret_env={"CODELAB_OAUTH_CLIENT_SECRET": ("oauth-secret", "client-secret")},
        run_label="abc",
    )
    container = pod["spec"]["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    assert env["CODELAB_OAUTH_CLIENT_SECRET"] == {
        "name": "CODELAB_OAUTH_CLIENT_SECRET",
        "valueFrom": {"secretKeyRef": {"name": "oauth-secret", "key": "client-secret"}},
    }
    assert container["command"][:4] == ["locust", "-f", "-", "--worker"]
    assert container["command"][container["command"].index("--master-host") + 1] == "172.31.254.1"
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert pod["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "pytest-codelab"


def test_image_names_compare_like_containerd() -> None:
    assert workers._normalize("codelab/locust:2.47.0") == "docker.io/codelab/locust:2.47.0"
    assert workers._normalize("busybox:1.36") == "docker.io/library/busybox:1.36"
    assert workers._normalize("ghcr.io/codelab/x:1") == "ghcr.io/codelab/x:1"
    assert workers.local_address_towards("127.0.0.1") == "127.0.0.1"


def test_worker_pod_reads_the_ca_file_from_its_config_map() -> None:
    """The users in a pod verify TLS like the gate's: the run's CA certificates are mounted
    from a ConfigMap and named by CODELAB_LOAD_CA_FILE; a path of the gate's host is not
    passed on."""
    pod = workers.worker_pod_manifest(
        "w-0",
        image="codelab/locust:2.47.0",
        master_host="172.31.254.1",
        master_port=5557,
        env={"CODELAB_INGRESS_HOST": HOST, "CODELAB_LOAD_CA_FILE": "/home/me/ca.pem"},
        secret_env={},
        run_label="abc",
        ca_config_map="locust-ca-abc",
    )
    container = pod["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["CODELAB_LOAD_CA_FILE"] == "/etc/codelab-load/ca.crt"
    assert {"name": "ca", "mountPath": "/etc/codelab-load", "readOnly": True} in container[
        "volumeMounts"
    ]
    assert {"name": "ca", "configMap": {"name": "locust-ca-abc"}} in pod["spec"]["volumes"]
    bare = workers.worker_pod_manifest(
        "w-1",
        image="codelab/locust:2.47.0",
        master_host="172.31.254.1",
        master_port=5557,
        env={"CODELAB_LOAD_CA_FILE": "/home/me/ca.pem"},
        secret_env={},
        run_label="abc",
    )
    assert "CODELAB_LOAD_CA_FILE" not in {e["name"] for e in bare["spec"]["containers"][0]["env"]}
    assert [v["name"] for v in bare["spec"]["volumes"]] == ["tmp"]


class FakeCore:
    """What WorkerPods asks of the API: creations and deletions, in order."""

    def __init__(self, fail_pod: int | None = None) -> None:
        self.calls: list[tuple[str, str]] = []
        self.objects: dict[str, Any] = {}
        self.fail_pod = fail_pod

    def create_namespaced_config_map(self, namespace: str, body: dict[str, Any]) -> None:
        self.calls.append(("create configmap", body["metadata"]["name"]))
        self.objects[body["metadata"]["name"]] = body

    def create_namespaced_pod(self, namespace: str, body: dict[str, Any]) -> None:
        if self.fail_pod is not None and body["metadata"]["name"].endswith(f"-{self.fail_pod}"):
            raise ApiException(status=403)
        self.calls.append(("create pod", body["metadata"]["name"]))
        self.objects[body["metadata"]["name"]] = body

    def delete_namespaced_pod(self, name: str, namespace: str, **_: Any) -> None:
        self.calls.append(("delete pod", name))

    def delete_namespaced_config_map(self, name: str, namespace: str) -> None:
        self.calls.append(("delete configmap", name))


def test_worker_pods_bring_and_take_away_the_ca_config_map() -> None:
    core = FakeCore()
    pem = "-----BEGIN CERTIFICATE-----\n...\n-----END CERTIFICATE-----\n"
    pods = workers.WorkerPods(
        core, "ns", 2, image="img", master_host="10.0.0.1", master_port=5557, ca_pem=pem
    )
    with pods:
        config_map = pods.ca_config_map
        assert config_map and core.calls[0] == ("create configmap", config_map)
        assert core.objects[config_map]["data"] == {"ca.crt": pem}
        assert [kind for kind, _ in core.calls] == ["create configmap"] + ["create pod"] * 2
    assert core.calls[-1] == ("delete configmap", config_map)
    assert [c for c in core.calls if c[0] == "delete pod"] == [
        ("delete pod", n) for n in pods.names
    ]


def test_worker_pods_leave_nothing_when_one_cannot_be_created() -> None:
    core = FakeCore(fail_pod=1)
    pods = workers.WorkerPods(
        core, "ns", 2, image="img", master_host="10.0.0.1", master_port=5557, ca_pem="PEM"
    )
    with pytest.raises(ApiException):
        pods.__enter__()
    deleted = {name for kind, name in core.calls if kind.startswith("delete")}
    assert deleted == {*pods.names, pods.ca_config_map}


def test_without_ca_no_config_map_is_made() -> None:
    core = FakeCore()
    with workers.WorkerPods(core, "ns", 1, image="img", master_host="h", master_port=1) as pods:
        assert pods.ca_config_map is None
    assert not [c for c in core.calls if "configmap" in c[0]]
