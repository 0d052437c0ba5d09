"""Rules for the guide's best practices that need the whole set of objects: namespaces
(practice 1), autoscaling of the critical services (4), rolling updates that keep serving
capacity (9)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from pytest_codelab.deploy.manifests import CLUSTER_SCOPED_KINDS
from pytest_codelab.deploy.rules.base import Obj, Violation, main_containers, violation

#: Namespaces that are not an application's own (best practice 1: "use namespaces for
#: isolation"); an object pinned to one of these shares it with everything else.
SHARED_NAMESPACES = frozenset({"default", "kube-system", "kube-public", "kube-node-lease"})

#: The services the guide autoscales (values-prod.yaml: ``autoscaling.enabled`` on gateway,
#: agentRuntime, authService; "Масштабирование" for agent-runtime): best practice 4.
CRITICAL_SERVICES = ("gateway", "agent-runtime", "auth-service")

#: Kubernetes' default ``rollingUpdate`` of a Deployment.
DEFAULT_MAX_UNAVAILABLE = "25%"
DEFAULT_MAX_SURGE = "25%"


def check_namespaces(objects: Sequence[Obj]) -> list[Violation]:
    """No namespaced object pinned to a shared namespace such as ``default``."""
    out: list[Violation] = []
    for obj in objects:
        if obj.get("kind") in CLUSTER_SCOPED_KINDS:
            continue
        namespace = (obj.get("metadata") or {}).get("namespace")
        if namespace in SHARED_NAMESPACES:
            out.append(
                violation(
                    "namespaces",
                    obj,
                    f"metadata.namespace is {namespace!r}, a namespace shared with the rest of "
                    "the cluster; expected the application's own namespace (the guide: codelab)",
                    "remove metadata.namespace (the deploy sets it) or name CodeLab's namespace",
                )
            )
    return out


def check_autoscaling(objects: Sequence[Obj]) -> list[Violation]:
    """Every critical service the manifests hold is the target of an HPA."""
    targets = {
        (ref.get("kind"), ref.get("name"))
        for o in objects
        if o.get("kind") == "HorizontalPodAutoscaler"
        for ref in [(o.get("spec") or {}).get("scaleTargetRef") or {}]
    }
    out: list[Violation] = []
    for obj in objects:
        name = (obj.get("metadata") or {}).get("name")
        if obj.get("kind") != "Deployment" or name not in CRITICAL_SERVICES:
            continue
        if ("Deployment", name) not in targets:
            out.append(
                violation(
                    "autoscaling",
                    obj,
                    "no HorizontalPodAutoscaler has it as scaleTargetRef; expected an HPA "
                    f"for this critical service (scaleTargetRef Deployment/{name})",
                    "add an autoscaling/v2 HPA targeting it (the guide's values-prod.yaml: "
                    "autoscaling.enabled with min/max replicas and a CPU target)",
                )
            )
    return out


def _resolve(value: Any, replicas: int, round_up: bool) -> int | None:
    """An int-or-percent rollingUpdate field as a pod count (None when malformed)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.endswith("%") and value[:-1].isdigit():
        exact = int(value[:-1]) * replicas / 100
        return math.ceil(exact) if round_up else math.floor(exact)
    return None


def _capacity_floor(deployment: Obj, objects: Sequence[Obj]) -> int:
    """The fewest replicas the Deployment runs: spec.replicas, or its HPA's minReplicas."""
    replicas = (deployment.get("spec") or {}).get("replicas", 1)
    floor = replicas if isinstance(replicas, int) and not isinstance(replicas, bool) else 1
    name = (deployment.get("metadata") or {}).get("name")
    for o in objects:
        spec = o.get("spec") or {}
        ref = spec.get("scaleTargetRef") or {}
        if (
            o.get("kind") == "HorizontalPodAutoscaler"
            and (ref.get("kind"), ref.get("name")) == ("Deployment", name)
            and isinstance(spec.get("minReplicas"), int)
        ):
            floor = max(floor, spec["minReplicas"])
    return floor


def check_rolling_updates(objects: Sequence[Obj]) -> list[Violation]:
    """Serving Deployments update without dropping to zero ready pods (no Recreate)."""
    out: list[Violation] = []
    for obj in objects:
        if obj.get("kind") != "Deployment" or not any(c.get("ports") for c in main_containers(obj)):
            continue
        strategy = (obj.get("spec") or {}).get("strategy") or {}
        if strategy.get("type", "RollingUpdate") == "Recreate":
            out.append(
                violation(
                    "rolling-updates",
                    obj,
                    "spec.strategy.type is Recreate: every pod stops before the new ones start; "
                    "expected RollingUpdate (zero-downtime updates)",
                    "use strategy RollingUpdate with maxUnavailable 0 and maxSurge 1",
                )
            )
            continue
        out += _unavailable(obj, strategy, _capacity_floor(obj, objects))
    return out


def _unavailable(obj: Obj, strategy: dict[str, Any], replicas: int) -> list[Violation]:
    rolling = strategy.get("rollingUpdate") or {}
    raw = rolling.get("maxUnavailable", DEFAULT_MAX_UNAVAILABLE)
    unavailable = _resolve(raw, replicas, round_up=False)
    surge = _resolve(rolling.get("maxSurge", DEFAULT_MAX_SURGE), replicas, round_up=True)
    if unavailable == 0 and surge == 0:
        unavailable = 1  # what the Deployment controller does with two zeros
    if unavailable is None or unavailable < replicas:
        return []
    return [
        violation(
            "rolling-updates",
            obj,
            f"spec.strategy.rollingUpdate.maxUnavailable {raw} lets a rollout take all "
            f"{replicas} replica(s) out of service; expected at most {replicas - 1} "
            "(0 keeps full serving capacity)",
            "set maxUnavailable: 0 and maxSurge: 1",
        )
    ]
