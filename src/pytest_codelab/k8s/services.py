"""Services as the suites look at them: the pods behind one, and what its EndpointSlices
say about them."""

from __future__ import annotations

from kubernetes import client

from pytest_codelab.k8s.objects import deleting, name_of


def _selected(core: client.CoreV1Api, namespace: str, service: str) -> list[client.V1Pod]:
    svc = core.read_namespaced_service(service, namespace)
    labels = (svc.spec.selector if svc.spec else None) or {}
    selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
    return list(core.list_namespaced_pod(namespace, label_selector=selector).items)


def service_pods(core: client.CoreV1Api, namespace: str, service: str) -> list[client.V1Pod]:
    """The live pods a Service selects (none being deleted)."""
    return [p for p in _selected(core, namespace, service) if not deleting(p)]


def service_pod_names(core: client.CoreV1Api, namespace: str, service: str) -> set[str]:
    """Names (the pods' hostnames) of every pod a Service selects."""
    return {name_of(p) for p in _selected(core, namespace, service)}


def _slices(
    discovery: client.DiscoveryV1Api, namespace: str, service: str
) -> list[client.V1EndpointSlice]:
    return list(
        discovery.list_namespaced_endpoint_slice(
            namespace, label_selector=f"kubernetes.io/service-name={service}"
        ).items
    )


def endpoint_addresses(
    discovery: client.DiscoveryV1Api, namespace: str, service: str
) -> tuple[list[str], list[str]]:
    """(ready, not ready) endpoint target names of a Service, from its EndpointSlices."""
    ready: list[str] = []
    unready: list[str] = []
    for endpoint_slice in _slices(discovery, namespace, service):
        for endpoint in endpoint_slice.endpoints or []:
            ref = endpoint.target_ref
            name = str(ref.name) if ref else ",".join(endpoint.addresses)
            conditions = endpoint.conditions
            (unready if conditions and conditions.ready is False else ready).append(name)
    return ready, unready


def endpoint_readiness(
    discovery: client.DiscoveryV1Api, namespace: str, service: str
) -> dict[str, bool]:
    """pod name -> ready, from the Service's EndpointSlices."""
    found: dict[str, bool] = {}
    for endpoint_slice in _slices(discovery, namespace, service):
        for endpoint in endpoint_slice.endpoints or []:
            ref = endpoint.target_ref
            if ref is not None and ref.kind == "Pod" and ref.name:
                ready = endpoint.conditions.ready if endpoint.conditions else None
                found[ref.name] = ready is not False
    return found
