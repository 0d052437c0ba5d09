"""Waiting for the cluster, with deadlines that say what they waited for.

Every wait has a deadline from the ``Timeouts`` table (one base value per kind of
operation, scaled by ``--codelab-timeout-scale``, as Chainsaw does; ``Timeouts.scale`` for a
caller's own figure) and fails with
``WaitTimeout('timed out after 120s waiting for <what>; last seen: <observation>')`` so a
red test tells what the cluster looked like, not just that time ran out.

``wait_until`` polls until a condition holds (``try_until`` the same without raising),
``hold_for`` checks that one keeps holding for a window; ``rollout_status`` and
``statefulset_ready`` watch, judging each object the way ``kubectl rollout status`` does.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any, TypeVar

from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from pytest_codelab.errors import RolloutFailed, WaitTimeout

Probe = Callable[[], tuple[bool, str]]
T = TypeVar("T")


@dataclass(frozen=True)
class Timeouts:
    """Deadline in seconds per kind of operation, already multiplied by ``factor``.

    ``Timeouts()`` holds the base values; ``scaled(f)`` multiplies them all and remembers the
    factor, so that a caller with a deadline of its own (a suite's figure, not a kind of
    operation) scales it the same way with ``scale(seconds)``. The ``codelab_timeouts`` fixture
    builds the run's Timeouts once, from --codelab-timeout-scale.
    """

    #: One API request.
    api: float = 10.0
    namespace: float = 60.0
    delete: float = 120.0
    deploy: float = 600.0
    #: A pod of the stack blocked (crash loop, image, configuration, unschedulable, failing
    #: readiness) before the deploy gives up on it instead of waiting out ``deploy``.
    stuck: float = 60.0
    rollout: float = 300.0
    pod_start: float = 120.0
    exec: float = 30.0
    port_forward: float = 15.0
    probe: float = 120.0
    #: An HTTP endpoint of the stack to start answering (through the ingress).
    http: float = 30.0
    #: One HTTP request through the ingress.
    request: float = 10.0
    #: A request that waits for the LLM proxy's completion (a CodeLab session).
    completion: float = 60.0
    #: metrics.k8s.io to serve usage of new pods (metrics-server scrapes once a minute).
    metrics: float = 60.0
    #: HPAs to sit at minReplicas with CPU metrics, before a load.
    settle: float = 120.0
    #: An HPA's first scale-out after load start.
    scale_out: float = 75.0
    #: An HPA's return to minReplicas after the load (stabilization window shortened).
    scale_down: float = 150.0
    #: The factor the deadlines above carry (1.0: the base values).
    factor: float = 1.0

    def scaled(self, factor: float) -> Timeouts:
        """Every deadline multiplied by ``factor`` (greater than 0)."""
        if factor <= 0:
            raise ValueError(f"timeout scale must be greater than 0, not {factor}")
        return Timeouts(
            **{f.name: getattr(self, f.name) * factor for f in fields(self)},
        )

    def scale(self, seconds: float) -> float:
        """A deadline of the caller's own, scaled like the fields."""
        return seconds * self.factor


def format_seconds(seconds: float) -> str:
    return f"{seconds:g}s"


def wait_until(probe: Probe, *, timeout: float, what: str, interval: float = 1.0) -> str:
    """Call ``probe`` until it returns ``(True, observation)``; return that observation.

    The probe returns what it saw in words, so that the timeout can repeat the last
    observation instead of a bare "condition not met".
    """
    met, last = try_until(probe, timeout=timeout, interval=interval)
    if not met:
        raise WaitTimeout(
            f"timed out after {format_seconds(timeout)} waiting for {what}; last seen: {last}"
        )
    return last


def try_until(probe: Probe, *, timeout: float, interval: float = 1.0) -> tuple[bool, str]:
    """``wait_until`` for callers whose verdict comes later: ``(met, last observation)``
    instead of an exception when the time is up."""
    deadline = time.monotonic() + timeout
    last = "nothing observed"
    while True:
        ok, observation = probe()
        if ok:
            return True, observation
        last = observation or last
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False, last
        time.sleep(min(interval, remaining))


def hold_for(check: Callable[[], str | None], *, window: float, interval: float) -> int:
    """Call ``check`` every ``interval`` until ``window`` has passed; return how many times.

    The dual of ``wait_until``: a condition that must keep holding (probes passing, no
    restarts). ``check`` returns ``None`` while it holds, else what broke it, which is raised
    at once as an ``AssertionError``: a broken window is a verdict, not something to wait out.
    """
    deadline = time.monotonic() + window
    checks = 0
    while True:
        broken = check()
        checks += 1
        if broken is not None:
            raise AssertionError(broken)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return checks
        time.sleep(min(interval, remaining))


@dataclass(frozen=True)
class WorkloadStatus:
    """One look at a workload: ready, still progressing (message says how), or failed."""

    ready: bool
    message: str
    failed: bool = False


