"""A rollout under traffic: one Deployment, the ingress client that keeps requesting while
its pods are replaced (on a path that reaches that Deployment), and what each pod runs.

``Rollout`` binds everything a rollout test needs to the namespace under test; the test
drives it (``kubectl set image``, ``rollout restart``, ``rollout undo`` from
:mod:`pytest_codelab.k8s.rollouts`) and judges the traffic report, the versions and the
pod-template hashes.

Why a path per Deployment: traffic that never reaches the rolled Deployment cannot fail
when its rollout drops requests. :data:`THROUGH` names, for each serving Deployment of the
guide's architecture, an Ingress path whose every request passes through it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client

from pytest_codelab.clients.ingress import IngressClient
from pytest_codelab.clients.traffic import Traffic
from pytest_codelab.deploy.manifests import split_image
from pytest_codelab.k8s import podtools
from pytest_codelab.k8s.objects import deleting, name_of
from pytest_codelab.k8s.rollouts import (
    POD_TEMPLATE_HASH,
    container_of,
    pods_with_image,
    replica_sets,
    revision_of,
)
from pytest_codelab.k8s.stack import label_selector
from pytest_codelab.k8s.waiting import Waiter

Exec = Callable[..., podtools.ExecResult]
#: Requests that must be answered after a rollout completes before the next phase.
SETTLED_REQUESTS = 20
TRAFFIC_PATH = "/api/v1/whoami"


@dataclass(frozen=True)
class Through:
    """An Ingress request whose every instance passes through one Deployment."""

    method: str
    path: str
    route: str
    payload: dict[str, Any] | None = None
    #: Pause between requests: paths that write (a session row, a Redis key, an LLM call)
    #: go slower so the stream itself does not load two cores.
    interval: float = 0.05
    #: The answer's "version" is the rolled Deployment's own (whoami is agent-runtime's).
    reports_version: bool = False
    headers: dict[str, str] = field(default_factory=dict)

    def body(self) -> bytes | None:
        return json.dumps(self.payload).encode() if self.payload is not None else None


#: Per serving Deployment (the guide's architecture: Ingress -> gateway -> agent-runtime ->
#: llm-proxy, Ingress -> auth-service; images/README.md for the routes).
THROUGH: dict[str, Through] = {
    "gateway": Through("GET", TRAFFIC_PATH, "Ingress /api/v1 -> gateway -> agent-runtime"),
    "agent-runtime": Through(
        "GET", TRAFFIC_PATH, "Ingress /api/v1 -> gateway -> agent-runtime", reports_version=True
    ),
    "auth-service": Through(
        "GET", "/oauth/verify", "Ingress /oauth -> auth-service (bearer token verified)"
    ),
    "llm-proxy": Through(
        "POST",
        "/api/v1/sessions",
        "Ingress /api/v1 -> gateway -> agent-runtime -> llm-proxy /v1/chat/completions",
        payload={"prompt": "pytest-codelab rollout check"},
        interval=0.25,
        headers={"Content-Type": "application/json"},
    ),
}
#: Runs in a pod of the Deployment: what its service answers at /version.
VERSION_SCRIPT = """
import json, sys, urllib.request
with urllib.request.urlopen("http://127.0.0.1:%s/version" % sys.argv[1], timeout=5) as resp:
    print(json.load(resp).get("version"))
