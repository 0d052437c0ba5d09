"""What counts as a blocked pod, and how long it must stay blocked before the stack fails."""

from __future__ import annotations

from kubernetes import client

from pytest_codelab.k8s.blockers import BlockerClock, pod_blocker, readiness_failures


def _pod(
    name: str = "gateway-1",
    *,
    waiting: str | None = None,
    running: bool = False,
    started: bool = True,
    ready: bool = False,
    unschedulable: bool = False,
    last_exit: int | None = None,
) -> client.V1Pod:
    state = client.V1ContainerState(
        waiting=client.V1ContainerStateWaiting(reason=waiting, message="back-off 10s")
        if waiting
        else None,
        running=client.V1ContainerStateRunning() if running else None,
    )
    last = (
        client.V1ContainerState(
            terminated=client.V1ContainerStateTerminated(exit_code=last_exit, reason="Error")
        )
        if last_exit is not None
        else None
    )
    conditions = (
        [
            client.V1PodCondition(
                type="PodScheduled",
                status="False",
                reason="Unschedulable",
                message="0/4 nodes are available: 4 Insufficient cpu.",
            )
        ]
        if unschedulable
        else []
    )
    statuses = (
        []
        if unschedulable
        else [
            client.V1ContainerStatus(
                name="app",
                image="codelab/gateway:1",
                image_id="",
                ready=ready,
                restart_count=2 if last_exit is not None else 0,
                started=started,
                state=state,
                last_state=last,
            )
        ]
    )
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name),
        status=client.V1PodStatus(
            phase="Pending" if unschedulable else "Running",
            conditions=conditions,
            container_statuses=statuses,
        ),
    )


def _event(pod: str, reason: str, message: str) -> client.CoreV1Event:
    return client.CoreV1Event(
        metadata=client.V1ObjectMeta(name=f"{pod}.1"),
        involved_object=client.V1ObjectReference(kind="Pod", name=pod),
        reason=reason,
        message=message,
    )


def test_crash_loop_names_the_container_and_last_exit() -> None:
    reason = pod_blocker(_pod(waiting="CrashLoopBackOff", last_exit=3), {})
    assert reason == "container app: CrashLoopBackOff back-off 10s; last exit 3 (Error)"


def test_crash_loop_counts_while_the_container_runs_between_back_offs() -> None:
    reason = pod_blocker(_pod(running=True, last_exit=3), {})
    assert reason == "container app: CrashLoopBackOff (restarted 2x); last exit 3 (Error)"
    assert pod_blocker(_pod(running=True, ready=True, last_exit=3), {}) is None


def test_image_and_configuration_errors_block() -> None:
    for waiting in ("ImagePullBackOff", "ErrImageNeverPull", "CreateContainerConfigError"):
        assert waiting in (pod_blocker(_pod(waiting=waiting), {}) or "")


def test_creating_a_container_is_not_blocked() -> None:
    assert pod_blocker(_pod(waiting="ContainerCreating"), {}) is None


def test_unschedulable_pod_blocks_with_the_schedulers_message() -> None:
    reason = pod_blocker(_pod(unschedulable=True), {})
    assert reason == "unschedulable: 0/4 nodes are available: 4 Insufficient cpu."


def test_failing_readiness_blocks_only_once_the_probe_said_so() -> None:
    failing = readiness_failures(
        [
            _event("gateway-1", "Unhealthy", "Readiness probe failed: HTTP probe failed with 404"),
            _event("gateway-1", "Unhealthy", "Liveness probe failed: timeout"),
            _event("gateway-2", "Pulled", "Container image already present"),
        ]
    )
    assert failing == {"gateway-1": "Readiness probe failed: HTTP probe failed with 404"}
    pod = _pod(running=True)
    assert pod_blocker(pod, failing) == (
        "container app: Readiness probe failed: HTTP probe failed with 404"
    )
    assert pod_blocker(pod, {}) is None, "no failure reported yet: still starting"
    assert pod_blocker(_pod(running=True, started=False), failing) is None, "startup probe"
    assert pod_blocker(_pod(running=True, ready=True), failing) is None


def test_clock_expires_only_when_a_blocker_persisted_for_the_window() -> None:
    now = [0.0]
    clock = BlockerClock(60.0, now=lambda: now[0])
    assert not clock.expired(clock.observe({"a": "CrashLoopBackOff"}))
    now[0] = 30.0
    seen = clock.observe({"a": "CrashLoopBackOff", "b": "unschedulable"})
    assert seen == [("a", "CrashLoopBackOff", 30.0), ("b", "unschedulable", 0.0)]
    assert not clock.expired(seen)
    now[0] = 61.0
    seen = clock.observe({"a": "CrashLoopBackOff", "b": "unschedulable"})
    assert clock.expired(seen)
    assert seen == [("a", "CrashLoopBackOff", 61.0), ("b", "unschedulable", 31.0)]


def test_clock_forgets_a_blocker_that_cleared() -> None:
    now = [0.0]
    clock = BlockerClock(60.0, now=lambda: now[0])
    clock.observe({"a": "readiness"})
    now[0] = 50.0
    assert clock.observe({}) == []
    now[0] = 70.0
    assert not clock.expired(clock.observe({"a": "readiness"}))
    now[0] = 131.0
    assert clock.observe({"a": "readiness"}) == [("a", "readiness", 61.0)]
