"""Offline best-practice rules for rendered manifests (the seed's "Best Practices" as checks).

Why: these are the properties the seed asks of a production deployment, one rule or more for
each of its ten best practices that a manifest can show (1 namespaces, 2 resource limits,
3 health checks, 4 autoscaling, 5 monitoring hooks where present, 7 secrets in Secrets,
8 network policies, 9 rolling updates; 6 backups and 10 staging are not in manifests), plus
the few that make such a deployment work at all (pinned images, references that resolve).
They run on plain dicts, with no cluster, so the offline suite can gate any manifests folder.
Every violation names the object, the field, what was expected and the fix in one line.

Per-object rules (:data:`RULES`) take one object; set rules (:data:`SET_RULES`) look across
all objects (a policy selecting nothing, an HPA whose target is missing).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from pytest_codelab.deploy.rules.base import POD_KINDS, Obj, Rule, SetRule, Violation
from pytest_codelab.deploy.rules.containers import check_images, check_probes, check_resources
from pytest_codelab.deploy.rules.hpa import check_hpa, check_hpa_targets
from pytest_codelab.deploy.rules.monitoring import check_monitoring
from pytest_codelab.deploy.rules.plain_secrets import check_plain_secrets
from pytest_codelab.deploy.rules.practices import (
    check_autoscaling,
    check_namespaces,
    check_rolling_updates,
)
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
    SetRule(
        "namespaces",
        "no object pinned to a shared namespace such as default (seed best practice 1)",
        "2.8/namespaces",
        check_namespaces,
    ),
    SetRule(
        "autoscaling",
        "an HPA for each critical service: gateway, agent-runtime, auth-service "
        "(seed best practice 4)",
        "2.8/autoscaling",
        check_autoscaling,
    ),
    SetRule(
        "monitoring",
        "scrape annotations, ServiceMonitors and PodMonitors, where present, point at "
        "existing ports (seed best practice 5)",
        "2.8/monitoring",
        check_monitoring,
    ),
    SetRule(
        "rolling-updates",
        "serving Deployments roll without dropping to zero ready pods, never Recreate "
        "(seed best practice 9)",
        "2.8/rolling-updates",
        check_rolling_updates,
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