"""


def pod_versions(
    apps: client.AppsV1Api, core: client.CoreV1Api, namespace: str, name: str, pod_exec: Exec
) -> dict[str, str]:
    """What every running pod of the Deployment reports at /version."""
    deployment = apps.read_namespaced_deployment(name, namespace)
    container = container_of(deployment)
    port = str(container.ports[0].container_port if container.ports else 8001)
    selector = label_selector(deployment.spec.selector if deployment.spec else None)
    versions = {}
    for pod in core.list_namespaced_pod(namespace, label_selector=selector).items:
        if deleting(pod):
            continue
        result = pod_exec(
            name_of(pod), ["python3", "-c", VERSION_SCRIPT, port], container=container.name
        )
        versions[name_of(pod)] = result.stdout.strip() if result.ok else f"error {result}"
    return versions


def wait_old_pods_gone(
    apps: client.AppsV1Api, core: client.CoreV1Api, namespace: str, name: str, waiter: Waiter
) -> None:
    """Wait until no pod of the Deployment is terminating (drained and gone)."""
    deployment = apps.read_namespaced_deployment(name, namespace)
    selector = label_selector(deployment.spec.selector if deployment.spec else None)

    def gone() -> tuple[bool, str]:
        pods = core.list_namespaced_pod(namespace, label_selector=selector).items
        leaving = [name_of(p) for p in pods if deleting(p)]
        return not leaving, f"terminating: {leaving}"

    waiter.until(gone, f"old pods of deployment/{name} to terminate", kind="rollout")


@dataclass
class Rollout:
    """Everything a rollout test needs, bound to the namespace under test."""

    namespace: str
    deployment: str
    apps: client.AppsV1Api
    core: client.CoreV1Api
    api: client.ApiClient
    waiter: Waiter
    pod_exec: Exec
    target: IngressClient
    original_image: str
    conflicts: Callable[[], list[str]]

    @property
    def repo(self) -> str:
        return split_image(self.original_image)[0]

    @property
    def original_tag(self) -> str:
        return split_image(self.original_image)[1] or ""

    def image(self, tag: str) -> str:
        return f"{self.repo}:{tag}"

    @property
    def through(self) -> Through:
        """The Ingress request that passes through this Deployment."""
        return THROUGH[self.deployment]

    def traffic(self) -> Traffic:
        through = self.through
        return Traffic(
            self.target,
            through.path,
            method=through.method,
            body=through.body(),
            headers=through.headers,
            interval=through.interval,
            max_seconds=600,
        )

    def current_hash(self) -> str:
        """The pod-template hash of the Deployment's current revision ("" when its ReplicaSet
        is not there yet)."""
        deployment = self.apps.read_namespaced_deployment(self.deployment, self.namespace)
        current = revision_of(deployment)
        for rs in replica_sets(self.apps, self.namespace, deployment):
            if revision_of(rs) == current:
                return str(
                    ((rs.metadata.labels if rs.metadata else None) or {}).get(POD_TEMPLATE_HASH, "")
                )
        return ""

    def pod_hashes(self) -> dict[str, str]:
        """Pod -> pod-template hash, for the running (not terminating) pods."""
        deployment = self.apps.read_namespaced_deployment(self.deployment, self.namespace)
        selector = label_selector(deployment.spec.selector if deployment.spec else None)
        pods = self.core.list_namespaced_pod(self.namespace, label_selector=selector).items
        return {
            name_of(p): ((p.metadata.labels if p.metadata else None) or {}).get(
                POD_TEMPLATE_HASH, ""
            )
            for p in pods
            if not deleting(p)
        }

    def complete(self, traffic_run: Traffic, label: str) -> str:
        """``kubectl rollout status``, then wait for the old pods to drain."""
        message = self.waiter.rollout(self.apps, self.namespace, self.deployment)
        wait_old_pods_gone(self.apps, self.core, self.namespace, self.deployment, self.waiter)
        traffic_run.mark(label)
        # Some requests after the mark, so the report shows traffic served once it settled.
        traffic_run.wait_for(
            len(traffic_run.results()) + SETTLED_REQUESTS, timeout=self.waiter.timeouts.http
        )
        return message

    def versions(self) -> dict[str, str]:
        """What every running pod of the Deployment reports at /version."""
        return pod_versions(self.apps, self.core, self.namespace, self.deployment, self.pod_exec)

    def pods_of(self, image: str) -> list[client.V1Pod]:
        """Pods of the Deployment running ``image``."""
        return pods_with_image(self.apps, self.core, self.namespace, self.deployment, image)
