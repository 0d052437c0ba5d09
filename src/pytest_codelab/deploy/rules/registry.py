"""Offline best-practice rules for rendered manifests (the seed's "Best Practices" as checks).

Why: these are the properties the seed asks of a production deployment (resource limits,
health checks, secrets in Secrets, network policies, autoscaling) plus the few that make such
a deployment work at all (pinned images, references that resolve). They run on plain dicts, with
no cluster, so the offline suite can gate any manifests folder. Every violation names the object,
the rule and the fix in one line.

Per-object rules (:data:`RULES`) take one object; set rules (:data:`SET_RULES`) look across
all objects (a policy selecting nothing, an HPA whose target is missing).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from pytest_codelab.deploy.rules.base import POD_KINDS, Obj, Rule, SetRule, Violation
from pytest_codelab.deploy.rules.containers import check_images, check_probes, check_resources
from pytest_codelab.deploy.rules.hpa import check_hpa, check_hpa_targets
from pytest_codelab.deploy.rules.plain_secrets import check_plain_secrets
from pytest_codelab.deploy.rules.references import check_networkpolicies, check_references

RULES: tuple[Rule, ...] = (
    Rule(
        "resources",
        "requests and limits (cpu, memory) on every container (seed best practice 2)",
        "2.8/resources",
        check_resources,
        POD_KINDS,
    ),
    Rule(
        "probes",
        "liveness and readiness probes on every serving container (seed best practice 3)",
        "2.8/probes",
        check_probes,
        POD_KINDS,
    ),
    Rule(
        "plain-secrets",
        "no secret values in plain env, command lines or ConfigMaps (seed best practice 7)",
        "2.8/plain-secrets",
        check_plain_secrets,
        POD_KINDS | {"ConfigMap"},
    ),
    Rule(
        "pinned-images",
        "every image pinned to a version tag or digest (no latest/main-latest/untagged)",
        "2.8/pinned-images",
        check_images,
        POD_KINDS,
    ),
    Rule(
        "hpa",
        "HPA bounds 1 <= minReplicas <= maxReplicas and metric targets (seed best practice 4)",
        "2.8/hpa",
        check_hpa,
        frozenset({"HorizontalPodAutoscaler"}),
    ),
)

SET_RULES: tuple[SetRule, ...] = (
    SetRule(
        "networkpolicies",
        "NetworkPolicies present: default deny ingress plus allows (seed best practice 8)",
        "2.8/networkpolicies",
        check_networkpolicies,
    ),
    SetRule(
        "hpa",
        "HPA targets exist and request what their Utilization metrics need",
        "2.8/hpa",
        check_hpa_targets,
    ),
    SetRule(
        "references",
        "Services, Ingress backends, PDBs, VPAs and ConfigMap uses resolve",
        "2.8/references",
        check_references,
    ),
)

RULES_BY_ID: Mapping[str, Rule] = {r.id: r for r in RULES}
SET_RULES_BY_ID: Mapping[str, SetRule] = {r.id: r for r in SET_RULES}


def check_object(obj: Obj, rules: Iterable[Rule] = RULES) -> list[Violation]:
    """Every per-object violation of ``obj``."""
    return [v for r in rules if r.applies(obj) for v in r.check(obj)]


def check_objects(
    objects: Sequence[Obj],
    rules: Iterable[Rule] = RULES,
    set_rules: Iterable[SetRule] = SET_RULES,
) -> list[Violation]:
    """Every violation in a deployment: per-object rules on each object, then set rules."""
    found = [v for o in objects for v in check_object(o, rules)]
    return found + [v for r in set_rules for v in r.check(objects)]
