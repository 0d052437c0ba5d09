"""Permissions: parsed from the table's shorthand, written as RBAC rules and read back."""

from __future__ import annotations

from pytest_codelab.k8s.access import Access, granted, parse, rbac_rules


def test_parse_splits_verbs_group_and_subresource() -> None:
    assert parse("get list", "deployments.apps", "ns") == [
        Access("get", "deployments", "apps", "ns"),
        Access("list", "deployments", "apps", "ns"),
    ]
    assert parse("create", "pods/exec", None) == [Access("create", "pods", "", None, "exec")]
    assert parse("list", "pods.metrics.k8s.io", "ns") == [
        Access("list", "pods", "metrics.k8s.io", "ns")
    ]


def test_access_is_described_for_people() -> None:
    assert str(Access("create", "pods", namespace="ns", subresource="exec")) == (
        "create pods/exec in namespace ns"
    )
    assert str(Access("list", "ingresses", "networking.k8s.io")) == (
        "list ingresses.networking.k8s.io"
    )


def test_rules_grant_exactly_the_accesses() -> None:
    wanted = {
        *parse("get list watch", "pods", None),
        *parse("create", "pods/exec", None),
        *parse("get list", "deployments.apps", None),
        *parse("patch", "deployments.apps", None),
    }
    rules = rbac_rules(wanted)
    assert granted(rules, None) == wanted
    assert {"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create"]} in rules
    assert {
        "apiGroups": ["apps"],
        "resources": ["deployments"],
        "verbs": ["get", "list", "patch"],
    } in rules
