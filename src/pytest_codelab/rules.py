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

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pytest_codelab.manifests import containers, object_id, pod_spec, source_of, split_image
from pytest_codelab.values import parse_quantity

Obj = Mapping[str, Any]

#: Workload annotation listing env var names allowed to hold a plain value although their
#: name looks secret (e.g. ``CACHE_KEY_PREFIX``): an explicit, reviewable opt-out.
ALLOW_PLAIN_ENV_ANNOTATION = "codelab.dev/allow-plain-env"
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


def _violation(rule: str, obj: Obj, problem: str, fix: str, where: str = "") -> Violation:
    return Violation(rule, object_id(obj), problem, fix, where, source_of(obj))


def _main_containers(obj: Obj) -> list[dict[str, Any]]:
    return containers(obj, init=False)


def _init_containers(obj: Obj) -> list[dict[str, Any]]:
    spec = pod_spec(obj) or {}
    return [c for c in spec.get("initContainers") or [] if isinstance(c, dict)]


def _cname(c: Mapping[str, Any], init: bool = False) -> str:
    return f"{'init container' if init else 'container'} '{c.get('name', '?')}'"


# --------------------------------------------------------------------------- resources


def check_resources(obj: Obj) -> list[Violation]:
    """Requests and limits for cpu and memory on every container, requests <= limits."""
    out: list[Violation] = []
    for init, group in ((False, _main_containers(obj)), (True, _init_containers(obj))):
        for c in group:
            res = c.get("resources") or {}
            missing = [
                f"{section}.{what}"
                for section in ("requests", "limits")
                for what in ("cpu", "memory")
                if (res.get(section) or {}).get(what) in (None, "")
            ]
            if missing:
                out.append(
                    _violation(
                        "resources",
                        obj,
                        f"no resources.{', resources.'.join(missing)}",
                        "set resources.requests and resources.limits for cpu and memory "
                        "(e.g. the values profile's figures for this service)",
                        _cname(c, init),
                    )
                )
                continue
            for what in ("cpu", "memory"):
                try:
                    req = parse_quantity(res["requests"][what])
                    lim = parse_quantity(res["limits"][what])
                except (ValueError, TypeError):
                    continue  # malformed quantities are the schema check's to report
                if req > lim:
                    out.append(
                        _violation(
                            "resources",
                            obj,
                            f"requests.{what} {res['requests'][what]} is above "
                            f"limits.{what} {res['limits'][what]}",
                            f"lower requests.{what} or raise limits.{what}",
                            _cname(c, init),
                        )
                    )
    return out


# --------------------------------------------------------------------------- probes


def _declared_ports(c: Mapping[str, Any]) -> tuple[set[int], set[str]]:
    numbers: set[int] = set()
    names: set[str] = set()
    for p in c.get("ports") or []:
        if isinstance(p.get("containerPort"), int):
            numbers.add(p["containerPort"])
        if isinstance(p.get("name"), str):
            names.add(p["name"])
    return numbers, names


def _probe_port(probe: Mapping[str, Any]) -> Any:
    for action in ("httpGet", "tcpSocket", "grpc"):
        if isinstance(probe.get(action), Mapping):
            return probe[action].get("port")
    return None


def check_probes(obj: Obj) -> list[Violation]:
    """Liveness and readiness probes on every serving container, aimed at a declared port."""
    out: list[Violation] = []
    for c in _main_containers(obj):
        if not c.get("ports"):
            continue
        numbers, names = _declared_ports(c)
        first = min(numbers) if numbers else None
        target = f"on port {first}" if first else "on the serving port"
        for probe in ("readinessProbe", "livenessProbe"):
            spec = c.get(probe)
            if not isinstance(spec, Mapping) or not spec:
                out.append(
                    _violation(
                        "probes",
                        obj,
                        f"no {probe}",
                        f"add a {probe} (httpGet /health {target}, or an exec check for "
                        "a server without HTTP)",
                        _cname(c),
                    )
                )
                continue
            port = _probe_port(spec)
            if port is not None and port not in numbers and port not in names:
                out.append(
                    _violation(
                        "probes",
                        obj,
                        f"{probe} targets port {port!r}, which the container does not declare",
                        f"point the {probe} at a declared containerPort ({sorted(numbers)})",
                        _cname(c),
                    )
                )
    return out


