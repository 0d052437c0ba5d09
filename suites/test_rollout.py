"""Issue 5.4: rolling updates of agent-runtime without downtime, history, undo, stuck rollouts.

What the seed's "Обновление" section does with kubectl, done through the API: ``set image``
to the next version while requests flow through the Ingress (gateway -> agent-runtime),
``rollout status``, ``rollout history``, ``rollout undo`` (also ``--to-revision``), and a
rollout to an image that cannot start, which must be reported as stuck within the
Deployment's progressDeadlineSeconds and is then rolled back by the gate. Every test leaves
agent-runtime as it found it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from kubernetes import client

from pytest_codelab import podtools, traffic
from pytest_codelab.diagnostics import event_line, pod_summary, sorted_events
from pytest_codelab.errors import RolloutFailed
from pytest_codelab.stack import StackInfo, label_selector, wait_ready
from pytest_codelab.waiting import Timeouts, Waiter, rollout_status, wait_until

pytestmark = [pytest.mark.disruptive, pytest.mark.slow]

DEPLOYMENT = "agent-runtime"
#: The published CodeLab versions; a rollout goes to the one the Deployment does not run.
VERSIONS = ("1.0.0", "1.1.0")
REVISION = "deployment.kubernetes.io/revision"
CHANGE_CAUSE = "kubernetes.io/change-cause"
POD_TEMPLATE_HASH = "pod-template-hash"
#: Deployment annotations ``kubectl rollout undo`` keeps instead of copying from the RS.
UNDO_SKIPPED_ANNOTATIONS = frozenset(
    {
        "kubectl.kubernetes.io/last-applied-configuration",
        REVISION,
        "deployment.kubernetes.io/revision-history",
        "deployment.kubernetes.io/desired-replicas",
        "deployment.kubernetes.io/max-replicas",
        "deprecated.deployment.rollback.to",
    }
)
#: Short progress deadline for the stuck-rollout test (seconds).
STUCK_DEADLINE = 30
#: How late after progressDeadlineSeconds the controller may report it (seconds).
DEADLINE_SLACK = 45
MISSING_TAG = "0.0.0-codelab-gate-missing"
#: Requests that must be answered after a rollout completes before the next phase.
SETTLED_REQUESTS = 20
TRAFFIC_PATH = "/api/v1/whoami"
#: Events that explain dropped requests (HPA rescales, pods stopped) in a failure message.
WINDOW_EVENT_REASONS = frozenset(
    {"SuccessfulRescale", "ScalingReplicaSet", "Killing", "SuccessfulDelete", "Unhealthy"}
)

Exec = Callable[..., podtools.ExecResult]


# ----------------------------------------------------------------- kubectl-like operations


def split_image(image: str) -> tuple[str, str]:
    """``repo:tag`` -> (repo, tag); a digest or no tag gives tag ''."""
    if "@" in image:
        return image.split("@", 1)[0], ""
    repo, sep, tag = image.rpartition(":")
    if not sep or "/" in tag:
        return image, ""
    return repo, tag


def next_version(tag: str) -> str:
    """The published version the Deployment does not run (1.0.0 -> 1.1.0 and back)."""
    if tag not in VERSIONS:
        pytest.skip(f"deployment/{DEPLOYMENT} runs tag {tag!r}, not one of {VERSIONS}")
    return VERSIONS[(VERSIONS.index(tag) + 1) % len(VERSIONS)]


def container_of(deployment: client.V1Deployment) -> client.V1Container:
    containers = deployment.spec.template.spec.containers
    return next((c for c in containers if c.name == DEPLOYMENT), containers[0])


def set_image(
    apps: client.AppsV1Api,
    namespace: str,
    image: str,
    *,
    pull_policy: str | None = None,
    progress_deadline: int | None = None,
) -> None:
    """``kubectl set image deployment/agent-runtime agent-runtime=IMAGE`` (strategic merge
    patch), recording the change cause like ``--record`` did."""
    deployment = apps.read_namespaced_deployment(DEPLOYMENT, namespace)
    change: dict[str, Any] = {"name": container_of(deployment).name, "image": image}
    if pull_policy:
        change["imagePullPolicy"] = pull_policy
    spec: dict[str, Any] = {"template": {"spec": {"containers": [change]}}}
    if progress_deadline is not None:
        spec["progressDeadlineSeconds"] = progress_deadline
    body = {
        "metadata": {"annotations": {CHANGE_CAUSE: f"pytest-codelab: set image {image}"}},
        "spec": spec,
    }
    apps.patch_namespaced_deployment(
        DEPLOYMENT, namespace, body, _content_type="application/strategic-merge-patch+json"
    )


def replica_sets(
    apps: client.AppsV1Api, namespace: str, deployment: client.V1Deployment
) -> list[client.V1ReplicaSet]:
    """The Deployment's ReplicaSets (by owner reference), oldest revision first."""
    owned = [
        rs
        for rs in apps.list_namespaced_replica_set(
            namespace, label_selector=label_selector(deployment.spec.selector)
        ).items
        if any(ref.uid == deployment.metadata.uid for ref in rs.metadata.owner_references or [])
    ]
    return sorted(owned, key=revision_of)


