"""Deploy the rendered CodeLab objects into a namespace and wait until they are Ready.

Objects are server-side applied (field manager ``pytest-codelab``) through the dynamic
client, in the order given (``manifests.apply_order``). A kind the cluster does not
serve (a CRD such as VerticalPodAutoscaler that is not installed) is skipped with a note,
not failed: it is an add-on of the cluster, not part of CodeLab. When workloads are not
Ready in time, the error names each one and why: pod phases, container waiting reasons
(ImagePullBackOff, CrashLoopBackOff), failing conditions and the last Warning events.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import ResourceNotFoundError

from pytest_codelab.errors import DeployFailed, StackNotReady, WaitTimeout
from pytest_codelab.k8s.blockers import BlockerClock, pod_blocker, readiness_failures
from pytest_codelab.k8s.diagnostics import event_line, pod_summary, sorted_events
from pytest_codelab.k8s.waiting import (
    WorkloadStatus,
    deployment_status,
    statefulset_status,
    wait_until,
)

FIELD_MANAGER = "pytest-codelab"
#: Kinds the gate manages itself and never applies from the manifests.
GATE_OWNED_KINDS = frozenset({"Namespace"})
WARNINGS_PER_WORKLOAD = 3


@dataclass
class DeployResult:
    """What ``deploy`` applied and what it skipped (with the reason)."""

    applied: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class StackInfo:
    """The CodeLab stack under test (the ``codelab_stack`` fixture).

    ``objects`` are the rendered non-Secret objects that were applied (empty when the
    stack was already there, ``deployed`` False); generated Secrets are never kept here.
    """

    namespace: str
    deployed: bool
    ingress_url: str | None
    ingress_host: str | None = None
    objects: tuple[Mapping[str, Any], ...] = ()
    skipped: tuple[str, ...] = ()


def ref(obj: Mapping[str, Any]) -> str:
    """``Kind/name`` of a manifest, for messages."""
    return f"{obj.get('kind')}/{(obj.get('metadata') or {}).get('name')}"


def dynamic_client(api: client.ApiClient) -> DynamicClient:
    """A dynamic client with a private discovery cache (no stale cache shared via /tmp)."""
    cache = Path(tempfile.mkdtemp(prefix="codelab-discovery-")) / "cache.json"
    return DynamicClient(api, cache_file=str(cache))


def api_message(exc: ApiException) -> str:
    """The API server's own explanation from a Status body, else the HTTP status."""
    try:
        message = json.loads(exc.body or "").get("message")
    except (ValueError, AttributeError):
        message = None
    return str(message or f"HTTP {exc.status} {exc.reason}")


def deploy(
    api: client.ApiClient, objects: Iterable[Mapping[str, Any]], namespace: str
) -> DeployResult:
    """Server-side apply ``objects`` (already in apply order) into ``namespace``."""
    dyn = dynamic_client(api)
    result = DeployResult()
    for obj in objects:
        name = ref(obj)
        if obj.get("kind") in GATE_OWNED_KINDS:
            result.skipped.append(f"{name} skipped: the gate manages namespaces itself")
            continue
        try:
            resource = dyn.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
        except ResourceNotFoundError:
            result.skipped.append(
                f"{name} skipped: {obj['apiVersion']} {obj['kind']} is not served by this "
                "cluster (CRD not installed)"
            )
            continue
        body = json.loads(json.dumps(obj))  # a private copy; rendered objects stay untouched
        if resource.namespaced:
            body.setdefault("metadata", {})["namespace"] = namespace
        try:
            dyn.server_side_apply(
                resource,
                body=body,
                namespace=namespace if resource.namespaced else None,
                field_manager=FIELD_MANAGER,
                force_conflicts=True,
            )
        except ApiException as exc:
            raise DeployFailed(
                f"applying {name} to {namespace} failed: {api_message(exc)}"
            ) from None
        result.applied.append(name)
    return result


@dataclass(frozen=True)
class Workload:
    """A Deployment or StatefulSet, with its current status and pod selector."""

    kind: str
    name: str
    status: WorkloadStatus
    selector: str


def label_selector(selector: client.V1LabelSelector | None) -> str:
    """A LabelSelector in the string form the list calls take."""
    if selector is None:
        return ""
    terms = [f"{k}={v}" for k, v in sorted((selector.match_labels or {}).items())]
    for expr in selector.match_expressions or []:
        values = ",".join(expr.values or [])
        terms.append(
            {
                "In": f"{expr.key} in ({values})",
                "NotIn": f"{expr.key} notin ({values})",
                "Exists": expr.key,
                "DoesNotExist": f"!{expr.key}",
            }.get(expr.operator, expr.key)
        )
    return ",".join(terms)


