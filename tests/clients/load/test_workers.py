"""Locust worker pods: their manifest, the images they run, the master's address."""

from __future__ import annotations

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