def revision_of(obj: Any) -> int:
    return int((obj.metadata.annotations or {}).get(REVISION, "0"))


@dataclass(frozen=True)
class Revision:
    """One line of ``kubectl rollout history``."""

    number: int
    image: str
    cause: str
    replica_set: str

    def __str__(self) -> str:
        return f"{self.number} {self.image} ({self.cause or '-'}) rs/{self.replica_set}"


def history(apps: client.AppsV1Api, namespace: str) -> list[Revision]:
    """``kubectl rollout history deployment/agent-runtime``."""
    deployment = apps.read_namespaced_deployment(DEPLOYMENT, namespace)
    return [
        Revision(
            revision_of(rs),
            next((c.image for c in rs.spec.template.spec.containers if c.name == DEPLOYMENT), ""),
            (rs.metadata.annotations or {}).get(CHANGE_CAUSE, ""),
            rs.metadata.name,
        )
        for rs in replica_sets(apps, namespace, deployment)
    ]


def undo(
    apps: client.AppsV1Api, api: client.ApiClient, namespace: str, to_revision: int = 0
) -> str:
    """``kubectl rollout undo [--to-revision=N]``: copy that ReplicaSet's pod template (minus
    its pod-template-hash label) and annotations into the Deployment (kubectl's
    DeploymentRollbacker). 0 means the revision before the current one."""
    deployment = apps.read_namespaced_deployment(DEPLOYMENT, namespace)
    if deployment.spec.paused:
        raise AssertionError(f"deployment/{DEPLOYMENT} is paused; kubectl refuses to undo it")
    sets = replica_sets(apps, namespace, deployment)
    if to_revision == 0:
        current = revision_of(deployment)
        older = [rs for rs in sets if revision_of(rs) < current]
        assert older, f"deployment/{DEPLOYMENT}: no revision before {current} to undo to"
        chosen = older[-1]
    else:
        matches = [rs for rs in sets if revision_of(rs) == to_revision]
        assert matches, (
            f"deployment/{DEPLOYMENT}: no revision {to_revision}; history: "
            + ", ".join(str(r) for r in history(apps, namespace))
        )
        chosen = matches[0]
    template = api.sanitize_for_serialization(chosen.spec.template)
    template.get("metadata", {}).get("labels", {}).pop(POD_TEMPLATE_HASH, None)
    if template == api.sanitize_for_serialization(deployment.spec.template):
        return f"skipped rollback (current template already matches revision {to_revision})"
    annotations = {
        k: v
        for k, v in (deployment.metadata.annotations or {}).items()
        if k in UNDO_SKIPPED_ANNOTATIONS
    }
    annotations.update(
        {
            k: v
            for k, v in (chosen.metadata.annotations or {}).items()
            if k not in UNDO_SKIPPED_ANNOTATIONS
        }
    )
    patch = [
        {"op": "replace", "path": "/spec/template", "value": template},
        {"op": "replace", "path": "/metadata/annotations", "value": annotations},
    ]
    apps.patch_namespaced_deployment(
        DEPLOYMENT, namespace, patch, _content_type="application/json-patch+json"
    )
    return f"rolled back to revision {revision_of(chosen)} (rs/{chosen.metadata.name})"


VERSION_SCRIPT = """
import json, sys, urllib.request
with urllib.request.urlopen("http://127.0.0.1:%s/version" % sys.argv[1], timeout=5) as resp:
    print(json.load(resp).get("version"))
"""