# --------------------------------------------------------------------------- plain secrets

_SECRET_NAME = re.compile(r"KEY|SECRET|PASSW(OR)?D|PWD|TOKEN|CREDENTIAL|PRIVATE", re.I)
_CREDENTIAL_VALUE = [
    (re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]*:[^/\s@$]+@", re.I), "a URL with a password"),
    (re.compile(r"\bsk-[A-Za-z0-9_-]{16,}"), "an API key (sk-...)"),
    (re.compile(r"\b(ghp|gho|ghs|github_pat)_[A-Za-z0-9_]{16,}"), "a GitHub token"),
    (re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"), "a Slack token"),
    (re.compile(r"\bAKIA[0-9A-Z]{16}\b"), "an AWS access key"),
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"), "a private key"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\."), "a JWT"),
]
#: ``key: value`` lines in config files whose key names a secret and whose value is a literal.
_CONFIG_SECRET_LINE = re.compile(
    r"^\s*[\w.-]*(password|passwd|secret|api_key|apikey|token|master_key)[\w.-]*\s*[:=]\s*"
    r"(?P<value>[^#\s].*?)\s*$",
    re.I | re.M,
)
_REFERENCE = re.compile(r"^[\"']?(os\.environ/|\$\{|\$\(|env:)|^[\"']{2}$|^(null|~|true|false)$")
_SECRET_FLAG = re.compile(r"^--?[\w-]*(pass|password|secret|token|api-?key)[\w-]*$", re.I)


def _credential_kind(value: str) -> str | None:
    for pattern, label in _CREDENTIAL_VALUE:
        if pattern.search(value):
            return label
    return None


def _allowed_plain(obj: Obj) -> set[str]:
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    raw = annotations.get(ALLOW_PLAIN_ENV_ANNOTATION) or ""
    return {n.strip() for n in str(raw).split(",") if n.strip()}


def check_plain_secrets(obj: Obj) -> list[Violation]:
    """No secret in a plain env value, a command line or a ConfigMap: they belong in Secrets."""
    out: list[Violation] = []
    fix_env = "move the value into a Secret and use env[].valueFrom.secretKeyRef"
    if obj.get("kind") == "ConfigMap":
        for key, text in (obj.get("data") or {}).items():
            if not isinstance(text, str):
                continue
            kind = _credential_kind(text)
            if kind:
                out.append(
                    _violation(
                        "plain-secrets",
                        obj,
                        f"data[{key!r}] holds {kind}",
                        "keep secrets out of ConfigMaps: reference an env var fed from a Secret "
                        "(LiteLLM: os.environ/NAME)",
                    )
                )
                continue
            for m in _CONFIG_SECRET_LINE.finditer(text):
                if not _REFERENCE.search(m.group("value")):
                    out.append(
                        _violation(
                            "plain-secrets",
                            obj,
                            f"data[{key!r}] sets {m.group(0).strip().split(':')[0].split('=')[0]!r}"
                            " to a literal value",
                            "reference an env var fed from a Secret instead "
                            "(LiteLLM: os.environ/NAME)",
                        )
                    )
        return out
    allowed = _allowed_plain(obj)
    for init, group in ((False, _main_containers(obj)), (True, _init_containers(obj))):
        for c in group:
            for e in c.get("env") or []:
                name, value = e.get("name", ""), e.get("value")
                if not isinstance(value, str) or not value or name in allowed:
                    continue
                kind = _credential_kind(value)
                if _SECRET_NAME.search(name):
                    problem = f"env {name} has a plain value (its name says it is a secret)"
                elif kind:
                    problem = f"env {name} holds {kind} in plain text"
                else:
                    continue
                fix = fix_env + (
                    f" (or, if it is not a secret, list it in the {ALLOW_PLAIN_ENV_ANNOTATION} "
                    "annotation)"
                    if not kind
                    else ""
                )
                out.append(_violation("plain-secrets", obj, problem, fix, _cname(c, init)))
            argv = [str(a) for a in (c.get("command") or []) + (c.get("args") or [])]
            for i, arg in enumerate(argv):
                literal = None
                flag, _, inline = arg.partition("=")
                if _SECRET_FLAG.match(flag) and inline and not inline.startswith("$("):
                    literal = flag
                elif (
                    _SECRET_FLAG.match(arg)
                    and i + 1 < len(argv)
                    and not argv[i + 1].startswith("$(")
                ):
                    literal = arg
                kind = _credential_kind(arg)
                if literal or kind:
                    out.append(
                        _violation(
                            "plain-secrets",
                            obj,
                            "command line passes " + (kind or f"a literal {literal!r} value"),
                            "pass it as $(VAR) from an env var fed by a Secret",
                            _cname(c, init),
                        )
                    )
    return out