def workloads(apps: client.AppsV1Api, namespace: str) -> list[Workload]:
    """Every Deployment and StatefulSet of the namespace, judged like kubectl rollout status."""
    found = [
        Workload(
            "deployment",
            (d.metadata or client.V1ObjectMeta()).name or "",
            deployment_status(d),
            label_selector(d.spec.selector if d.spec else None),
        )
        for d in apps.list_namespaced_deployment(namespace).items
    ]
    found += [
        Workload(
            "statefulset",
            (s.metadata or client.V1ObjectMeta()).name or "",
            statefulset_status(s),
            label_selector(s.spec.selector if s.spec else None),
        )
        for s in apps.list_namespaced_stateful_set(namespace).items
    ]
    return found


def explain(core: client.CoreV1Api, namespace: str, pending: list[Workload]) -> str:
    """Why each workload is not Ready: its pods and the last Warning events about it."""
    events = [e for e in sorted_events(core, namespace) if e.type == "Warning"]
    lines = []
    for workload in pending:
        lines.append(f"- {workload.status.message}")
        pods = core.list_namespaced_pod(namespace, label_selector=workload.selector).items
        if not pods:
            lines.append("    no pods (see the ReplicaSet/StatefulSet events below)")
        pod_names = {(p.metadata or client.V1ObjectMeta()).name for p in pods}
        for pod in pods:
            lines.append(f"    {pod_summary(pod)}")
        related = [
            e
            for e in events
            if e.involved_object.name in pod_names
            or (e.involved_object.name or "") == workload.name
            or (e.involved_object.name or "").startswith(workload.name + "-")
        ]
        for event in related[-WARNINGS_PER_WORKLOAD:]:
            lines.append(f"    event: {event_line(event)}")
    return "\n".join(lines)


def blocked_pods(core: client.CoreV1Api, namespace: str, pending: list[Workload]) -> dict[str, str]:
    """``workload/pod`` -> what keeps that pod of a pending workload from becoming Ready."""
    if not pending:
        return {}
    readiness = readiness_failures(sorted_events(core, namespace))
    found = {}
    for workload in pending:
        for pod in core.list_namespaced_pod(namespace, label_selector=workload.selector).items:
            reason = pod_blocker(pod, readiness)
            if reason:
                name = (pod.metadata or client.V1ObjectMeta()).name
                found[f"{workload.kind}/{workload.name} pod/{name}"] = reason
    return found


def wait_ready(
    api: client.ApiClient,
    namespace: str,
    *,
    timeout: float,
    expect_workloads: bool = True,
    stuck: float | None = None,
) -> str:
    """Wait until every Deployment and StatefulSet of ``namespace`` is Ready.

    StackNotReady explains each workload that is not; a Deployment past its progress
    deadline fails at once, as ``kubectl rollout status`` does. With ``stuck`` (seconds), a
    pod blocked for that long (crash loop, image or configuration error, unschedulable,
    readiness probe failing; see :mod:`~pytest_codelab.k8s.blockers`) fails the wait then,
    naming it, instead of at ``timeout``.
    """
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    clock = BlockerClock(stuck) if stuck is not None else None

    def probe() -> tuple[bool, str]:
        found = workloads(apps, namespace)
        if not found and expect_workloads:
            return False, f"no Deployments or StatefulSets in namespace {namespace}"
        failed = [w for w in found if w.status.failed]
        if failed:
            raise StackNotReady(
                f"workloads in {namespace} failed:\n{explain(core, namespace, failed)}"
            )
        pending = [w for w in found if not w.status.ready]
        if clock is not None:
            fail_if_stuck(core, namespace, pending, clock)
        messages = [w.status.message for w in pending]
        return not pending, "; ".join(messages) or f"{len(found)} workloads ready"

    try:
        return wait_until(
            probe, timeout=timeout, what=f"workloads in {namespace} to be Ready", interval=2.0
        )
    except WaitTimeout as exc:
        pending = [w for w in workloads(apps, namespace) if not w.status.ready]
        raise StackNotReady(f"{exc}\n{explain(core, namespace, pending)}") from None


def fail_if_stuck(
    core: client.CoreV1Api, namespace: str, pending: list[Workload], clock: BlockerClock
) -> None:
    """Raise StackNotReady when a pending workload's pod has been blocked for the window,
    naming every pod blocked at that moment (each with how long), not only the first."""
    seen = clock.observe(blocked_pods(core, namespace, pending))
    if not clock.expired(seen):
        return
    lines = [f"{pod}: {reason} (for {seconds:.0f}s)" for pod, reason, seconds in seen]
    raise StackNotReady(
        f"workloads in {namespace} cannot become Ready (blocked for {clock.window:.0f}s or "
        "more, not waiting out the deploy deadline):\n"
        + "\n".join(f"- {line}" for line in lines)
        + f"\n{explain(core, namespace, pending)}"
    )
