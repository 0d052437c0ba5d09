"""HPAs and their Deployments sampled over time, with the events that explain the curve.

A ``Timeline`` is a background thread that calls a sampler every ``interval`` seconds (by
default ``hpa_sampler``: every HorizontalPodAutoscaler of a namespace with its current and
desired replicas, bounds, CPU/memory utilization, and its Deployment's spec and Ready
replicas) and keeps every sample with its wall-clock time, so that a test can assert on the
whole history ("never above maxReplicas") and the report can chart it next to Locust's
requests/s. Markers ("load start") and the namespace's scaling events (HPA
``SuccessfulRescale``, Deployment ``ScalingReplicaSet``, HPA metric warnings) are kept too.
Bounded in time like every background activity of the gate.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from types import TracebackType
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from pytest_codelab.k8s.diagnostics import event_time
from pytest_codelab.k8s.waiting import Timeouts

MAX_SECONDS = 900.0
#: Event reasons kept, and the kind of mark each becomes on a chart.
EVENT_KINDS = {
    "SuccessfulRescale": "scale",
    "ScalingReplicaSet": "replicaset",
    "FailedGetResourceMetric": "warning",
    "FailedComputeMetricsReplicas": "warning",
    "FailedRescale": "warning",
}


@dataclass(frozen=True)
class HpaSample:
    """One look at an HPA and its target Deployment (None: not reported yet)."""

    t: float
    hpa: str
    target: str
    min: int
    max: int
    current: int
    desired: int
    cpu: int | None = None
    cpu_target: int | None = None
    memory: int | None = None
    memory_target: int | None = None
    spec_replicas: int | None = None
    ready: int | None = None


@dataclass(frozen=True)
class Event:
    """Something that happened at ``t``: a test's marker or a cluster event."""

    t: float
    kind: str
    label: str
    source: str = ""


Sampler = Callable[[], list[HpaSample]]
EventSource = Callable[[float], list[Event]]


@dataclass
class TimelineData:
    """What a Timeline recorded (plain data: goes into the JSON report)."""

    started: float
    ended: float | None
    interval: float
    samples: list[HpaSample] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def hpas(self) -> list[str]:
        return sorted({s.hpa for s in self.samples})

    def of(self, hpa: str) -> list[HpaSample]:
        return [s for s in self.samples if s.hpa == hpa]


