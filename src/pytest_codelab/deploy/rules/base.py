"""What a rule is and what it finds: ``Rule`` (one object), ``SetRule`` (all objects), and the
``Violation`` line a person reads: the object, the rule, the problem and the fix."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pytest_codelab.deploy.manifests import containers, object_id, pod_spec, source_of

Obj = Mapping[str, Any]


#: Kinds whose objects carry a pod template (or are pods): where container rules apply.
POD_KINDS = frozenset(
    {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod"}
)


@dataclass(frozen=True)
class Violation:
    """One broken rule on one object; ``str()`` is the line a person reads."""

    rule: str
    obj: str
    problem: str
    fix: str
    where: str = ""
    source: str | None = None

    def __str__(self) -> str:
        where = f" {self.where}" if self.where else ""
        at = f" (from {self.source})" if self.source else ""
        return f"{self.obj}{where}: {self.problem} [rule {self.rule}]; fix: {self.fix}{at}"


@dataclass(frozen=True)
class Rule:
    """A per-object check. ``kinds`` limits it (None: every kind)."""

    id: str
    description: str
    requirement: str
    check: Callable[[Obj], list[Violation]]
    kinds: frozenset[str] | None = None

    def applies(self, obj: Obj) -> bool:
        return self.kinds is None or obj.get("kind") in self.kinds


@dataclass(frozen=True)
class SetRule:
    """A check across all objects of a deployment."""

    id: str
    description: str
    requirement: str
    check: Callable[[Sequence[Obj]], list[Violation]]


def violation(rule: str, obj: Obj, problem: str, fix: str, where: str = "") -> Violation:
    return Violation(rule, object_id(obj), problem, fix, where, source_of(obj))


def main_containers(obj: Obj) -> list[dict[str, Any]]:
    return containers(obj, init=False)


def init_containers(obj: Obj) -> list[dict[str, Any]]:
    spec = pod_spec(obj) or {}
    return [c for c in spec.get("initContainers") or [] if isinstance(c, dict)]


def cname(c: Mapping[str, Any], init: bool = False) -> str:
    return f"{'init container' if init else 'container'} '{c.get('name', '?')}'"


def find(objects: Sequence[Obj], kind: str, name: str) -> Obj | None:
    for o in objects:
        if o.get("kind") == kind and (o.get("metadata") or {}).get("name") == name:
            return o
    return None


def template_labels(obj: Obj) -> dict[str, str]:
    """The labels of a workload's pod template."""
    spec = obj.get("spec") or {}
    if obj.get("kind") == "CronJob":
        spec = ((spec.get("jobTemplate") or {}).get("spec")) or {}
    labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    return dict(labels)


def selects(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """Label selector semantics (matchLabels + matchExpressions); {} selects everything."""
    if selector is None:
        return False
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, vals = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In" and labels.get(key) not in vals:
            return False
        if op == "NotIn" and labels.get(key) in vals:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def workloads(objects: Sequence[Obj]) -> list[Obj]:
    """The objects that carry a pod template."""
    return [o for o in objects if o.get("kind") in POD_KINDS and pod_spec(o) is not None]
