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