class Timeline:
    """Sample in the background: ``with Timeline(hpa_sampler(api, ns)) as tl: ...``."""

    def __init__(
        self,
        sample: Sampler,
        *,
        events: EventSource | None = None,
        interval: float = 2.0,
        max_seconds: float = 600.0,
    ) -> None:
        if not 0 < max_seconds <= MAX_SECONDS:
            raise ValueError(f"max_seconds must be in (0, {MAX_SECONDS:g}], not {max_seconds}")
        if interval <= 0:
            raise ValueError(f"interval must be greater than 0, not {interval}")
        self._sample = sample
        self._events = events
        self.interval = interval
        self.max_seconds = max_seconds
        self._data = TimelineData(started=time.time(), ended=None, interval=interval)
        self._markers: list[Event] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Timeline:
        if self._thread is not None:
            raise RuntimeError("timeline already started")
        self._data.started = time.time()
        self._thread = threading.Thread(target=self._run, name="codelab-timeline", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> TimelineData:
        """Stop sampling, read the events of the sampled period, return the data."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        with self._lock:
            if self._data.ended is None:
                self._data.ended = time.time()
                self._data.events = self._collect_events()
        return self.data()

    def __enter__(self) -> Timeline:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def mark(self, label: str, kind: str = "marker") -> Event:
        """Record a named moment of the test ("load start")."""
        event = Event(time.time(), kind, label, "test")
        with self._lock:
            self._markers.append(event)
        return event

    def sample_now(self) -> list[HpaSample]:
        """Take one sample at once (also recorded) and return it."""
        samples = self._take()
        return samples

    def samples(self, hpa: str | None = None) -> list[HpaSample]:
        with self._lock:
            return [s for s in self._data.samples if hpa is None or s.hpa == hpa]

    def latest(self, hpa: str) -> HpaSample | None:
        found = self.samples(hpa)
        return found[-1] if found else None

    def data(self) -> TimelineData:
        """A copy of what was recorded so far (events only after ``stop``)."""
        with self._lock:
            events = self._data.events if self._data.ended is not None else []
            return TimelineData(
                started=self._data.started,
                ended=self._data.ended,
                interval=self.interval,
                samples=list(self._data.samples),
                events=sorted(self._markers + events, key=lambda e: e.t),
                errors=list(self._data.errors),
            )

    def _collect_events(self) -> list[Event]:
        if self._events is None:
            return []
        try:
            return self._events(self._data.started - 5)
        except Exception as exc:  # events explain the chart; their absence must not fail
            self._data.errors.append(f"events: {type(exc).__name__}: {exc}"[:300])
            return []

    def _take(self) -> list[HpaSample]:
        try:
            samples = self._sample()
        except Exception as exc:  # a flaky API call is one missing point, not a crash
            with self._lock:
                self._data.errors.append(f"{time.strftime('%H:%M:%S')}: {exc}"[:300])
                del self._data.errors[:-20]
            return []
        with self._lock:
            self._data.samples.extend(samples)
        return samples

    def _run(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        while not self._stop.is_set() and time.monotonic() < deadline:
            self._take()
            self._stop.wait(self.interval)


# ----------------------------------------------------------------- Kubernetes sources


def _utilization(
    hpa: client.V2HorizontalPodAutoscaler, resource: str
) -> tuple[int | None, int | None]:
    """(current, target) average utilization of a resource metric, in % of requests."""
    target = None
    for spec in hpa.spec.metrics or []:
        if spec.type == "Resource" and spec.resource and spec.resource.name == resource:
            target = spec.resource.target.average_utilization
    current = None
    for status in (hpa.status.current_metrics if hpa.status else None) or []:
        if status.type == "Resource" and status.resource and status.resource.name == resource:
            current = status.resource.current.average_utilization
    return current, target


def _name(obj: Any) -> str:
    meta = getattr(obj, "metadata", None)
    return str(getattr(meta, "name", "") or "")


def hpa_sample(
    hpa: client.V2HorizontalPodAutoscaler,
    deployments: dict[str, client.V1Deployment],
    now: float,
) -> HpaSample:
    """One HpaSample from an autoscaling/v2 HPA and the Deployments of its namespace."""
    target = hpa.spec.scale_target_ref.name
    status = hpa.status or client.V2HorizontalPodAutoscalerStatus(desired_replicas=0)
    cpu, cpu_target = _utilization(hpa, "cpu")
    memory, memory_target = _utilization(hpa, "memory")
    deployment = deployments.get(target) if hpa.spec.scale_target_ref.kind == "Deployment" else None
    return HpaSample(
        t=now,
        hpa=_name(hpa),
        target=target,
        min=hpa.spec.min_replicas or 1,
        max=hpa.spec.max_replicas,
        current=status.current_replicas or 0,
        desired=status.desired_replicas or 0,
        cpu=cpu,
        cpu_target=cpu_target,
        memory=memory,
        memory_target=memory_target,
        spec_replicas=deployment.spec.replicas if deployment and deployment.spec else None,
        ready=(deployment.status.ready_replicas or 0) if deployment and deployment.status else None,
    )


def hpa_sampler(
    api: client.ApiClient,
    namespace: str,
    names: Iterable[str] | None = None,
    *,
    request_timeout: float = Timeouts.api,
) -> Sampler:
    """A sampler of the namespace's HPAs (or only ``names``) and their Deployments."""
    wanted = set(names) if names is not None else None
    autoscaling = client.AutoscalingV2Api(api)
    apps = client.AppsV1Api(api)

    def sample() -> list[HpaSample]:
        hpas = autoscaling.list_namespaced_horizontal_pod_autoscaler(
            namespace, _request_timeout=request_timeout
        ).items
        deployments = {
            _name(d): d
            for d in apps.list_namespaced_deployment(
                namespace, _request_timeout=request_timeout
            ).items
        }
        now = time.time()
        return [
            hpa_sample(h, deployments, now) for h in hpas if wanted is None or _name(h) in wanted
        ]

    return sample


def event_source(
    core: client.CoreV1Api, namespace: str, *, request_timeout: float = Timeouts.api
) -> EventSource:
    """Scaling events of a namespace since a time (HPA rescales, ReplicaSet scaling, HPA
    metric warnings), oldest first."""

    def read(since: float) -> list[Event]:
        found: list[Event] = []
        with contextlib.suppress(ApiException):
            listing = core.list_namespaced_event(namespace, _request_timeout=request_timeout)
            for item in listing.items:
                kind = EVENT_KINDS.get(item.reason or "")
                when = event_time(item)
                if kind is None or when < since:
                    continue
                obj = item.involved_object
                found.append(
                    Event(
                        when,
                        kind,
                        (item.message or item.reason or "")[:200],
                        f"{(obj.kind or '').lower()}/{obj.name}",
                    )
                )
        return sorted(found, key=lambda e: e.t)

    return read


def first_time(samples: Iterable[HpaSample], test: Callable[[HpaSample], bool]) -> float | None:
    """Wall time of the first sample passing ``test``."""
    return next((s.t for s in samples if test(s)), None)


def describe(samples: list[HpaSample], limit: int = 12) -> str:
    """A compact history of one HPA for assertion messages: one entry per change of its
    replicas or CPU (``+12s current 3 desired 6 ready 3 cpu 400%/70%; ...``)."""
    if not samples:
        return "no samples"
    t0 = samples[0].t
    changes: list[str] = []
    last: tuple[Any, ...] | None = None
    for s in samples:
        key = (s.current, s.desired, s.ready, s.cpu)
        if key == last:
            continue
        last = key
        cpu = f" cpu {s.cpu}%/{s.cpu_target}%" if s.cpu_target is not None else ""
        changes.append(
            f"+{s.t - t0:.0f}s current {s.current} desired {s.desired} ready {s.ready}{cpu}"
        )
    if len(changes) > limit:
        changes = changes[: limit // 2] + ["..."] + changes[-limit // 2 :]
    return "; ".join(changes)
