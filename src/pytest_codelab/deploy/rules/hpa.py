"""HorizontalPodAutoscaler rules: sane bounds and targets (seed best practice 4), and targets
that exist and request what their Utilization metrics divide by."""

from __future__ import annotations

from collections.abc import Sequence

from pytest_codelab.deploy.manifests import object_id
from pytest_codelab.deploy.rules.base import Obj, Violation, find, main_containers, violation


def check_hpa(obj: Obj) -> list[Violation]:
    """HPA bounds sane (1 <= min <= max) and every metric with a target."""
    out: list[Violation] = []
    spec = obj.get("spec") or {}
    lo, hi = spec.get("minReplicas"), spec.get("maxReplicas")
    if lo is None:
        out.append(
            violation("hpa", obj, "no minReplicas", "set minReplicas (the service's HA floor)")
        )
    if isinstance(lo, int) and lo < 1:
        out.append(violation("hpa", obj, f"minReplicas {lo} < 1", "set minReplicas >= 1"))
    if not isinstance(hi, int):
        out.append(violation("hpa", obj, "no maxReplicas", "set maxReplicas"))
    elif isinstance(lo, int) and lo > hi:
        out.append(
            violation(
                "hpa",
                obj,
                f"minReplicas {lo} > maxReplicas {hi}",
                "make minReplicas <= maxReplicas",
            )
        )
    metrics = spec.get("metrics") or []
    if not metrics:
        out.append(
            violation(
                "hpa",
                obj,
                "no metrics",
                "add a Resource metric (cpu, target averageUtilization e.g. 70)",
            )
        )
    for i, m in enumerate(metrics):
        body = m.get(_METRIC_FIELD.get(m.get("type", ""), ""), {}) or {}
        target = body.get("target") or {}
        if not any(
            target.get(k) is not None for k in ("averageUtilization", "averageValue", "value")
        ):
            out.append(
                violation(
                    "hpa",
                    obj,
                    f"metrics[{i}] has no target",
                    "set target.averageUtilization (Utilization) or averageValue/value",
                )
            )
    return out


_METRIC_FIELD = {
    "Resource": "resource",
    "ContainerResource": "containerResource",
    "Pods": "pods",
    "Object": "object",
    "External": "external",
}


def check_hpa_targets(objects: Sequence[Obj]) -> list[Violation]:
    """Each HPA's target exists and requests what its Utilization metrics divide by."""
    out: list[Violation] = []
    for hpa in (o for o in objects if o.get("kind") == "HorizontalPodAutoscaler"):
        ref = (hpa.get("spec") or {}).get("scaleTargetRef") or {}
        target = find(objects, ref.get("kind", ""), ref.get("name", ""))
        if target is None:
            out.append(
                violation(
                    "hpa",
                    hpa,
                    f"scaleTargetRef {ref.get('kind')}/{ref.get('name')} is not in the manifests",
                    "point scaleTargetRef at an existing Deployment or StatefulSet",
                )
            )
            continue
        for m in (hpa.get("spec") or {}).get("metrics") or []:
            if m.get("type") != "Resource":
                continue
            res = m.get("resource") or {}
            if (res.get("target") or {}).get("type") != "Utilization":
                continue
            name = res.get("name")
            lacking = [
                c.get("name", "?")
                for c in main_containers(target)
                if ((c.get("resources") or {}).get("requests") or {}).get(name) in (None, "")
            ]
            if lacking:
                out.append(
                    violation(
                        "hpa",
                        hpa,
                        f"{name} Utilization target, but {object_id(target)} containers "
                        f"{lacking} request no {name}",
                        f"set resources.requests.{name} on every container of the target",
                    )
                )
    return out
