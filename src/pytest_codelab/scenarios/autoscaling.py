"""Autoscaling under load: one bounded Locust load while a ``Timeline`` samples every HPA.

``ScaleOut`` is the record of the run (the HPAs before it, the timeline, Locust's result, the
notes): ``settle`` waits until the HPAs sit at minReplicas with CPU metrics, ``drive`` keeps
the load on until every HPA under test scaled out and its new pods served traffic for a while
(or the scale-out deadline passed), and ``save`` writes the record the report charts. The
replica bounds they wait for are the expected ones (:class:`Bounds`: the guide's, fitted like
the deployed stack), never the live HPA's: an HPA whose bounds drifted must not move the
goalposts of its own check. After
the load, ``shortened_scale_down`` shortens the HPAs' scale-down stabilization window (only
where the gate may: a namespace it created) and ``wait_back_at_min`` says when each came back.
The suite judges what these recorded.
"""

from __future__ import annotations

import contextlib
import time
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from pytest_codelab.clients.load import workers
from pytest_codelab.clients.load.locust import LocustRun
from pytest_codelab.clients.load.results import LoadResult
from pytest_codelab.clients.load.spec import SECRET_ENV, LoadSpec
from pytest_codelab.clients.timeline import HpaSample, Timeline, TimelineData, describe
from pytest_codelab.deploy.credentials import OAUTH_SECRET, OAUTH_SECRET_KEY
from pytest_codelab.deploy.manifests import source_of
from pytest_codelab.k8s.objects import name_of
from pytest_codelab.k8s.pods import app_pods, is_ready
from pytest_codelab.k8s.waiting import try_until, wait_until
from pytest_codelab.report import records
from pytest_codelab.settings import Settings

#: Seconds of traffic new pods get after they are Ready, before the load may stop early.
TRAFFIC_AFTER_READY = 15.0


def unscalable(objects: list[dict[str, Any]], where: str) -> list[str]:
    """HPAs whose maxReplicas is not above minReplicas, each named with its source."""
    found = []
    for obj in objects:
        if obj.get("kind") != "HorizontalPodAutoscaler":
            continue
        spec = obj.get("spec") or {}
        lo, hi = spec.get("minReplicas", 1), spec.get("maxReplicas")
        if hi is not None and hi <= lo:
            target = (spec.get("scaleTargetRef") or {}).get("name", "?")
            found.append(
                f"HPA {obj['metadata']['name']} ({source_of(obj) or 'no source'}, {where}) "
                f"cannot scale {target}: minReplicas {lo}, maxReplicas {hi}"
            )
    return found


def pod_metrics_reason(
    api: client.ApiClient, namespace: str, pods: set[str], *, request_timeout: float
) -> str | None:
    """None when metrics.k8s.io serves usage for all ``pods``, else why not (one line)."""
    try:
        listing: Any = client.CustomObjectsApi(api).list_namespaced_custom_object(
            "metrics.k8s.io", "v1beta1", namespace, "pods", _request_timeout=request_timeout
        )
    except ApiException as exc:
        if exc.status in (404, 503):
            return (
                f"metrics.k8s.io is not served (HTTP {exc.status}): install metrics-server, "
                "HPAs cannot read CPU without it"
            )
        return f"metrics.k8s.io pods in {namespace}: HTTP {exc.status}"
    have = {item["metadata"]["name"] for item in listing.get("items", []) if item.get("containers")}
    missing = sorted(pods - have)
    if missing:
        return f"metrics.k8s.io has no usage yet for {len(missing)} pod(s): {', '.join(missing)}"
    return None


@dataclass(frozen=True)
class Bounds:
    """The replica bounds and CPU utilization target (percent; None: none stated) an HPA must
    have, from the expectation (``source`` names the keys and the fit, for messages)."""

    min: int
    max: int
    source: str
    cpu_target: int | None = None


@dataclass
class ScaleOut:
    """The module's load run and what the cluster did during it.

    ``scaled`` maps each HPA under test to the ``app`` label of its pods; ``bounds`` holds
    each one's expected bounds; ``before`` holds the pods of each app before the load.
    """

    namespace: str
    scaled: Mapping[str, str]
    bounds: Mapping[str, Bounds]
    hpas: dict[str, client.V2HorizontalPodAutoscaler]
    before: dict[str, set[str]]
    timeline: Timeline
    record: Path
    load_started: float = 0.0
    load_stopped: float = 0.0
    result: LoadResult | None = None
    notes: list[str] = field(default_factory=list)

    def samples(self, hpa: str) -> list[HpaSample]:
        return self.timeline.samples(hpa)

    def history(self, hpa: str) -> str:
        during = [s for s in self.samples(hpa) if s.t >= self.load_started - 10]
        return describe(during)

    def describe_load(self) -> str:
        return self.result.describe() if self.result else "no load result"

    def save(self, data: TimelineData | None = None, title: str = "") -> Path:
        """(Re)write the report record: Locust's result and the timeline so far."""
        return records.write_load_record(
            self.record,
            title=title or f"autoscaling under load ({self.namespace})",
            load=self.result,
            timeline=data or self.timeline.data(),
            t0=self.load_started,
            notes=self.notes,
        )