# --------------------------------------------------------------------------- images

FLOATING_TAGS = frozenset(
    {"latest", "main", "master", "edge", "nightly", "stable", "lts", "rolling", "dev", "head"}
)
_FLOATING_PART = re.compile(r"(^|[-_.])(latest|nightly|edge|snapshot)($|[-_.])", re.I)


def image_problem(image: str) -> str | None:
    """Why an image reference is not pinned, or None if it is (a digest always pins)."""
    repo, tag, digest = split_image(image)
    if digest:
        return None
    if not tag:
        return "has no tag (it means :latest)"
    if tag.lower() in FLOATING_TAGS or tag.lower() in {"main-stable", "main-latest"}:
        return f"uses the floating tag {tag!r}"
    if _FLOATING_PART.search(tag):
        return f"uses the floating tag {tag!r}"
    return None


def check_images(obj: Obj) -> list[Violation]:
    """Every container image pinned to a version tag or digest."""
    out: list[Violation] = []
    for init, group in ((False, _main_containers(obj)), (True, _init_containers(obj))):
        for c in group:
            image = c.get("image")
            if not isinstance(image, str) or not image:
                out.append(
                    _violation("pinned-images", obj, "no image", "set an image", _cname(c, init))
                )
                continue
            problem = image_problem(image)
            if problem:
                out.append(
                    _violation(
                        "pinned-images",
                        obj,
                        f"image {image} {problem}",
                        "pin a released version tag (e.g. :1.0.0) or a digest (@sha256:...)",
                        _cname(c, init),
                    )
                )
    return out


# --------------------------------------------------------------------------- HPA


