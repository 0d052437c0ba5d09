"""Distributed Locust: the master on this host, worker pods in the test namespace.

Worker pods download the locustfile from the master (``-f -``), run as an unprivileged user
with a read-only root file system (PSA restricted), get the OAuth secret by ``secretKeyRef``,
the CA certificates their users trust from a ConfigMap mounted as ``CODELAB_LOAD_CA_FILE``
(so they verify TLS like the gate's own client), and are always deleted on exit."""

from __future__ import annotations

import contextlib
import secrets
import socket
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from kubernetes.client.exceptions import ApiException

from pytest_codelab.clients.load.locust import LocustRun
from pytest_codelab.clients.load.spec import CA_FILE_ENV, MAX_WORKERS, LoadSpec
from pytest_codelab.k8s.diagnostics import pod_summary

WORKER_LABEL = "codelab.dev/role"
WORKER_ROLE = "locust-worker"
#: Where worker pods see the CA certificates of the run (a ConfigMap volume).
CA_DIR, CA_KEY = "/etc/codelab-load", "ca.crt"


def local_address_towards(address: str) -> str:
    """This host's address on the route to ``address`` (where pods can reach a master).

    No packet is sent: connecting a UDP socket only selects the route.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect((address, 9))
        return str(sock.getsockname()[0])


def worker_pod_manifest(
    name: str,
    *,
    image: str,
    master_host: str,
    master_port: int,
    env: Mapping[str, str],
    secret_env: Mapping[str, tuple[str, str]],
    run_label: str,
    ca_config_map: str | None = None,
) -> dict[str, Any]:
    """A Locust worker pod that downloads the locustfile from the master (``-f -``).

    Runs as an unprivileged user with a read-only root file system (PSA restricted); /tmp
    is an emptyDir because ``-f -`` saves the downloaded locustfile to the working dir.
    With ``ca_config_map``, its ``ca.crt`` is mounted and named by ``CODELAB_LOAD_CA_FILE``.
    """
    env = {k: v for k, v in env.items() if k != CA_FILE_ENV}  # a path of this host means nothing
    if ca_config_map:
        env[CA_FILE_ENV] = f"{CA_DIR}/{CA_KEY}"
    env_list: list[dict[str, Any]] = [{"name": k, "value": v} for k, v in sorted(env.items())]
    env_list += [
        {"name": var, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}
        for var, (secret, key) in sorted(secret_env.items())
    ]
    mounts: list[dict[str, Any]] = [{"name": "tmp", "mountPath": "/tmp"}]
    volumes: list[dict[str, Any]] = [{"name": "tmp", "emptyDir": {"sizeLimit": "16Mi"}}]
    if ca_config_map:
        mounts.append({"name": "ca", "mountPath": CA_DIR, "readOnly": True})
        volumes.append({"name": "ca", "configMap": {"name": ca_config_map}})
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "labels": {
                "app.kubernetes.io/managed-by": "pytest-codelab",
                WORKER_LABEL: WORKER_ROLE,
                "codelab.dev/load-run": run_label,
            },
        },
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "terminationGracePeriodSeconds": 5,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 10001,
                "runAsGroup": 10001,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {
                    "name": "locust",
                    "image": image,
                    "imagePullPolicy": "IfNotPresent",
                    "command": [
                        "locust",
                        "-f",
                        "-",
                        "--worker",
                        "--master-host",
                        master_host,
                        "--master-port",
                        str(master_port),
                        "--loglevel",
                        "INFO",
                    ],
                    "workingDir": "/tmp",
                    "env": env_list,
                    "resources": {
                        "requests": {"cpu": "50m", "memory": "96Mi"},
                        "limits": {"cpu": "1", "memory": "256Mi"},
                    },
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "readOnlyRootFilesystem": True,
                        "capabilities": {"drop": ["ALL"]},
                    },
                    "volumeMounts": mounts,
                }
            ],
            "volumes": volumes,
        },
    }


def ca_config_map(name: str, ca_pem: str, run_label: str) -> dict[str, Any]:
    """The ConfigMap carrying the run's CA certificates to the worker pods (public
    certificates: a ConfigMap, not a Secret)."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "labels": {
                "app.kubernetes.io/managed-by": "pytest-codelab",
                WORKER_LABEL: WORKER_ROLE,
                "codelab.dev/load-run": run_label,
            },
        },
        "data": {CA_KEY: ca_pem},
    }


