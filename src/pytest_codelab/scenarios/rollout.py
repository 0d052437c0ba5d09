"""A rollout under traffic: one Deployment, the ingress client that keeps requesting while
its pods are replaced, and what each pod reports at ``/version``.

``Rollout`` binds everything a rollout test needs to the namespace under test; the test
drives it (``kubectl set image``, ``rollout undo`` from :mod:`pytest_codelab.k8s.rollouts`)
and judges the traffic report and the versions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from kubernetes import client

from pytest_codelab.clients.ingress import IngressClient
from pytest_codelab.clients.traffic import Traffic
from pytest_codelab.deploy.manifests import split_image
from pytest_codelab.k8s import podtools
from pytest_codelab.k8s.objects import deleting, name_of
from pytest_codelab.k8s.rollouts import container_of, pods_with_image
from pytest_codelab.k8s.stack import label_selector
from pytest_codelab.k8s.waiting import Waiter

Exec = Callable[..., podtools.ExecResult]
#: Requests that must be answered after a rollout completes before the next phase.
SETTLED_REQUESTS = 20
TRAFFIC_PATH = "/api/v1/whoami"
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

    def traffic(self) -> Traffic:
        return Traffic(self.target, TRAFFIC_PATH, interval=0.05, max_seconds=600)

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
