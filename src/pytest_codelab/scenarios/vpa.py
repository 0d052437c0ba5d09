"""The Vertical Pod Autoscaler as the autoscaling suite sees it: recommendations, Auto-mode
updates, and its overlap with an HPA.

Why a module: the recommendation's bounds, the pods the admission controller rewrote and
the VPA/HPA overlap are read the same way by the suite and by the unit tests; the suite keeps
the verdicts. The overlap is computed from the expectation (the guide's figures), never from
the live objects: the live ones only confirm that what the guide says is what runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from pytest_codelab.deploy.expected import Expectation, Figure
from pytest_codelab.deploy.quantity import parse_quantity

GROUP, VERSION, PLURAL = "autoscaling.k8s.io", "v1", "verticalpodautoscalers"
#: The pod annotation the admission controller writes on pods whose requests it set.
UPDATED_ANNOTATION = "vpaUpdates"
#: The event reason of the updater's evictions.
EVICTED_REASON = "EvictedByVPA"
#: Resources a VPA controls when its policy names none (upstream's default).
DEFAULT_RESOURCES = ("cpu", "memory")


@dataclass(frozen=True)
class Recommendation:
    """One container's recommendation: resource -> quantity, for each of its four figures."""

    container: str
    target: Mapping[str, str]
    lower: Mapping[str, str]
    upper: Mapping[str, str]

    def outside_bounds(self) -> list[str]:
        """Resources whose target is not within [lowerBound, upperBound], as sentences."""
        out = []
        for res, value in self.target.items():
            lo, hi = self.lower.get(res), self.upper.get(res)
            t = parse_quantity(value)
            if lo is None or hi is None:
                out.append(f"{res}: target {value} without lowerBound/upperBound")
            elif not parse_quantity(lo) <= t <= parse_quantity(hi):
                out.append(f"{res}: target {value} outside [{lo}, {hi}]")
        return out

    def within(self, requests: Mapping[str, str]) -> list[str]:
        """Resources of ``requests`` outside this recommendation's bounds, as sentences."""
        out = []
        for res in self.target:
            have = requests.get(res)
            lo, hi = self.lower.get(res), self.upper.get(res)
            if have is None or lo is None or hi is None:
                out.append(f"{res}: request {have} (bounds {lo}..{hi})")
            elif not parse_quantity(lo) <= parse_quantity(have) <= parse_quantity(hi):
                out.append(f"{res}: request {have} outside [{lo}, {hi}]")
        return out


def read(api: client.ApiClient, namespace: str, name: str) -> dict[str, Any] | None:
    """The VPA object; None when absent."""
    try:
        obj: Any = client.CustomObjectsApi(api).get_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, name
        )
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return dict(obj)


def recommendation(vpa: Mapping[str, Any] | None, container: str) -> Recommendation | None:
    """The recommendation for ``container`` once it has a target; None before."""
    recs = (((vpa or {}).get("status") or {}).get("recommendation") or {}).get(
        "containerRecommendations"
    ) or []
    for rec in recs:
        if rec.get("containerName") == container and rec.get("target"):
            return Recommendation(
                container,
                dict(rec["target"]),
                dict(rec.get("lowerBound") or {}),
                dict(rec.get("upperBound") or {}),
            )
    return None


def updated_pods(pods: list[client.V1Pod]) -> dict[str, dict[str, str]]:
    """Pod name -> the container requests of pods the admission controller rewrote."""
    out: dict[str, dict[str, str]] = {}
    for pod in pods:
        meta = pod.metadata or client.V1ObjectMeta()
        if UPDATED_ANNOTATION not in (meta.annotations or {}):
            continue
        containers = pod.spec.containers if pod.spec else []
        requests = (containers[0].resources.requests or {}) if containers[0].resources else {}
        out[str(meta.name)] = {k: str(v) for k, v in requests.items()}
    return out


def evictions(core: client.CoreV1Api, namespace: str) -> list[str]:
    """Names of the pods the updater evicted (its events), oldest first."""
    events = core.list_namespaced_event(namespace, field_selector=f"reason={EVICTED_REASON}")
    return [str(e.involved_object.name) for e in events.items if e.involved_object]


@dataclass(frozen=True)
class Overlap:
    """A VPA in Auto mode and an HPA acting on the same resource of one workload."""

    workload: str
    vpa: str
    hpa: str
    resources: tuple[str, ...]
    mode: Figure
    targets: Mapping[str, Figure]

    def finding(self) -> str:
        """What the gate concludes, with the guide's figures and why."""
        hpa_side = ", ".join(
            f"{r} averageUtilization {self.targets[r].value}% ({self.targets[r].key})"
            for r in self.resources
        )
        return (
            f"{self.workload}: VPA {self.vpa} updateMode {self.mode.value} ({self.mode.key}) and "
            f"HPA {self.hpa} on {hpa_side} act on the same resources. The HPA scales on usage "
            "divided by requests; the VPA rewrites those requests from usage, so each undoes "
            "the other: a load that raises usage makes the VPA raise requests, the "
            "utilization falls back under the target and the HPA scales in again (and every "
            "VPA update evicts a pod). Kubernetes' VPA documentation says not to combine "
            "them on CPU or memory: keep the VPA in Off or Initial mode (recommendations "
            "only), or scale the HPA on another metric."
        )


def overlaps(expected: Expectation) -> list[Overlap]:
    """Every expected VPA in Auto (or Recreate) mode whose target workload also has an
    expected HPA with a utilization target on a resource the VPA controls."""
    vpas: dict[str, dict[str, Figure]] = {}
    for fid, figure in expected.area("vpa").items():
        vpas.setdefault(fid.name, {})[fid.field] = figure
    out = []
    for name, figures in sorted(vpas.items()):
        mode, target = figures.get("updateMode"), figures.get("target")
        if mode is None or target is None or mode.value not in ("Auto", "Recreate"):
            continue
        kind, _, workload = str(target.value).partition("/")
        hpa = expected.hpa(workload, kind)
        if hpa is None:
            continue
        shared = tuple(r for r in DEFAULT_RESOURCES if r in hpa.targets)
        if shared:
            out.append(Overlap(f"{kind}/{workload}", name, hpa.name, shared, mode, hpa.targets))
    return out