def pod_versions(
    apps: client.AppsV1Api, core: client.CoreV1Api, namespace: str, pod_exec: Exec
) -> dict[str, str]:
    """What every running pod of the Deployment reports at /version."""
    deployment = apps.read_namespaced_deployment(DEPLOYMENT, namespace)
    container = container_of(deployment)
    port = str(container.ports[0].container_port if container.ports else 8001)
    pods = core.list_namespaced_pod(
        namespace, label_selector=label_selector(deployment.spec.selector)
    ).items
    versions = {}
    for pod in pods:
        if pod.metadata.deletion_timestamp is not None:
            continue
        result = pod_exec(
            pod.metadata.name, ["python3", "-c", VERSION_SCRIPT, port], container=container.name
        )
        versions[pod.metadata.name] = result.stdout.strip() if result.ok else f"error {result}"
    return versions


def wait_old_pods_gone(
    apps: client.AppsV1Api, core: client.CoreV1Api, namespace: str, waiter: Waiter
) -> None:
    """Wait until no pod of the Deployment is terminating (drained and gone)."""
    deployment = apps.read_namespaced_deployment(DEPLOYMENT, namespace)
    selector = label_selector(deployment.spec.selector)

    def gone() -> tuple[bool, str]:
        pods = core.list_namespaced_pod(namespace, label_selector=selector).items
        leaving = [p.metadata.name for p in pods if p.metadata.deletion_timestamp]
        return not leaving, f"terminating: {leaving}"

    waiter.until(gone, f"old pods of deployment/{DEPLOYMENT} to terminate", kind="rollout")


# ----------------------------------------------------------------- fixtures


@dataclass
class Rollout:
    """Everything a rollout test needs, bound to the namespace under test."""

    namespace: str
    apps: client.AppsV1Api
    core: client.CoreV1Api
    api: client.ApiClient
    waiter: Waiter
    pod_exec: Exec
    target: traffic.Target
    original_image: str
    conflicts: Callable[[], list[str]]

    @property
    def repo(self) -> str:
        return split_image(self.original_image)[0]

    @property
    def original_tag(self) -> str:
        return split_image(self.original_image)[1]

    def image(self, tag: str) -> str:
        return f"{self.repo}:{tag}"

    def traffic(self) -> traffic.Traffic:
        return traffic.Traffic(self.target, TRAFFIC_PATH, interval=0.05, max_seconds=600)

    def complete(self, traffic_run: traffic.Traffic, label: str) -> str:
        """``kubectl rollout status``, then wait for the old pods to drain."""
        message = self.waiter.rollout(self.apps, self.namespace, DEPLOYMENT)
        wait_old_pods_gone(self.apps, self.core, self.namespace, self.waiter)
        traffic_run.mark(label)
        # Some requests after the mark, so the report shows traffic served once it settled.
        traffic_run.wait_for(len(traffic_run.results()) + SETTLED_REQUESTS, timeout=30)
        return message

    def assert_versions(self, expected: str) -> None:
        versions = pod_versions(self.apps, self.core, self.namespace, self.pod_exec)
        wrong = {pod: v for pod, v in versions.items() if v != expected}
        assert versions and not wrong, (
            f"deployment/{DEPLOYMENT}: pods report versions {versions}, expected {expected}"
        )


@pytest.fixture
def rollout(
    codelab_stack: StackInfo,
    k8s_client: client.ApiClient,
    apps_v1: client.AppsV1Api,
    core_v1: client.CoreV1Api,
    waiter: Waiter,
    pod_exec: Exec,
    ingress_target: traffic.Target,
    api_token: str,
    codelab_timeouts: Timeouts,
    ingress_conflict_check: Callable[[], list[str]],
) -> Iterator[Rollout]:
    """agent-runtime settled, traffic target (Ingress + token); afterwards the Deployment's
    pod template, progressDeadlineSeconds and change-cause are put back as they were, and
    the namespace is Ready."""
    ns = codelab_stack.namespace
    wait_ready(k8s_client, ns, timeout=codelab_timeouts.deploy)
    original = apps_v1.read_namespaced_deployment(DEPLOYMENT, ns)
    template = k8s_client.sanitize_for_serialization(original.spec.template)
    deadline = original.spec.progress_deadline_seconds
    cause = (original.metadata.annotations or {}).get(CHANGE_CAUSE)
    yield Rollout(
        ns,
        apps_v1,
        core_v1,
        k8s_client,
        waiter,
        pod_exec,
        ingress_target.with_headers(Authorization=f"Bearer {api_token}"),
        container_of(original).image,
        ingress_conflict_check,
    )
    current = apps_v1.read_namespaced_deployment(DEPLOYMENT, ns)
    patch = []
    if k8s_client.sanitize_for_serialization(current.spec.template) != template:
        patch.append({"op": "replace", "path": "/spec/template", "value": template})
    if current.spec.progress_deadline_seconds != deadline:
        patch.append({"op": "replace", "path": "/spec/progressDeadlineSeconds", "value": deadline})
    annotations = current.metadata.annotations or {}
    if annotations.get(CHANGE_CAUSE) != cause:
        path = "/metadata/annotations/" + CHANGE_CAUSE.replace("~", "~0").replace("/", "~1")
        if cause is None:
            patch.append({"op": "remove", "path": path})
        else:
            patch.append({"op": "add", "path": path, "value": cause})
    if patch:
        apps_v1.patch_namespaced_deployment(
            DEPLOYMENT, ns, patch, _content_type="application/json-patch+json"
        )
    wait_ready(k8s_client, ns, timeout=codelab_timeouts.deploy)