def deployment_status(deployment: client.V1Deployment) -> WorkloadStatus:
    """kubectl rollout status for a Deployment (DeploymentStatusViewer)."""
    meta = deployment.metadata or client.V1ObjectMeta()
    spec = deployment.spec
    status = deployment.status or client.V1DeploymentStatus()
    name = f"deployment/{meta.name}"
    if (meta.generation or 0) > (status.observed_generation or 0):
        return WorkloadStatus(False, f"{name}: waiting for spec update to be observed")
    for cond in status.conditions or []:
        if cond.type == "Progressing" and cond.reason == "ProgressDeadlineExceeded":
            return WorkloadStatus(
                False, f"{name}: exceeded its progress deadline ({cond.message})", failed=True
            )
    wanted = spec.replicas if spec and spec.replicas is not None else 1
    updated = status.updated_replicas or 0
    if updated < wanted:
        return WorkloadStatus(False, f"{name}: {updated} of {wanted} new replicas updated")
    if (status.replicas or 0) > updated:
        old = (status.replicas or 0) - updated
        return WorkloadStatus(False, f"{name}: {old} old replicas pending termination")
    available = status.available_replicas or 0
    if available < updated:
        return WorkloadStatus(False, f"{name}: {available} of {updated} updated replicas available")
    return WorkloadStatus(True, f"{name}: successfully rolled out")


def statefulset_status(sts: client.V1StatefulSet) -> WorkloadStatus:
    """kubectl rollout status for a StatefulSet (StatefulSetStatusViewer)."""
    meta = sts.metadata or client.V1ObjectMeta()
    spec = sts.spec
    status = sts.status or client.V1StatefulSetStatus(replicas=0)
    name = f"statefulset/{meta.name}"
    observed = status.observed_generation or 0
    if observed == 0 or (meta.generation or 0) > observed:
        return WorkloadStatus(False, f"{name}: waiting for spec update to be observed")
    wanted = spec.replicas if spec and spec.replicas is not None else 1
    ready = status.ready_replicas or 0
    if ready < wanted:
        return WorkloadStatus(False, f"{name}: {ready} of {wanted} pods ready")
    strategy = spec.update_strategy if spec else None
    if strategy and strategy.type == "OnDelete":
        return WorkloadStatus(True, f"{name}: {ready} pods ready (OnDelete strategy)")
    rolling = strategy.rolling_update if strategy else None
    if rolling is not None:
        partition = rolling.partition or 0
        updated = status.updated_replicas or 0
        if updated < wanted - partition:
            return WorkloadStatus(False, f"{name}: {updated} of {wanted - partition} pods updated")
        return WorkloadStatus(True, f"{name}: roll out complete, {updated} pods updated")
    if status.update_revision != status.current_revision:
        return WorkloadStatus(
            False, f"{name}: rolling update to revision {status.update_revision} in progress"
        )
    return WorkloadStatus(True, f"{name}: rolling update complete at {status.current_revision}")


def watch_until(
    list_fn: Callable[..., Any],
    namespace: str,
    name: str,
    evaluate: Callable[[Any], WorkloadStatus],
    *,
    timeout: float,
    what: str,
) -> WorkloadStatus:
    """List then watch one named object until ``evaluate`` says ready or failed.

    Lists first (so the current state counts, as kubectl's UntilWithSync does), then
    watches from that resourceVersion; a 410 Gone or an ended watch relists.
    """
    deadline = time.monotonic() + timeout
    selector = f"metadata.name={name}"
    last = "not found"
    while (remaining := deadline - time.monotonic()) > 0:
        listing = list_fn(namespace, field_selector=selector, _request_timeout=remaining)
        for obj in listing.items:
            status = evaluate(obj)
            last = status.message
            if status.ready or status.failed:
                return status
        stream = watch.Watch()
        try:
            for event in stream.stream(
                list_fn,
                namespace,
                field_selector=selector,
                resource_version=listing.metadata.resource_version,
                timeout_seconds=max(1, int(remaining)),
            ):
                if event["type"] == "DELETED":
                    last = "deleted"
                    continue
                status = evaluate(event["object"])
                last = status.message
                if status.ready or status.failed:
                    return status
        except ApiException as exc:
            if exc.status != 410:
                raise
        finally:
            stream.stop()
    raise WaitTimeout(
        f"timed out after {format_seconds(timeout)} waiting for {what}; last seen: {last}"
    )


def rollout_status(apps: client.AppsV1Api, namespace: str, name: str, timeout: float) -> str:
    """Wait for a Deployment's rollout like ``kubectl rollout status``; RolloutFailed if
    its progress deadline is exceeded."""
    status = watch_until(
        apps.list_namespaced_deployment,
        namespace,
        name,
        deployment_status,
        timeout=timeout,
        what=f"deployment/{name} rollout in {namespace}",
    )
    if status.failed:
        raise RolloutFailed(status.message)
    return status.message


def statefulset_ready(apps: client.AppsV1Api, namespace: str, name: str, timeout: float) -> str:
    """Wait until a StatefulSet has all replicas Ready at its update revision."""
    status = watch_until(
        apps.list_namespaced_stateful_set,
        namespace,
        name,
        statefulset_status,
        timeout=timeout,
        what=f"statefulset/{name} ready in {namespace}",
    )
    return status.message


@dataclass(frozen=True)
class Waiter:
    """Wait helpers bound to the run's scaled Timeouts (the ``waiter`` fixture)."""

    timeouts: Timeouts

    def until(
        self, probe: Probe, what: str, *, kind: str = "api", timeout: float | None = None
    ) -> str:
        """``wait_until`` with the deadline of ``kind`` (a Timeouts field) unless given."""
        deadline = timeout if timeout is not None else getattr(self.timeouts, kind)
        return wait_until(probe, timeout=deadline, what=what)

    def rollout(self, apps: client.AppsV1Api, namespace: str, name: str) -> str:
        return rollout_status(apps, namespace, name, self.timeouts.rollout)

    def statefulset(self, apps: client.AppsV1Api, namespace: str, name: str) -> str:
        return statefulset_ready(apps, namespace, name, self.timeouts.rollout)
