"""Rules across all objects: NetworkPolicies (a default deny and an allow for every server,
seed best practice 8), and names that resolve (Service selectors, Ingress backends, PDB/VPA
targets, ConfigMaps)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pytest_codelab.deploy.manifests import containers, pod_spec
from pytest_codelab.deploy.rules.base import (
    Obj,
    Violation,
    find,
    main_containers,
    selects,
    template_labels,
    violation,
    workloads,
)


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
    pod_labels = [(w, template_labels(w)) for w in workloads(objects)]
    allows = [p for p in policies if (p.get("spec") or {}).get("ingress")]
    for w, labels in pod_labels:
        if not any(c.get("ports") for c in main_containers(w)):
            continue
        if default_deny and not any(
            selects((p.get("spec") or {}).get("podSelector"), labels) for p in allows
        ):
            out.append(
                violation(
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
                    and not any(selects(sel, labels) for _, labels in pod_labels)
                ):
                    out.append(
                        violation(
                            "networkpolicies",
                            p,
                            f"peer podSelector {sel} selects no pod of these manifests",
                            "fix the labels (stale after a rename?) or remove the peer",
                        )
                    )
    return out


def check_references(objects: Sequence[Obj]) -> list[Violation]:
    """Names resolve: Service selectors, Ingress backends, PDB/VPA targets, ConfigMaps."""
    out: list[Violation] = []
    labels = [template_labels(w) for w in workloads(objects)]
    for svc in (o for o in objects if o.get("kind") == "Service"):
        sel = (svc.get("spec") or {}).get("selector")
        if sel and not any(all(lb.get(k) == v for k, v in sel.items()) for lb in labels):
            out.append(
                violation(
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
                target = find(objects, "Service", backend.get("name", ""))
                where = f"path {path.get('path')!r}"
                if target is None:
                    out.append(
                        violation(
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
                        violation(
                            "references",
                            ing,
                            f"backend port {port} is not a port of Service/{backend.get('name')}",
                            f"use one of {[p.get('port') for p in ports]}",
                            where,
                        )
                    )
    for pdb in (o for o in objects if o.get("kind") == "PodDisruptionBudget"):
        sel = (pdb.get("spec") or {}).get("selector")
        if not any(selects(sel, lb) for lb in labels):
            out.append(
                violation(
                    "references",
                    pdb,
                    f"selector {sel} matches no pod template",
                    "make the selector match the workload's template labels",
                )
            )
    for vpa in (o for o in objects if o.get("kind") == "VerticalPodAutoscaler"):
        ref = (vpa.get("spec") or {}).get("targetRef") or {}
        if find(objects, ref.get("kind", ""), ref.get("name", "")) is None:
            out.append(
                violation(
                    "references",
                    vpa,
                    f"targetRef {ref.get('kind')}/{ref.get('name')} is not in the manifests",
                    "point targetRef at an existing workload",
                )
            )
    configmaps = {
        (o.get("metadata") or {}).get("name") for o in objects if o.get("kind") == "ConfigMap"
    }
    for w in workloads(objects):
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
                    violation(
                        "references",
                        w,
                        f"uses ConfigMap {name!r}, which is not in the manifests",
                        "add the ConfigMap or fix the name",
                    )
                )
    return out
