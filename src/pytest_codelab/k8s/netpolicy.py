"""NetworkPolicy evaluation, ingress side: would these policies admit a connection from one
pod of the namespace to a Service's pods? Label selectors and ports judged as the API
defines them, so a suite knows which paths to expect refused before it tries them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from pytest_codelab.k8s.objects import meta, name_of
from pytest_codelab.k8s.pods import is_ready
from pytest_codelab.k8s.services import service_pods


def selector_matches(selector: client.V1LabelSelector | None, labels: Mapping[str, str]) -> bool:
    """Does a LabelSelector select these labels (an empty selector selects everything)?"""
    if selector is None:
        return True
    if any(labels.get(k) != v for k, v in (selector.match_labels or {}).items()):
        return False
    for expr in selector.match_expressions or []:
        value, values = labels.get(expr.key), expr.values or []
        ok = {
            "In": value in values,
            "NotIn": value not in values,
            "Exists": expr.key in labels,
            "DoesNotExist": expr.key not in labels,
        }.get(expr.operator, False)
        if not ok:
            return False
    return True


def _port_matches(
    rule_ports: list[client.V1NetworkPolicyPort] | None, port: int, port_name: str | None
) -> bool:
    if not rule_ports:
        return True
    for entry in rule_ports:
        if (entry.protocol or "TCP") != "TCP":
            continue
        if entry.port is None:
            return True
        if isinstance(entry.port, str) and not entry.port.isdigit():
            if entry.port == port_name:
                return True
            continue
        low = int(entry.port)
        if low <= port <= (entry.end_port or low):
            return True
    return False


def ingress_verdict(
    policies: list[client.V1NetworkPolicy],
    target_labels: Mapping[str, str],
    port: int,
    port_name: str | None,
    source_labels: Mapping[str, str],
    namespace_labels: Mapping[str, str],
    *,
    same_namespace: bool = True,
) -> tuple[bool, list[str]]:
    """Whether ``source`` may open ``port`` on ``target`` under these policies (ingress side
    only), and the names of the policies that select the target. ``namespace_labels`` are the
    source's namespace's; ``same_namespace=False`` for a source outside the policies'
    namespace (the ingress controller), which a peer without namespaceSelector never matches."""
    specs = [
        (name_of(p), p.spec or client.V1NetworkPolicySpec(pod_selector=None)) for p in policies
    ]
    selecting = [
        (name, spec)
        for name, spec in specs
        if selector_matches(spec.pod_selector, target_labels)
        and "Ingress" in (spec.policy_types or ["Ingress"])
    ]
    names = [name for name, _ in selecting]
    if not selecting:
        return True, []
    for _, spec in selecting:
        for rule in spec.ingress or []:
            if not _port_matches(rule.ports, port, port_name):
                continue
            if not rule._from:
                return True, names
            for peer in rule._from:
                if peer.ip_block is not None:
                    continue
                if peer.namespace_selector is None:
                    ns_ok = same_namespace
                else:
                    ns_ok = selector_matches(peer.namespace_selector, namespace_labels)
                pod_ok = peer.pod_selector is None or selector_matches(
                    peer.pod_selector, source_labels
                )
                if ns_ok and pod_ok:
                    return True, names
    return False, names


def admits(
    policies: list[client.V1NetworkPolicy],
    endpoint: Endpoint,
    pod: client.V1Pod,
    ns_labels: Mapping[str, str],
) -> tuple[bool, list[str]]:
    """:func:`ingress_verdict` for traffic from ``pod`` to a Service's ``endpoint``."""
    return ingress_verdict(
        policies,
        endpoint.labels,
        endpoint.target_port,
        endpoint.port_name,
        meta(pod).labels or {},
        ns_labels,
    )


@dataclass(frozen=True)
class Endpoint:
    """A Service port and the labels/port of the pods behind it."""

    service: str
    port: int
    target_port: int
    port_name: str | None
    labels: Mapping[str, str]


def service_endpoint(core: client.CoreV1Api, namespace: str, service: str, port: int) -> Endpoint:
    """Service ``port`` and its Ready pods' labels and container port; AssertionError when the
    Service has no Ready pod or no such port."""
    pods = [p for p in service_pods(core, namespace, service) if is_ready(p)]
    if not pods:
        raise AssertionError(f"service/{service} has no Ready pods")
    pod = pods[0]
    svc = core.read_namespaced_service(service, namespace)
    ports = (svc.spec.ports if svc.spec else None) or []
    svc_port = next((p for p in ports if p.port == port), None)
    if svc_port is None:
        raise AssertionError(f"service/{service} has no port {port}")
    target, name = svc_port.target_port or port, None
    for container in pod.spec.containers if pod.spec else []:
        for cport in container.ports or []:
            if cport.name == target or cport.container_port == target:
                target, name = cport.container_port, cport.name
    return Endpoint(service, port, int(target), name, meta(pod).labels or {})


def namespace_labels(core: client.CoreV1Api, namespace: str) -> dict[str, str]:
    """The namespace's labels (its name label alone when it cannot be read)."""
    try:
        return dict(meta(core.read_namespace(namespace)).labels or {})
    except ApiException:
        return {"kubernetes.io/metadata.name": namespace}