def settle(run: ScaleOut, deadline: float) -> None:
    """Wait until every HPA under test reports CPU and sits at its expected minReplicas (an
    idle stack that scaled out on its own would make the scale-out unprovable); WaitTimeout if
    not in time."""

    def steady() -> tuple[bool, str]:
        latest = {name: run.timeline.latest(name) for name in run.scaled}
        waiting = [
            f"{name}: "
            + (
                "no sample yet"
                if s is None
                else f"{s.current} replicas (expected min {run.bounds[name].min}, live min "
                f"{s.min}), cpu {s.cpu}%/{s.cpu_target}%"
            )
            for name, s in latest.items()
            if s is None or s.cpu is None or s.current > run.bounds[name].min
        ]
        return not waiting, "; ".join(waiting)

    wait_until(
        steady,
        timeout=deadline,
        what="HPAs steady at their expected minReplicas with CPU metrics before any load",
        interval=2,
    )


def drive(run: ScaleOut, locust: LocustRun, core: client.CoreV1Api, deadline: float) -> None:
    """Keep the load on until every HPA scaled out and its new pods had traffic for a while,
    the scale-out deadline passed without it, or Locust ended."""
    ready_since: dict[str, float] = {}
    while locust.running:
        now = time.time()
        for hpa, app in run.scaled.items():
            if hpa in ready_since:
                continue
            latest = run.timeline.latest(hpa)
            if latest is None or latest.current <= run.bounds[hpa].min:
                continue
            new = [
                p
                for n, p in app_pods(core, run.namespace, app).items()
                if n not in run.before[app] and is_ready(p)
            ]
            if new:
                ready_since[hpa] = now
        done = len(ready_since) == len(run.scaled) and all(
            now - t >= TRAFFIC_AFTER_READY for t in ready_since.values()
        )
        late = now - run.load_started > deadline and len(ready_since) < len(run.scaled)
        if done or late:
            if late:
                run.notes.append(
                    f"load stopped: no scale-out of {set(run.scaled) - set(ready_since)}"
                    f" {deadline:.0f}s after load start"
                )
            return
        locust.wait(timeout=2)


def list_hpas(api: client.ApiClient, namespace: str) -> dict[str, client.V2HorizontalPodAutoscaler]:
    """The namespace's HPAs by name."""
    autoscaling = client.AutoscalingV2Api(api)
    return {
        name_of(h): h
        for h in autoscaling.list_namespaced_horizontal_pod_autoscaler(namespace).items
    }


def master_host(settings: Settings, spec: LoadSpec) -> str:
    """Where worker pods reach the master: configured, else this host's address on the route
    to the ingress (the address the cluster's nodes see this host at)."""
    address = urllib.parse.urlsplit(spec.host).hostname or ""
    return str(settings.load_master_host or workers.local_address_towards(address))


def distributed(
    spec: LoadSpec,
    out_dir: Path,
    core: client.CoreV1Api,
    namespace: str,
    image: str,
    settings: Settings,
) -> contextlib.AbstractContextManager[tuple[LocustRun, workers.WorkerPods]]:
    """Locust master here, worker pods in the namespace; the OAuth secret reaches the pods
    by secretKeyRef, never in their spec's plain env."""
    return workers.distributed(
        spec,
        out_dir,
        core,
        namespace,
        image=image,
        master_host=master_host(settings, spec),
        secret_env={SECRET_ENV: (OAUTH_SECRET, OAUTH_SECRET_KEY)},
        pod_env={k: v for k, v in spec.env.items() if k != SECRET_ENV},
    )


@dataclass(frozen=True)
class ScaleDown:
    """When each HPA came back to minReplicas after the load (None: not within deadline)."""

    back_at: dict[str, float | None]
    deadline: float


@contextlib.contextmanager
def shortened_scale_down(
    api: client.ApiClient, run: ScaleOut, window: int
) -> Iterator[dict[str, Any]]:
    """Set the scale-down stabilization window of every HPA under test to ``window`` seconds,
    and put each HPA's behavior back afterwards; yields the original behaviors by name."""
    autoscaling = client.AutoscalingV2Api(api)
    original = {
        name: api.sanitize_for_serialization(hpa.spec.behavior if hpa.spec else None)
        for name, hpa in run.hpas.items()
        if name in run.scaled
    }
    shorter = {"spec": {"behavior": {"scaleDown": {"stabilizationWindowSeconds": window}}}}
    try:
        for name in original:
            autoscaling.patch_namespaced_horizontal_pod_autoscaler(name, run.namespace, shorter)
        run.timeline.mark(f"scale-down window set to {window}s")
        yield original
    finally:
        for name, behavior in original.items():
            with contextlib.suppress(ApiException):
                autoscaling.patch_namespaced_horizontal_pod_autoscaler(
                    name, run.namespace, {"spec": {"behavior": behavior}}
                )


def wait_back_at_min(run: ScaleOut, names: list[str], deadline: float) -> ScaleDown:
    """When each HPA was first sampled back at its expected minReplicas after now (None: not
    within ``deadline``). Not in time is each test's verdict, not an error here."""
    started = time.time()
    back: dict[str, float | None] = dict.fromkeys(names)

    def all_back() -> tuple[bool, str]:
        for name in back:
            latest = run.timeline.latest(name)
            if back[name] is None and latest and latest.t > started:
                back[name] = latest.t if latest.current <= run.bounds[name].min else None
        above = [name for name, t in back.items() if t is None]
        return not above, f"not yet at minReplicas: {', '.join(above)}"

    try_until(all_back, timeout=deadline, interval=2)
    return ScaleDown(back, deadline)
