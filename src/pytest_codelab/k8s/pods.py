"""Pods as the suites look at them: which are Ready, which belong to a workload or an app,
how often their containers restarted, and waiting for a deleted pod's successor."""

from __future__ import annotations

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from pytest_codelab.k8s.diagnostics import pod_summary
from pytest_codelab.k8s.objects import deleting, meta, name_of
from pytest_codelab.k8s.stack import label_selector
from pytest_codelab.k8s.waiting import Waiter


def is_ready(pod: client.V1Pod) -> bool:
    """The pod's Ready condition is True."""
    conditions = pod.status.conditions if pod.status else None
    return any(c.type == "Ready" and c.status == "True" for c in conditions or [])


def live_pods(core: client.CoreV1Api, namespace: str, selector: str) -> list[client.V1Pod]:
    """Pods of a selector that are not being deleted."""
    pods = core.list_namespaced_pod(namespace, label_selector=selector).items
    return [p for p in pods if not deleting(p)]


def ready_pods(core: client.CoreV1Api, namespace: str, selector: str) -> list[client.V1Pod]:
    """The Ready pods of a selector that are not being deleted, by name."""
    ready = [p for p in live_pods(core, namespace, selector) if is_ready(p)]
    return sorted(ready, key=name_of)


def app_pods(core: client.CoreV1Api, namespace: str, app: str) -> dict[str, client.V1Pod]:
    """Every pod labelled ``app=<app>`` (also those being deleted), by name."""
    return {
        name_of(p): p
        for p in core.list_namespaced_pod(namespace, label_selector=f"app={app}").items
    }


def deployment_pods(
    apps: client.AppsV1Api, core: client.CoreV1Api, namespace: str, name: str
) -> tuple[client.V1Deployment, list[client.V1Pod]]:
    """A Deployment and its live pods."""
    deployment = apps.read_namespaced_deployment(name, namespace)
    selector = label_selector(deployment.spec.selector if deployment.spec else None)
    return deployment, live_pods(core, namespace, selector)


def statefulset_pods(
    apps: client.AppsV1Api, core: client.CoreV1Api, namespace: str, name: str
) -> list[client.V1Pod]:
    """A StatefulSet's live pods."""
    sts = apps.read_namespaced_stateful_set(name, namespace)
    return live_pods(core, namespace, label_selector(sts.spec.selector if sts.spec else None))


def restart_counts(pod: client.V1Pod) -> dict[str, int]:
    """Container name -> restartCount."""
    statuses = pod.status.container_statuses if pod.status else None
    return {cs.name: cs.restart_count for cs in statuses or []}


def main_container(pod: client.V1Pod, name: str) -> str:
    """The container named like its workload, else the first one."""
    names = [c.name for c in pod.spec.containers] if pod.spec else []
    return name if name in names or not names else names[0]


def waiting_reason(pod: client.V1Pod) -> str:
    """Why the pod's first waiting container waits (ErrImagePull ...), else its phase."""
    status = pod.status or client.V1PodStatus()
    for container in status.container_statuses or []:
        if container.state and container.state.waiting:
            return str(container.state.waiting.reason)
    return f"phase {status.phase}"


def recreate_pod(
    core: client.CoreV1Api,
    apps: client.AppsV1Api,
    namespace: str,
    sts: str,
    pod: client.V1Pod,
    waiter: Waiter,
) -> None:
    """Delete a StatefulSet pod and wait until its successor (same name, new uid) is Ready."""
    name = name_of(pod)
    core.delete_namespaced_pod(name, namespace)

    def back() -> tuple[bool, str]:
        try:
            current = core.read_namespaced_pod(name, namespace)
        except ApiException as exc:
            return False, f"pod/{name}: HTTP {exc.status}"
        new = meta(current).uid != meta(pod).uid
        return new and is_ready(current) and not deleting(current), (
            ("new pod: " if new else "old pod: ") + pod_summary(current)
        )

    waiter.until(back, f"statefulset/{sts}: pod/{name} recreated and Ready", kind="pod_start")
    waiter.statefulset(apps, namespace, sts)