def check_hpa(obj: Obj) -> list[Violation]:
    """HPA bounds sane (1 <= min <= max) and every metric with a target."""
    out: list[Violation] = []
    spec = obj.get("spec") or {}
    lo, hi = spec.get("minReplicas"), spec.get("maxReplicas")
    if lo is None:
        out.append(
            _violation("hpa", obj, "no minReplicas", "set minReplicas (the service's HA floor)")
        )
    if isinstance(lo, int) and lo < 1:
        out.append(_violation("hpa", obj, f"minReplicas {lo} < 1", "set minReplicas >= 1"))
    if not isinstance(hi, int):
        out.append(_violation("hpa", obj, "no maxReplicas", "set maxReplicas"))
    elif isinstance(lo, int) and lo > hi:
        out.append(
            _violation(
                "hpa",
                obj,
                f"minReplicas {lo} > maxReplicas {hi}",
                "make minReplicas <= maxReplicas",
            )
        )
    metrics = spec.get("metrics") or []
    if not metrics:
        out.append(
            _violation(
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
                _violation(
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


# --------------------------------------------------------------------------- set rules


def _template_labels(obj: Obj) -> dict[str, str]:
    spec = obj.get("spec") or {}
    if obj.get("kind") == "CronJob":
        spec = ((spec.get("jobTemplate") or {}).get("spec")) or {}
    labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    return dict(labels)


def _selects(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
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


def _workloads(objects: Sequence[Obj]) -> list[Obj]:
    return [o for o in objects if o.get("kind") in POD_KINDS and pod_spec(o) is not None]


def check_networkpolicies(objects: Sequence[Obj]) -> list[Violation]:
    """NetworkPolicies present: a default deny for ingress, and an allow for every server."""
    policies = [o for o in objects if o.get("kind") == "NetworkPolicy"]
    if not policies:
        return [
            Violation(
                "networkpolicies",
                "(manifests)",
                "no NetworkPolicy at all",
                "add a default-deny-ingress policy (podSelector: {}, policyTypes: [Ingress]) and "
                "one allow policy per service along the architecture graph",
            )
        ]
    out: list[Violation] = []

    def is_ingress_policy(p: Obj) -> bool:
        spec = p.get("spec") or {}
        # Without policyTypes, a policy always restricts ingress.
        return "Ingress" in (spec.get("policyTypes") or ["Ingress"])

    default_deny = [
        p
        for p in policies
        if (p.get("spec") or {}).get("podSelector") == {}
        and is_ingress_policy(p)
        and not (p.get("spec") or {}).get("ingress")
    ]
    if not default_deny:
        out.append(
            Violation(
                "networkpolicies",
                "(manifests)",
                "no default-deny ingress NetworkPolicy",
                "add one with podSelector: {} and policyTypes: [Ingress] and no ingress rules",
            )
        )
    pod_labels = [(w, _template_labels(w)) for w in _workloads(objects)]
    allows = [p for p in policies if (p.get("spec") or {}).get("ingress")]
    for w, labels in pod_labels:
        if not any(c.get("ports") for c in _main_containers(w)):
            continue
        if default_deny and not any(
            _selects((p.get("spec") or {}).get("podSelector"), labels) for p in allows
        ):
            out.append(
                _violation(
                    "networkpolicies",
                    w,
                    "serves ports but no NetworkPolicy allows ingress to its pods "
                    "(the default deny makes it unreachable)",
                    "add an allow policy selecting its pods, from its clients only",
                )
            )
    for p in policies:
        spec = p.get("spec") or {}
        for rule in (spec.get("ingress") or []) + (spec.get("egress") or []):
            for peer in (rule.get("from") or []) + (rule.get("to") or []):
                sel = peer.get("podSelector")
                if (
                    sel
                    and "namespaceSelector" not in peer
                    and not any(_selects(sel, labels) for _, labels in pod_labels)
                ):
                    out.append(
                        _violation(
                            "networkpolicies",
                            p,
                            f"peer podSelector {sel} selects no pod of these manifests",
                            "fix the labels (stale after a rename?) or remove the peer",
                        )
                    )
    return out


def _find(objects: Sequence[Obj], kind: str, name: str) -> Obj | None:
    for o in objects:
        if o.get("kind") == kind and (o.get("metadata") or {}).get("name") == name:
            return o
    return None


def check_hpa_targets(objects: Sequence[Obj]) -> list[Violation]:
    """Each HPA's target exists and requests what its Utilization metrics divide by."""
    out: list[Violation] = []
    for hpa in (o for o in objects if o.get("kind") == "HorizontalPodAutoscaler"):
        ref = (hpa.get("spec") or {}).get("scaleTargetRef") or {}
        target = _find(objects, ref.get("kind", ""), ref.get("name", ""))
        if target is None:
            out.append(
                _violation(
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
                for c in _main_containers(target)
                if ((c.get("resources") or {}).get("requests") or {}).get(name) in (None, "")
            ]
            if lacking:
                out.append(
                    _violation(
                        "hpa",
                        hpa,
                        f"{name} Utilization target, but {object_id(target)} containers "
                        f"{lacking} request no {name}",
                        f"set resources.requests.{name} on every container of the target",
                    )
                )
    return out


def check_references(objects: Sequence[Obj]) -> list[Violation]:
    """Names resolve: Service selectors, Ingress backends, PDB/VPA targets, ConfigMaps."""
    out: list[Violation] = []
    labels = [_template_labels(w) for w in _workloads(objects)]
    for svc in (o for o in objects if o.get("kind") == "Service"):
        sel = (svc.get("spec") or {}).get("selector")
        if sel and not any(all(lb.get(k) == v for k, v in sel.items()) for lb in labels):
            out.append(
                _violation(
                    "references",
                    svc,
                    f"selector {sel} matches no pod template",
                    "make the selector match the workload's template labels",
                )
            )
    for ing in (o for o in objects if o.get("kind") == "Ingress"):
        for rule in (ing.get("spec") or {}).get("rules") or []:
            for path in (rule.get("http") or {}).get("paths") or []:
                backend = (path.get("backend") or {}).get("service") or {}
                target = _find(objects, "Service", backend.get("name", ""))
                where = f"path {path.get('path')!r}"
                if target is None:
                    out.append(
                        _violation(
                            "references",
                            ing,
                            f"backend Service {backend.get('name')!r} is not in the manifests",
                            "point the backend at an existing Service",
                            where,
                        )
                    )
                    continue
                port = backend.get("port") or {}
                ports = (target.get("spec") or {}).get("ports") or []
                if not any(
                    (p.get("port") == port["number"])
                    if "number" in port
                    else (p.get("name") == port.get("name"))
                    for p in ports
                ):
                    out.append(
                        _violation(
                            "references",
                            ing,
                            f"backend port {port} is not a port of Service/{backend.get('name')}",
                            f"use one of {[p.get('port') for p in ports]}",
                            where,
                        )
                    )
    for pdb in (o for o in objects if o.get("kind") == "PodDisruptionBudget"):
        sel = (pdb.get("spec") or {}).get("selector")
        if not any(_selects(sel, lb) for lb in labels):
            out.append(
                _violation(
                    "references",
                    pdb,
                    f"selector {sel} matches no pod template",
                    "make the selector match the workload's template labels",
                )
            )
    for vpa in (o for o in objects if o.get("kind") == "VerticalPodAutoscaler"):
        ref = (vpa.get("spec") or {}).get("targetRef") or {}
        if _find(objects, ref.get("kind", ""), ref.get("name", "")) is None:
            out.append(
                _violation(
                    "references",
                    vpa,
                    f"targetRef {ref.get('kind')}/{ref.get('name')} is not in the manifests",
                    "point targetRef at an existing workload",
                )
            )
    configmaps = {
        (o.get("metadata") or {}).get("name") for o in objects if o.get("kind") == "ConfigMap"
    }
    for w in _workloads(objects):
        spec = pod_spec(w) or {}
        names = [
            (v.get("configMap") or {}).get("name")
            for v in spec.get("volumes") or []
            if isinstance(v.get("configMap"), Mapping)
            and not (v.get("configMap") or {}).get("optional")
        ]
        for c in containers(w):
            for e in c.get("env") or []:
                ref = ((e.get("valueFrom") or {}).get("configMapKeyRef")) or {}
                if ref and not ref.get("optional"):
                    names.append(ref.get("name"))
        for name in names:
            if name not in configmaps:
                out.append(
                    _violation(
                        "references",
                        w,
                        f"uses ConfigMap {name!r}, which is not in the manifests",
                        "add the ConfigMap or fix the name",
                    )
                )
    return out


# --------------------------------------------------------------------------- registry

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