def assert_no_failures(rollout: Rollout, report: traffic.TrafficReport, phase: str) -> None:
    if not report.failures:
        return
    conflicts = rollout.conflicts()
    also = f"\n(the host is also claimed by {', '.join(conflicts)})" if conflicts else ""
    start, end = report.results[0].wall - 10, report.results[-1].wall + 1
    events = [
        event_line(e)
        for e in sorted_events(rollout.core, rollout.namespace)
        if e.reason in WINDOW_EVENT_REASONS and start <= _event_wall(e) <= end
    ]
    if events:
        also += "\nscaling and pod stops meanwhile:\n  " + "\n  ".join(events)
    pytest.fail(f"requests failed during {phase}:\n{report.describe()}{also}", pytrace=False)


def _event_wall(event: client.CoreV1Event) -> float:
    moment = event.last_timestamp or event.event_time or event.first_timestamp
    return moment.timestamp() if moment else 0.0


# ----------------------------------------------------------------- tests


@pytest.mark.requirement(
    "5.4/rolling-update: set image to the next version with zero failed requests"
)
@pytest.mark.requirement("5.4/history: rollout history shows the revisions")
@pytest.mark.requirement("5.4/undo: rollout undo returns to the previous version")
def test_set_image_history_and_undo_without_downtime(rollout: Rollout) -> None:
    """``set image`` agent-runtime to the next version under continuous traffic through the
    Ingress: the rollout completes, no request fails, every pod reports the new version at
    /version, the history has a revision for each image; ``rollout undo`` then returns to
    the previous version, again without a failed request."""
    old, new = rollout.original_tag, next_version(rollout.original_tag)
    with traffic.running(rollout.traffic()) as run:
        run.mark("set image")
        set_image(rollout.apps, rollout.namespace, rollout.image(new))
        rollout.complete(run, "rolled out")
        rollout.assert_versions(new)
        revisions = history(rollout.apps, rollout.namespace)
        deployment = rollout.apps.read_namespaced_deployment(DEPLOYMENT, rollout.namespace)
        run.mark("undo")
        undone = undo(rollout.apps, rollout.api, rollout.namespace)
        rollout.complete(run, "undone")
    report = run.report()
    assert_no_failures(rollout, report, f"set image {rollout.image(new)} and rollout undo")
    seen = [v for v, _ in report.transitions(lambda r: r.get("version"))]
    assert new in seen and seen[-1] == old, (
        f"versions seen by the traffic, in order: {seen}; expected {old} -> {new} -> {old}"
    )
    text = ", ".join(map(str, revisions))
    by_image = {r.image: r.number for r in revisions}
    current = revision_of(deployment)
    assert by_image.get(rollout.image(new)) == current, (
        f"history has no revision {current} for {rollout.image(new)}: {text}"
    )
    assert by_image.get(rollout.image(old), current) < current, (
        f"history has no earlier revision for {rollout.image(old)}: {text}"
    )
    assert "rolled back" in undone, undone
    rollout.assert_versions(old)


