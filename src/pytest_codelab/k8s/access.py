"""Permissions as the API server sees them: one Access per verb, resource and namespace,
checked with SelfSubjectAccessReviews and written back as RBAC rules.

The same Access values feed the preflight (what is missing, in one line) and the Roles
shipped in ``rbac/`` (what to grant), so the two cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from kubernetes import client


@dataclass(frozen=True, order=True)
class Access:
    """One permission: a verb on a resource (``group``, ``subresource``), in a namespace or,
    with ``namespace=None``, cluster-wide (a cluster-scoped kind, or every namespace)."""

    verb: str
    resource: str
    group: str = ""
    namespace: str | None = None
    subresource: str | None = None

    @property
    def rule_resource(self) -> str:
        """The resource as an RBAC rule names it (``pods/exec``)."""
        return self.resource + (f"/{self.subresource}" if self.subresource else "")

    def __str__(self) -> str:
        what = self.rule_resource + (f".{self.group}" if self.group else "")
        where = f" in namespace {self.namespace}" if self.namespace else ""
        return f"{self.verb} {what}{where}"


def parse(verbs: str, resource: str, namespace: str | None) -> list[Access]:
    """``parse("get list", "deployments.apps", "ns")``: one Access per verb; the group is
    what follows the first dot, the subresource what follows a slash (``pods/exec``)."""
    name, _, group = resource.partition(".")
    base, _, sub = name.partition("/")
    return [Access(verb, base, group, namespace, sub or None) for verb in verbs.split()]


def is_allowed(api: client.ApiClient, access: Access) -> bool:
    """What the API server's authorizer answers for the caller (SelfSubjectAccessReview)."""
    review = client.V1SelfSubjectAccessReview(
        spec=client.V1SelfSubjectAccessReviewSpec(
            resource_attributes=client.V1ResourceAttributes(
                verb=access.verb,
                resource=access.resource,
                group=access.group,
                namespace=access.namespace,
                subresource=access.subresource,
            )
        )
    )
    result = client.AuthorizationV1Api(api).create_self_subject_access_review(review)
    return bool(result.status and result.status.allowed)


def missing_access(api: client.ApiClient, needed: Iterable[Access]) -> list[Access]:
    """The permissions of ``needed`` the caller lacks, in order, each asked once."""
    return [a for a in dict.fromkeys(needed) if not is_allowed(api, a)]


def rbac_rules(accesses: Iterable[Access]) -> list[dict[str, Any]]:
    """RBAC rules granting exactly ``accesses`` (namespaces ignored): one rule per API group
    and verb set, resources sorted, so a generated Role reads like a hand-written one."""
    verbs: dict[tuple[str, str], set[str]] = {}
    for access in accesses:
        verbs.setdefault((access.group, access.rule_resource), set()).add(access.verb)
    grouped: dict[tuple[str, tuple[str, ...]], list[str]] = {}
    for (group, resource), verb_set in sorted(verbs.items()):
        grouped.setdefault((group, tuple(sorted(verb_set))), []).append(resource)
    return [
        {"apiGroups": [group], "resources": resources, "verbs": list(verb_list)}
        for (group, verb_list), resources in grouped.items()
    ]


def granted(rules: Iterable[dict[str, Any]], namespace: str | None) -> set[Access]:
    """Every Access a list of RBAC rules grants (no wildcards: the shipped Roles have none),
    for comparing a Role with what it should grant."""
    found: set[Access] = set()
    for rule in rules:
        for group in rule.get("apiGroups") or []:
            for resource in rule.get("resources") or []:
                base, _, sub = str(resource).partition("/")
                for verb in rule.get("verbs") or []:
                    found.add(Access(str(verb), base, str(group), namespace, sub or None))
    return found
