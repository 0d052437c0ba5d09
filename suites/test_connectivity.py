"""Issue 5.2: in-cluster connectivity along the seed's architecture graph.

Every Service answers on its port by DNS name from a short-lived pod and has Ready
endpoints; the documented paths work when tried from the source pod itself with the
source's own configuration (URLs and keys from its environment, never printed); where
NetworkPolicies exist and the network plugin enforces them, a path they forbid is refused.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from pytest_codelab.k8s import podtools
from pytest_codelab.k8s.diagnostics import pod_summary
from pytest_codelab.k8s.netpolicy import (
    Endpoint,
    admits,
    ingress_verdict,
    namespace_labels,
    service_endpoint,
)
from pytest_codelab.k8s.pods import is_ready
from pytest_codelab.k8s.services import endpoint_addresses, service_pods
from pytest_codelab.k8s.stack import StackInfo
from pytest_codelab.scenarios.connectivity import CONNECT_TIMEOUT, run_check

#: The Services of the seed deployment and their ports.
SERVICES = {
    "gateway": 8000,
    "agent-runtime": 8001,
    "auth-service": 8003,
    "llm-proxy": 4000,
    "postgres": 5432,
    "redis": 6379,
}
#: Pods that carry python3 (the CodeLab images): sources of in-cluster checks.
PYTHON_SOURCES = ("gateway", "agent-runtime", "auth-service")

Exec = Callable[..., podtools.ExecResult]
Probe = Callable[..., podtools.ProbeResult]


@dataclass(frozen=True)
class Path:
    """An edge of the architecture graph and how to exercise it from the source pod."""

    source: str
    target: str
    check: str  # http | postgres | redis | llm (see scenarios.connectivity.CHECK_SCRIPT)
    setting: str  # ENV_VAR or ENV_VAR=default

    @property
    def id(self) -> str:
        return f"{self.source}->{self.target}"


PATHS = (
    Path("gateway", "agent-runtime", "http", "AGENT_RUNTIME_URL=http://agent-runtime:8001"),
    Path("gateway", "auth-service", "http", "AUTH_SERVICE_URL=http://auth-service:8003"),
    Path("gateway", "postgres", "postgres", "DATABASE_URL"),
    Path("agent-runtime", "postgres", "postgres", "DATABASE_URL"),
    Path("agent-runtime", "redis", "redis", "REDIS_URL"),
    Path("agent-runtime", "llm-proxy", "llm", "LLM_PROXY_URL=http://llm-proxy:4000"),
    Path("auth-service", "postgres", "postgres", "DATABASE_URL"),
    Path("auth-service", "redis", "redis", "REDIS_URL"),
)


# ----------------------------------------------------------------- helpers


def source_pod(core: client.CoreV1Api, namespace: str, name: str) -> client.V1Pod:
    """A Ready pod of the Service/Deployment ``name`` (label ``app=<name>``)."""
    pods = [p for p in service_pods(core, namespace, name) if is_ready(p)]
    if not pods:
        summaries = "; ".join(map(pod_summary, service_pods(core, namespace, name)))
        pytest.fail(f"no Ready pod of {name} to run the check from: {summaries or 'no pods'}")
    return sorted(pods, key=lambda p: p.metadata.name)[0]


@pytest.fixture
def network_policies(
    codelab_stack: StackInfo, k8s_client: client.ApiClient
) -> list[client.V1NetworkPolicy]:
    networking = client.NetworkingV1Api(k8s_client)
    return list(networking.list_namespaced_network_policy(codelab_stack.namespace).items)


# ----------------------------------------------------------------- tests


@pytest.mark.parametrize("service", sorted(SERVICES))
@pytest.mark.requirement("5.2/services: every Service has Ready endpoints")
def test_service_has_ready_endpoints(
    service: str, codelab_stack: StackInfo, k8s_client: client.ApiClient, core_v1: client.CoreV1Api
) -> None:
    """The Service's EndpointSlices list every Ready pod behind it as ready, and at least
    one; pods that are not Ready are not listed as ready."""
    ns = codelab_stack.namespace
    try:
        pods = service_pods(core_v1, ns, service)
    except ApiException as exc:
        pytest.fail(f"service/{service} in {ns}: HTTP {exc.status}")
    ready, unready = endpoint_addresses(client.DiscoveryV1Api(k8s_client), ns, service)
    ready_pods = sorted(p.metadata.name for p in pods if is_ready(p))
    assert ready, (
        f"service/{service} has no ready endpoints (not ready: {unready}); pods: "
        + "; ".join(map(pod_summary, pods))
    )
    assert sorted(ready) == ready_pods, (
        f"service/{service}: ready endpoints {sorted(ready)} but Ready pods {ready_pods}"
    )


@pytest.mark.parametrize("service", sorted(SERVICES))
@pytest.mark.requirement("5.2/services: every Service answers on its port by DNS name")
def test_service_answers_by_dns_name(
    service: str,
    codelab_stack: StackInfo,
    core_v1: client.CoreV1Api,
    probe_pod: Probe,
    pod_exec: Exec,
    network_policies: list[client.V1NetworkPolicy],
) -> None:
    """From a short-lived busybox pod (the seed's troubleshooting step): the Service name
    resolves and a TCP connection to its port is accepted (``nc HOST PORT -e true``).
    Where the namespace's NetworkPolicies do not admit the probe pod, the check runs from
    a CodeLab pod they admit (a probe pod carrying an ``app`` label would join that app's
    Service)."""
    ns = codelab_stack.namespace
    port = SERVICES[service]
    endpoint = service_endpoint(core_v1, ns, service, port)
    ns_labels = namespace_labels(core_v1, ns)
    admitted, _ = ingress_verdict(
        network_policies,
        endpoint.labels,
        endpoint.target_port,
        endpoint.port_name,
        podtools.PROBE_LABELS,
        ns_labels,
    )
    # busybox nslookup fails on the NXDOMAIN answers of other search domains: its output
    # is kept for the message only; nc resolves the name itself ("bad address" if not).
    command = (
        f"nslookup {service}; nc -w {CONNECT_TIMEOUT} {service} {port} -e true && echo connected"
    )
    if admitted:
        result = probe_pod(command)
        assert result.ok and "connected" in result.output, (
            f"probe pod/{result.pod} could not reach {service}:{port} by name "
            f"(exit {result.exit_code}): {result.output.strip()[-600:]}"
        )
        return
    for source in PYTHON_SOURCES:
        pod = source_pod(core_v1, ns, source)
        allowed, _ = admits(network_policies, endpoint, pod, ns_labels)
        if allowed:
            ok, detail = run_check(pod_exec, pod, "tcp", f"TARGET={service}:{port}")
            assert ok, f"pod/{pod.metadata.name} could not reach {service}:{port}: {detail}"
            return
    # Only the ingress controller is admitted: a probe pod still shows the name resolves;
    # the connection succeeds unless the network plugin enforces the policies.
    result = probe_pod(command)
    if result.ok and "connected" in result.output:
        return
    assert "bad address" not in result.output, (
        f"probe pod/{result.pod} could not resolve {service}: {result.output.strip()[-600:]}"
    )
    pytest.skip(
        f"{service} resolves, but NetworkPolicies admit no in-namespace pod to {service}:{port} "
        "(only the ingress controller) and the connection was refused; test_ingress.py "
        "checks it through the Ingress"
    )


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.id)
@pytest.mark.requirement("5.2/paths: the documented service-to-service paths work")
def test_documented_path_works(
    path: Path, codelab_stack: StackInfo, core_v1: client.CoreV1Api, pod_exec: Exec
) -> None:
    """From a Ready pod of the source, with its own configuration: HTTP /health of the
    target service, ``SELECT 1`` on PostgreSQL, ``PING`` on Redis, the LLM proxy's
    liveness and its model list with the proxy key."""
    pod = source_pod(core_v1, codelab_stack.namespace, path.source)
    ok, detail = run_check(pod_exec, pod, path.check, path.setting)
    assert ok, f"{path.id} from pod/{pod.metadata.name}: {detail}"


@pytest.mark.requirement("5.2/network-policies: a path the NetworkPolicies forbid is refused")
def test_forbidden_paths_are_refused(
    codelab_stack: StackInfo,
    core_v1: client.CoreV1Api,
    pod_exec: Exec,
    network_policies: list[client.V1NetworkPolicy],
) -> None:
    """For every CodeLab source pod and Service port the namespace's NetworkPolicies do not
    admit, a TCP connection fails, while the same source still reaches a port they admit.
    Skips when there are no policies, or when a forbidden connection succeeds: then the
    network plugin does not enforce NetworkPolicies."""
    ns = codelab_stack.namespace
    if not network_policies:
        pytest.skip(f"namespace {ns} has no NetworkPolicies")
    ns_labels = namespace_labels(core_v1, ns)
    endpoints = [service_endpoint(core_v1, ns, name, port) for name, port in SERVICES.items()]
    forbidden: list[tuple[client.V1Pod, Endpoint, list[str]]] = []
    allowed: dict[str, Endpoint] = {}
    for source in PYTHON_SOURCES:
        pod = source_pod(core_v1, ns, source)
        for endpoint in endpoints:
            if endpoint.service == source:
                continue
            ok, selecting = admits(network_policies, endpoint, pod, ns_labels)
            if ok:
                allowed.setdefault(source, endpoint)
            else:
                forbidden.append((pod, endpoint, selecting))
    if not forbidden:
        pytest.skip(f"the NetworkPolicies of {ns} forbid no path between CodeLab services")
    failures = []
    for index, (pod, endpoint, selecting) in enumerate(forbidden):
        target = f"{endpoint.service}:{endpoint.port}"
        ok, detail = run_check(pod_exec, pod, "tcp", f"TARGET={target}")
        if ok and index == 0:
            pytest.skip(
                "the network plugin does not enforce NetworkPolicies: "
                f"pod/{pod.metadata.name} connected to {target}, which no policy admits "
                f"(policies selecting it: {', '.join(selecting)})"
            )
        if ok:
            failures.append(f"pod/{pod.metadata.name} -> {target} connected ({detail})")
    for source, endpoint in allowed.items():
        pod = source_pod(core_v1, ns, source)
        target = f"{endpoint.service}:{endpoint.port}"
        ok, detail = run_check(pod_exec, pod, "tcp", f"TARGET={target}")
        if not ok:
            failures.append(f"pod/{pod.metadata.name} -> {target} (admitted) failed: {detail}")
    assert not failures, "NetworkPolicies not honoured:\n" + "\n".join(failures)
