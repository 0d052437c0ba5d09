"""Issue 5.4: rolling updates of every serving Deployment without downtime, history, undo,
stuck rollouts.

What the seed's "Обновление" section does with kubectl, done through the API, for every
serving Deployment of the guide's architecture (gateway, agent-runtime, auth-service,
llm-proxy: the Deployments of its values-prod.yaml, ``deploy.manifests.BINDINGS``; never the
live namespace's list): the Deployment moves to a new revision while requests flow through
the Ingress on a path that passes through it (``scenarios.rollout.THROUGH``: /api/v1 for the
gateway and agent-runtime, /oauth for auth-service, a session for llm-proxy, which
agent-runtime asks for a completion), ``rollout status``, ``rollout history``, ``rollout
undo`` (also ``--to-revision``), with no failed request. CodeLab's services move by ``set
image`` to the next published version; LiteLLM (llm-proxy) has one published image, so it
moves by ``rollout restart`` (a new pod-template revision: the mechanism ``set image``
triggers, with the same image). A rollout to an image that cannot start must be reported as
stuck within the Deployment's progressDeadlineSeconds and is then rolled back by the gate
(agent-runtime). Every test leaves its Deployment as it found it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from kubernetes import client

from pytest_codelab.clients import traffic
from pytest_codelab.clients.ingress import IngressClient
from pytest_codelab.deploy.manifests import BINDINGS
from pytest_codelab.errors import RolloutFailed
from pytest_codelab.k8s import rollouts
from pytest_codelab.k8s.diagnostics import event_line, event_time, pod_summary, sorted_events
from pytest_codelab.k8s.pods import waiting_reason
from pytest_codelab.k8s.podtools import ExecResult
from pytest_codelab.k8s.stack import StackInfo, wait_ready
from pytest_codelab.k8s.waiting import Timeouts, Waiter, rollout_status, wait_until
from pytest_codelab.scenarios.rollout import THROUGH, Rollout

pytestmark = [pytest.mark.disruptive, pytest.mark.slow]

#: The Deployment of the guide's own update commands (and of the stuck-rollout check).
DEPLOYMENT = "agent-runtime"
#: Every serving Deployment the guide's values deploy: each one is rolled.
SERVING = tuple(b.name for b in BINDINGS if b.kind == "Deployment")
#: The published CodeLab versions; a rollout goes to the one the Deployment does not run.
VERSIONS = ("1.0.0", "1.1.0")
#: Short progress deadline for the stuck-rollout test (seconds).
STUCK_DEADLINE = 30
#: How late after progressDeadlineSeconds the controller may report it (seconds).
DEADLINE_SLACK = 45
MISSING_TAG = "0.0.0-codelab-gate-missing"
#: Events that explain dropped requests (HPA rescales, pods stopped) in a failure message.
WINDOW_EVENT_REASONS = frozenset(
    {"SuccessfulRescale", "ScalingReplicaSet", "Killing", "SuccessfulDelete", "Unhealthy"}
)

Exec = Callable[..., ExecResult]


# ----------------------------------------------------------------- fixtures

REQUIREMENTS = {
    "rolling-update": "5.4/rolling-update: deployment/{} rolls to a new revision under "
    "traffic through the Ingress with zero failed requests",
    "history": "5.4/history: rollout history of deployment/{} shows the revisions",
    "undo": "5.4/undo: rollout undo returns deployment/{} to the previous version",
    "undo-to-revision": "5.4/undo-to-revision: rollout undo --to-revision returns "
    "deployment/{} to the chosen revision",
}


def each_serving(*requirements: str) -> list[Any]:
    """One parameter per serving Deployment, its requirement markers naming it."""
    return [
        pytest.param(
            name,
            id=name,
            marks=[pytest.mark.requirement(REQUIREMENTS[r].format(name)) for r in requirements],
        )
        for name in SERVING
    ]


def next_version(tag: str) -> str:
    """The published version the Deployment does not run (1.0.0 -> 1.1.0 and back)."""
    return VERSIONS[(VERSIONS.index(tag) + 1) % len(VERSIONS)]


@dataclass(frozen=True)
class Change:
    """What moved the Deployment to its next revision."""

    what: str
    image: str | None = None
    tag: str | None = None


def change(rollout: Rollout) -> Change:
    """``set image`` to the next published CodeLab version when the Deployment runs one,
    else ``rollout restart`` (a new pod-template revision with the same image)."""
    if rollout.original_tag in VERSIONS:
        tag = next_version(rollout.original_tag)
        image = rollout.image(tag)
        rollouts.set_image(rollout.apps, rollout.namespace, rollout.deployment, image)
        return Change(f"set image {image}", image, tag)
    rollouts.restart(rollout.apps, rollout.namespace, rollout.deployment)
    return Change("rollout restart")


@pytest.fixture
def rollout(
    name: str,
    codelab_stack: StackInfo,
    k8s_client: client.ApiClient,
    apps_v1: client.AppsV1Api,
    core_v1: client.CoreV1Api,
    waiter: Waiter,
    pod_exec: Exec,
    ingress_target: IngressClient,
    api_token: str,
    codelab_timeouts: Timeouts,
    ingress_conflict_check: Callable[[], list[str]],
) -> Iterator[Rollout]:
    """Deployment ``name`` settled, traffic target (Ingress + token); afterwards its pod
    template, progressDeadlineSeconds and change-cause are put back as they were, and the
    namespace is Ready."""
    assert name in THROUGH, f"no Ingress path known to pass through deployment/{name}"
    ns = codelab_stack.namespace
    wait_ready(k8s_client, ns, timeout=codelab_timeouts.deploy)
    snapshot = rollouts.Snapshot.take(apps_v1, k8s_client, ns, name)
    original = apps_v1.read_namespaced_deployment(name, ns)
    yield Rollout(
        ns,
        name,
        apps_v1,
        core_v1,
        k8s_client,
        waiter,
        pod_exec,
        ingress_target.with_token(api_token),
        rollouts.container_of(original).image,
        ingress_conflict_check,
    )
    snapshot.restore(apps_v1, k8s_client)
    wait_ready(k8s_client, ns, timeout=codelab_timeouts.deploy)


def assert_versions(rollout: Rollout, expected: str) -> None:
    versions = rollout.versions()
    wrong = {pod: v for pod, v in versions.items() if v != expected}
    assert versions and not wrong, (
        f"deployment/{rollout.deployment}: pods report versions {versions}, expected {expected}"
    )


def assert_pods_on(rollout: Rollout, template_hash: str, when: str) -> None:
    """Every running pod of the Deployment has the pod-template hash of ``template_hash``."""
    hashes = rollout.pod_hashes()
    wrong = {pod: h for pod, h in hashes.items() if h != template_hash}
    assert hashes and not wrong, (
        f"deployment/{rollout.deployment} {when}: pods run templates {hashes}, expected "
        f"{template_hash}"
    )


def assert_no_failures(rollout: Rollout, report: traffic.TrafficReport, phase: str) -> None:
    if not report.failures:
        return
    conflicts = rollout.conflicts()
    also = f"\n(the host is also claimed by {', '.join(conflicts)})" if conflicts else ""
    start, end = report.results[0].wall - 10, report.results[-1].wall + 1
    events = [
        event_line(e)
        for e in sorted_events(rollout.core, rollout.namespace)
        if e.reason in WINDOW_EVENT_REASONS and start <= event_time(e) <= end
    ]
    if events:
        also += "\nscaling and pod stops meanwhile:\n  " + "\n  ".join(events)
    pytest.fail(
        f"deployment/{rollout.deployment}: requests {report.path} "
        f"({rollout.through.route}) failed during {phase}:\n{report.describe()}{also}",
        pytrace=False,
    )


# ----------------------------------------------------------------- tests


@pytest.mark.parametrize("name", each_serving("rolling-update", "history", "undo"))
def test_set_image_history_and_undo_without_downtime(name: str, rollout: Rollout) -> None:
    """Deployment ``name`` moves to its next revision (``set image`` to the next version, or
    ``rollout restart`` for llm-proxy) under continuous traffic through the Ingress on a path
    that reaches it: the rollout completes, no request fails, every pod runs the new
    template (and reports the new version at /version), the history has a revision for
    each; ``rollout undo`` then returns to the previous template, again without a failed
    request."""
    before = rollout.current_hash()
    with traffic.running(rollout.traffic(), timeout=rollout.waiter.timeouts.http) as run:
        run.mark("update")
        moved = change(rollout)
        rollout.complete(run, "rolled out")
        after = rollout.current_hash()
        assert after != before, f"deployment/{name}: {moved.what} made no new revision"
        assert_pods_on(rollout, after, f"after {moved.what}")
        if moved.tag:
            assert_versions(rollout, moved.tag)
        revisions = rollouts.history(rollout.apps, rollout.namespace, name)
        deployment = rollout.apps.read_namespaced_deployment(name, rollout.namespace)
        run.mark("undo")
        undone = rollouts.undo(rollout.apps, rollout.api, rollout.namespace, name)
        rollout.complete(run, "undone")
    report = run.report()
    assert_no_failures(rollout, report, f"{moved.what} and rollout undo")
    if moved.tag and rollout.through.reports_version:
        seen = [v for v, _ in report.transitions(lambda r: r.get("version"))]
        old = rollout.original_tag
        assert moved.tag in seen and seen[-1] == old, (
            f"versions seen by the traffic, in order: {seen}; expected {old} -> {moved.tag} "
            f"-> {old}"
        )
    text = ", ".join(map(str, revisions))
    by_set = {r.replica_set: r for r in revisions}
    current = rollouts.revision_of(deployment)
    new_rev, old_rev = by_set.get(f"{name}-{after}"), by_set.get(f"{name}-{before}")
    assert new_rev and new_rev.number == current, (
        f"history of deployment/{name} has no revision {current} for {moved.what}: {text}"
    )
    assert old_rev and old_rev.number < current, (
        f"history of deployment/{name} has no earlier revision of the original template: {text}"
    )
    if moved.image:
        assert new_rev.image == moved.image, f"revision {current} runs {new_rev.image}: {text}"
    assert "rolled back" in undone, undone
    assert rollout.current_hash() == before, f"deployment/{name}: undo did not restore"
    assert_pods_on(rollout, before, "after rollout undo")
    if moved.tag:
        assert_versions(rollout, rollout.original_tag)


@pytest.mark.parametrize("name", each_serving("undo-to-revision"))
def test_undo_to_revision_without_downtime(name: str, rollout: Rollout) -> None:
    """After Deployment ``name`` moved to its next revision, ``rollout undo --to-revision=N``
    with N the revision of the original template brings that template (and version) back,
    without a failed request on the Ingress path that reaches it."""
    before = rollout.current_hash()
    with traffic.running(rollout.traffic(), timeout=rollout.waiter.timeouts.http) as run:
        moved = change(rollout)
        rollout.complete(run, "rolled out")
        revisions = rollouts.history(rollout.apps, rollout.namespace, name)
        chosen = [r.number for r in revisions if r.replica_set == f"{name}-{before}"]
        assert chosen, f"no revision of the original template in history: {revisions}"
        run.mark(f"undo --to-revision={chosen[-1]}")
        undone = rollouts.undo(
            rollout.apps, rollout.api, rollout.namespace, name, to_revision=chosen[-1]
        )
        rollout.complete(run, "undone")
    assert_no_failures(
        rollout, run.report(), f"{moved.what} and rollout undo --to-revision={chosen[-1]}"
    )
    assert f"revision {chosen[-1]}" in undone, undone
    assert rollout.current_hash() == before, f"deployment/{name}: undo did not restore"
    assert_pods_on(rollout, before, f"after rollout undo --to-revision={chosen[-1]}")
    if moved.tag:
        assert_versions(rollout, rollout.original_tag)
    latest = rollouts.history(rollout.apps, rollout.namespace, name)[-1]
    assert latest.replica_set == f"{name}-{before}", (
        f"latest revision is {latest}, not the chosen one"
    )


@pytest.mark.parametrize("name", [DEPLOYMENT])
@pytest.mark.requirement(
    "5.4/stuck-rollout: an image that cannot start is reported within progressDeadlineSeconds "
    "and rolled back"
)
def test_stuck_rollout_is_reported_and_rolled_back(
    name: str, rollout: Rollout, codelab_timeouts: Timeouts
) -> None:
    """``set image`` to a tag that does not exist, with imagePullPolicy Never and a short
    progressDeadlineSeconds: the new pod cannot start (ErrImageNeverPull), the old pods
    keep serving (no failed request), ``rollout status`` reports the Deployment as stuck
    within the deadline, and the gate's ``rollout undo`` restores a healthy Deployment."""
    broken = rollout.image(MISSING_TAG)
    deadline = codelab_timeouts.scale(STUCK_DEADLINE + DEADLINE_SLACK)
    with traffic.running(rollout.traffic(), timeout=rollout.waiter.timeouts.http) as run:
        started = time.monotonic()
        rollouts.set_image(
            rollout.apps,
            rollout.namespace,
            DEPLOYMENT,
            broken,
            pull_policy="Never",
            progress_deadline=STUCK_DEADLINE,
        )
        with pytest.raises(RolloutFailed) as failed:
            rollout_status(
                rollout.apps,
                rollout.namespace,
                DEPLOYMENT,
                timeout=deadline,
            )
        elapsed = time.monotonic() - started
        run.mark("reported stuck")
        stuck = rollout.pods_of(broken)
        undone = rollouts.undo(rollout.apps, rollout.api, rollout.namespace, DEPLOYMENT)
        rollout.complete(run, "rolled back")
    assert DEPLOYMENT in str(failed.value) and "progress deadline" in str(failed.value)
    assert elapsed <= deadline, (
        f"deployment/{DEPLOYMENT} reported stuck after {elapsed:.0f}s; progressDeadlineSeconds "
        f"is {STUCK_DEADLINE}"
    )
    reasons = {waiting_reason(p) for p in stuck}
    assert stuck and reasons <= {"ErrImageNeverPull", "ImagePullBackOff", "ErrImagePull"}, (
        f"pods of {broken} should be waiting for their image: "
        + ("; ".join(map(pod_summary, stuck)) or "no such pod")
    )
    assert_no_failures(rollout, run.report(), f"the stuck rollout to {broken} and its rollback")
    assert "rolled back" in undone, undone
    assert_versions(rollout, rollout.original_tag)
    wait_until(
        lambda: _no_pods_of(rollout, broken),
        timeout=codelab_timeouts.rollout,
        what=f"pods of {broken} to be removed after the rollback",
    )


def _no_pods_of(rollout: Rollout, image: str) -> tuple[bool, str]:
    pods = rollout.pods_of(image)
    return not pods, "; ".join(map(pod_summary, pods))