def nodes_with_image(core: Any, image: str) -> tuple[list[str], list[str]]:
    """(nodes whose kubelet reports ``image``, all nodes); names compared as containerd does
    (``codelab/locust:1`` is ``docker.io/codelab/locust:1``)."""
    wanted = {image, _normalize(image)}
    having, names = [], []
    for node in core.list_node().items:
        name = node.metadata.name
        names.append(name)
        for entry in (node.status.images if node.status else None) or []:
            if wanted & {_normalize(n) for n in entry.names or []}:
                having.append(name)
                break
    return having, names


def _normalize(ref: str) -> str:
    first = ref.split("/", 1)[0]
    if "/" not in ref:
        ref = f"docker.io/library/{ref}"
    elif "." not in first and ":" not in first and first != "localhost":
        ref = f"docker.io/{ref}"
    return ref


class WorkerPods:
    """N Locust worker pods in a namespace for one run; always deleted on exit.

    ``with WorkerPods(core, ns, 2, image=..., master_host=..., master_port=...) as pods:``
    creates them; ``pods.describe()`` says what they look like (for failure messages).
    """

    def __init__(
        self,
        core: Any,
        namespace: str,
        count: int,
        *,
        image: str,
        master_host: str,
        master_port: int,
        env: Mapping[str, str] | None = None,
        secret_env: Mapping[str, tuple[str, str]] | None = None,
        ca_pem: str = "",
    ) -> None:
        if not 1 <= count <= MAX_WORKERS:
            raise ValueError(f"worker pods must be in 1..{MAX_WORKERS}, not {count}")
        self.core = core
        self.namespace = namespace
        self.count = count
        self.image = image
        self.master_host = master_host
        self.master_port = master_port
        self.env = dict(env or {})
        self.secret_env = dict(secret_env or {})
        self.ca_pem = ca_pem
        self.run_label = secrets.token_hex(4)
        self.names = [f"locust-worker-{self.run_label}-{i}" for i in range(count)]
        self.ca_config_map = f"locust-ca-{self.run_label}" if ca_pem else None

    def __enter__(self) -> WorkerPods:
        try:
            self._create()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _create(self) -> None:
        if self.ca_config_map:
            self.core.create_namespaced_config_map(
                self.namespace, ca_config_map(self.ca_config_map, self.ca_pem, self.run_label)
            )
        for name in self.names:
            self.core.create_namespaced_pod(
                self.namespace,
                worker_pod_manifest(
                    name,
                    image=self.image,
                    master_host=self.master_host,
                    master_port=self.master_port,
                    env=self.env,
                    secret_env=self.secret_env,
                    run_label=self.run_label,
                    ca_config_map=self.ca_config_map,
                ),
            )

    def describe(self) -> str:
        pods = self.core.list_namespaced_pod(
            self.namespace, label_selector=f"codelab.dev/load-run={self.run_label}"
        ).items
        return "; ".join(pod_summary(p) for p in pods) or "no worker pods"

    def logs(self, *, request_timeout: float, lines: int = 5) -> str:
        out = []
        for name in self.names:
            with contextlib.suppress(Exception):
                text = self.core.read_namespaced_pod_log(
                    name, self.namespace, tail_lines=lines, _request_timeout=request_timeout
                )
                out.append(f"{name}: " + " | ".join(str(text).strip().splitlines()))
        return "\n".join(out)

    def __exit__(self, *exc: object) -> None:
        for name in self.names:
            with contextlib.suppress(ApiException):
                self.core.delete_namespaced_pod(name, self.namespace, grace_period_seconds=0)
        if self.ca_config_map:
            with contextlib.suppress(ApiException):
                self.core.delete_namespaced_config_map(self.ca_config_map, self.namespace)


@contextlib.contextmanager
def distributed(
    spec: LoadSpec,
    out_dir: Path,
    core: Any,
    namespace: str,
    *,
    image: str,
    master_host: str,
    secret_env: Mapping[str, tuple[str, str]],
    pod_env: Mapping[str, str],
) -> Iterator[tuple[LocustRun, WorkerPods]]:
    """A master on this host (bound to ``spec.master_bind_host``) and ``spec.remote_workers``
    worker pods connecting to ``master_host``; both are torn down on exit."""
    run = LocustRun(spec, out_dir)
    pods = WorkerPods(
        core,
        namespace,
        spec.remote_workers,
        image=image,
        master_host=master_host,
        master_port=run.master_port,
        env=pod_env,
        secret_env=secret_env,
        ca_pem=spec.ca_pem,
    )
    with run, pods:
        yield run, pods
