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

import pytest
from kubernetes import client

from pytest_codelab.clients import traffic
from pytest_codelab.clients.ingress import IngressClient
from pytest_codelab.errors import RolloutFailed
from pytest_codelab.k8s import rollouts
from pytest_codelab.k8s.diagnostics import event_line, event_time, pod_summary, sorted_events
from pytest_codelab.k8s.pods import waiting_reason
from pytest_codelab.k8s.podtools import ExecResult
from pytest_codelab.k8s.stack import StackInfo, wait_ready
from pytest_codelab.k8s.waiting import Timeouts, Waiter, rollout_status, wait_until
from pytest_codelab.scenarios.rollout import Rollout

pytestmark = [pytest.mark.disruptive, pytest.mark.slow]

DEPLOYMENT = "agent-runtime"
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


def next_version(tag: str) -> str:
    """The published version the Deployment does not run (1.0.0 -> 1.1.0 and back)."""
    if tag not in VERSIONS:
        pytest.skip(f"deployment/{DEPLOYMENT} runs tag {tag!r}, not one of {VERSIONS}")
    return VERSIONS[(VERSIONS.index(tag) + 1) % len(VERSIONS)]


@pytest.fixture
def rollout(
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
    """agent-runtime settled, traffic target (Ingress + token); afterwards the Deployment's
    pod template, progressDeadlineSeconds and change-cause are put back as they were, and
    the namespace is Ready."""
    ns = codelab_stack.namespace
    wait_ready(k8s_client, ns, timeout=codelab_timeouts.deploy)
    snapshot = rollouts.Snapshot.take(apps_v1, k8s_client, ns, DEPLOYMENT)
    original = apps_v1.read_namespaced_deployment(DEPLOYMENT, ns)
    yield Rollout(
        ns,
        DEPLOYMENT,
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
        f"deployment/{DEPLOYMENT}: pods report versions {versions}, expected {expected}"
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
    pytest.fail(f"requests failed during {phase}:\n{report.describe()}{also}", pytrace=False)


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
    with traffic.running(rollout.traffic(), timeout=rollout.waiter.timeouts.http) as run:
        run.mark("set image")
        rollouts.set_image(rollout.apps, rollout.namespace, DEPLOYMENT, rollout.image(new))
        rollout.complete(run, "rolled out")
        assert_versions(rollout, new)
        revisions = rollouts.history(rollout.apps, rollout.namespace, DEPLOYMENT)
        deployment = rollout.apps.read_namespaced_deployment(DEPLOYMENT, rollout.namespace)
        run.mark("undo")
        undone = rollouts.undo(rollout.apps, rollout.api, rollout.namespace, DEPLOYMENT)
        rollout.complete(run, "undone")
    report = run.report()
    assert_no_failures(rollout, report, f"set image {rollout.image(new)} and rollout undo")
    seen = [v for v, _ in report.transitions(lambda r: r.get("version"))]
    assert new in seen and seen[-1] == old, (
        f"versions seen by the traffic, in order: {seen}; expected {old} -> {new} -> {old}"
    )
    text = ", ".join(map(str, revisions))
    by_image = {r.image: r.number for r in revisions}
    current = rollouts.revision_of(deployment)
    assert by_image.get(rollout.image(new)) == current, (
        f"history has no revision {current} for {rollout.image(new)}: {text}"
    )
    assert by_image.get(rollout.image(old), current) < current, (
        f"history has no earlier revision for {rollout.image(old)}: {text}"
    )
    assert "rolled back" in undone, undone
    assert_versions(rollout, old)


@pytest.mark.requirement(
    "5.4/undo-to-revision: rollout undo --to-revision returns to the chosen revision"
)
def test_undo_to_revision_without_downtime(rollout: Rollout) -> None:
    """After ``set image`` to the next version, ``rollout undo --to-revision=N`` with N the
    revision of the original image brings that image back, without a failed request."""
    old, new = rollout.original_tag, next_version(rollout.original_tag)
    with traffic.running(rollout.traffic(), timeout=rollout.waiter.timeouts.http) as run:
        rollouts.set_image(rollout.apps, rollout.namespace, DEPLOYMENT, rollout.image(new))
        rollout.complete(run, "rolled out")
        revisions = rollouts.history(rollout.apps, rollout.namespace, DEPLOYMENT)
        chosen = [r.number for r in revisions if r.image == rollout.image(old)]
        assert chosen, f"no revision of {rollout.image(old)} in history: {revisions}"
        run.mark(f"undo --to-revision={chosen[-1]}")
        undone = rollouts.undo(
            rollout.apps, rollout.api, rollout.namespace, DEPLOYMENT, to_revision=chosen[-1]
        )
        rollout.complete(run, "undone")
    assert_no_failures(
        rollout, run.report(), f"set image and rollout undo --to-revision={chosen[-1]}"
    )
    assert f"revision {chosen[-1]}" in undone, undone
    assert_versions(rollout, old)
    latest = rollouts.history(rollout.apps, rollout.namespace, DEPLOYMENT)[-1]
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