@pytest.mark.requirement("5.4/undo: rollout undo --to-revision returns to the chosen revision")
def test_undo_to_revision_without_downtime(rollout: Rollout) -> None:
    """After ``set image`` to the next version, ``rollout undo --to-revision=N`` with N the
    revision of the original image brings that image back, without a failed request."""
    old, new = rollout.original_tag, next_version(rollout.original_tag)
    with traffic.running(rollout.traffic()) as run:
        set_image(rollout.apps, rollout.namespace, rollout.image(new))
        rollout.complete(run, "rolled out")
        revisions = history(rollout.apps, rollout.namespace)
        chosen = [r.number for r in revisions if r.image == rollout.image(old)]
        assert chosen, f"no revision of {rollout.image(old)} in history: {revisions}"
        run.mark(f"undo --to-revision={chosen[-1]}")
        undone = undo(rollout.apps, rollout.api, rollout.namespace, to_revision=chosen[-1])
        rollout.complete(run, "undone")
    assert_no_failures(
        rollout, run.report(), f"set image and rollout undo --to-revision={chosen[-1]}"
    )
    assert f"revision {chosen[-1]}" in undone, undone
    rollout.assert_versions(old)
    latest = history(rollout.apps, rollout.namespace)[-1]
    assert latest.image == rollout.image(old), f"latest revision is {latest}, not the chosen one"


@pytest.mark.requirement(
    "5.4/stuck-rollout: an image that cannot start is reported within progressDeadlineSeconds "
    "and rolled back"
)
def test_stuck_rollout_is_reported_and_rolled_back(
    rollout: Rollout, codelab_timeouts: Timeouts
) -> None:
    """``set image`` to a tag that does not exist, with imagePullPolicy Never and a short
    progressDeadlineSeconds: the new pod cannot start (ErrImageNeverPull), the old pods
    keep serving (no failed request), ``rollout status`` reports the Deployment as stuck
    within the deadline, and the gate's ``rollout undo`` restores a healthy Deployment."""
    broken = rollout.image(MISSING_TAG)
    scale = codelab_timeouts.rollout / Timeouts().rollout
    with traffic.running(rollout.traffic()) as run:
        started = time.monotonic()
        set_image(
            rollout.apps,
            rollout.namespace,
            broken,
            pull_policy="Never",
            progress_deadline=STUCK_DEADLINE,
        )
        with pytest.raises(RolloutFailed) as failed:
            rollout_status(
                rollout.apps,
                rollout.namespace,
                DEPLOYMENT,
                timeout=(STUCK_DEADLINE + DEADLINE_SLACK) * scale,
            )
        elapsed = time.monotonic() - started
        run.mark("reported stuck")
        stuck = _new_pods(rollout, broken)
        undone = undo(rollout.apps, rollout.api, rollout.namespace)
        rollout.complete(run, "rolled back")
    assert DEPLOYMENT in str(failed.value) and "progress deadline" in str(failed.value)
    assert elapsed <= (STUCK_DEADLINE + DEADLINE_SLACK) * scale, (
        f"deployment/{DEPLOYMENT} reported stuck after {elapsed:.0f}s; progressDeadlineSeconds "
        f"is {STUCK_DEADLINE}"
    )
    reasons = {_waiting_reason(p) for p in stuck}
    assert stuck and reasons <= {"ErrImageNeverPull", "ImagePullBackOff", "ErrImagePull"}, (
        f"pods of {broken} should be waiting for their image: "
        + ("; ".join(map(pod_summary, stuck)) or "no such pod")
    )
    assert_no_failures(rollout, run.report(), f"the stuck rollout to {broken} and its rollback")
    assert "rolled back" in undone, undone
    rollout.assert_versions(rollout.original_tag)
    wait_until(
        lambda: _no_pods_of(rollout, broken),
        timeout=codelab_timeouts.rollout,
        what=f"pods of {broken} to be removed after the rollback",
    )


def _new_pods(rollout: Rollout, image: str) -> list[client.V1Pod]:
    deployment = rollout.apps.read_namespaced_deployment(DEPLOYMENT, rollout.namespace)
    pods = rollout.core.list_namespaced_pod(
        rollout.namespace, label_selector=label_selector(deployment.spec.selector)
    ).items
    return [p for p in pods if any(c.image == image for c in p.spec.containers)]


def _waiting_reason(pod: client.V1Pod) -> str:
    for status in pod.status.container_statuses or []:
        if status.state and status.state.waiting:
            return str(status.state.waiting.reason)
    return f"phase {pod.status.phase}"


def _no_pods_of(rollout: Rollout, image: str) -> tuple[bool, str]:
    pods = _new_pods(rollout, image)
    return not pods, "; ".join(map(pod_summary, pods))
