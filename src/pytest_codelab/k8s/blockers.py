"""Why a workload cannot become Ready, seen early enough to fail fast with the reason.

Waiting out the whole deploy deadline (ten minutes) for a stack that will never be Ready
costs the operator ten minutes before the run says anything. A pod is *blocked* when what
it waits for will not come by itself: a container in a crash loop, or that cannot get its
image or its configuration; a pod the scheduler cannot place; a started container whose
readiness probe keeps failing. A blocker that persists for the ``stuck`` window (one
minute, scaled with every other deadline) fails the stack, naming the workload, the pod
and its last result; a transient one (a dependency still starting, a slow start) clears
before that and is forgotten.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from kubernetes import client

#: Container waiting reasons that do not clear without a change to the deployment.
HOPELESS_WAITING = frozenset(
    {
        "CrashLoopBackOff",
        "ErrImagePull",
        "ImagePullBackOff",
        "InvalidImageName",
        "ErrImageNeverPull",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
    }
)
READINESS_FAILED = "Readiness probe failed:"


def readiness_failures(events: Iterable[client.CoreV1Event]) -> dict[str, str]:
    """The last "Readiness probe failed" message per pod name, from the namespace's events
    (oldest first, so later ones win)."""
    found: dict[str, str] = {}
    for event in events:
        message = (event.message or "").strip()
        if event.reason == "Unhealthy" and message.startswith(READINESS_FAILED):
            found[event.involved_object.name or ""] = message
    return found


def _unschedulable(status: client.V1PodStatus) -> str | None:
    for cond in status.conditions or []:
        if (
            cond.type == "PodScheduled"
            and cond.status == "False"
            and cond.reason == "Unschedulable"
        ):
            return f"unschedulable: {(cond.message or '').strip()}"
    return None


def _hopeless(cs: client.V1ContainerStatus) -> str | None:
    waiting = cs.state.waiting if cs.state else None
    if waiting is None or waiting.reason not in HOPELESS_WAITING:
        return None
    last = cs.last_state.terminated if cs.last_state else None
    exit_note = f"; last exit {last.exit_code} ({last.reason})" if last is not None else ""
    message = f" {waiting.message.strip()[:200]}" if waiting.message else ""
    return f"container {cs.name}: {waiting.reason}{message}{exit_note}"


#: Restarts after which a failing, unready container is a crash loop even in the moments
#: it runs between two back-offs (kubelet shows CrashLoopBackOff only while it waits).
CRASH_RESTARTS = 2


def _crashing(cs: client.V1ContainerStatus) -> str | None:
    last = cs.last_state.terminated if cs.last_state else None
    if cs.ready or last is None or not last.exit_code or cs.restart_count < CRASH_RESTARTS:
        return None
    return (
        f"container {cs.name}: CrashLoopBackOff (restarted {cs.restart_count}x); "
        f"last exit {last.exit_code} ({last.reason})"
    )


def pod_blocker(pod: client.V1Pod, readiness: Mapping[str, str]) -> str | None:
    """What keeps ``pod`` from ever becoming Ready on its own, or None.

    ``readiness`` maps pod names to their last failed readiness probe (see
    :func:`readiness_failures`); a started, running, unready container counts as blocked
    only when its probe has actually reported a failure.
    """
    status = pod.status or client.V1PodStatus()
    name = (pod.metadata or client.V1ObjectMeta()).name or ""
    reason = _unschedulable(status)
    if reason:
        return reason
    for cs in (status.init_container_statuses or []) + (status.container_statuses or []):
        reason = _hopeless(cs) or _crashing(cs)
        if reason:
            return reason
    for cs in status.container_statuses or []:
        running = cs.state is not None and cs.state.running is not None
        if running and cs.started and not cs.ready and name in readiness:
            return f"container {cs.name}: {readiness[name]}"
    return None


@dataclass
class BlockerClock:
    """Remembers since when each pod has been blocked, continuously.

    ``observe`` takes the blockers of one look (pod name -> reason) and returns every one
    with how long it has lasted, as ``(pod, reason, seconds)``; ``expired`` tells whether
    one of them has lasted the ``window``. A pod that is no longer blocked starts from zero
    when it is blocked again.
    """

    window: float
    now: Callable[[], float] = time.monotonic
    since: dict[str, float] = field(default_factory=dict)

    def observe(self, blocked: Mapping[str, str]) -> list[tuple[str, str, float]]:
        moment = self.now()
        self.since = {pod: self.since.get(pod, moment) for pod in blocked}
        return [(pod, reason, moment - self.since[pod]) for pod, reason in sorted(blocked.items())]

    def expired(self, seen: Iterable[tuple[str, str, float]]) -> bool:
        return any(seconds >= self.window for _, _, seconds in seen)
