"""Issue 5.2: in-cluster connectivity along the seed's architecture graph.

Every Service answers on its port by DNS name from a short-lived pod and has Ready
endpoints; the documented paths work when tried from the source pod itself with the
source's own configuration (URLs and keys from its environment, never printed); the
namespace's NetworkPolicies admit exactly the guide's paths (judged on the objects, no
enforcement needed); where the network plugin enforces them, a path the guide forbids is
refused. The paths come from the guide's architecture graph, written once in
``manifests/README.md`` (``pytest_codelab.deploy.graph``), never from the policies under test.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from pytest_codelab.deploy.graph import INGRESS_CONTROLLER, Edge, guide_graph
from pytest_codelab.deploy.manifests import DEFAULT_INGRESS_NAMESPACE
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

#: The guide's architecture graph (manifests/README.md): the expected side of every check here.
GRAPH = guide_graph()
#: The Services of the seed deployment and their ports, as the graph states them.
SERVICES = GRAPH.ports()
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


#: How to exercise an edge into each target from the source pod: (check, setting).
HOW = {
    "agent-runtime": ("http", "AGENT_RUNTIME_URL=http://agent-runtime:8001"),
    "auth-service": ("http", "AUTH_SERVICE_URL=http://auth-service:8003"),
    "postgres": ("postgres", "DATABASE_URL"),
    "redis": ("redis", "REDIS_URL"),
    "llm-proxy": ("llm", "LLM_PROXY_URL=http://llm-proxy:4000"),
}


def documented_paths(edges: tuple[Edge, ...]) -> tuple[Path, ...]:
    """The graph's in-namespace edges as checks (the ingress controller's edges are
    test_ingress.py's); an edge into a target without a way to exercise it is an error at
    collection, never a silently dropped path."""
    paths = []
    for edge in edges:
        if edge.source == INGRESS_CONTROLLER:
            continue
        if edge.target not in HOW:
            raise ValueError(f"no check for the graph's edge {edge.describe()}: add it to HOW")
        paths.append(Path(edge.source, edge.target, *HOW[edge.target]))
    return tuple(paths)


PATHS = documented_paths(GRAPH.allowed())


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


@dataclass(frozen=True)
class Source:
    """Who opens a path: the labels of its pods and of its namespace."""

    labels: dict[str, str]
    namespace_labels: dict[str, str]
    same_namespace: bool


def ingress_controller_source(core: client.CoreV1Api) -> Source:
    """The ingress controller as a source: its namespace's labels and its controller pod's
    (the standard ingress-nginx labels when its pods cannot be listed)."""
    ns = DEFAULT_INGRESS_NAMESPACE
    labels = {
        "app.kubernetes.io/name": "ingress-nginx",
        "app.kubernetes.io/component": "controller",
    }
    try:
        pods = core.list_namespaced_pod(ns).items
    except ApiException:
        pods = []
    found = [p for p in pods if (p.metadata.labels or {}).get("app.kubernetes.io/component")]
    if found or pods:
        labels = dict((found or pods)[0].metadata.labels or {})
    return Source(labels, namespace_labels(core, ns), same_namespace=False)


def policy_verdict(
    policies: list[client.V1NetworkPolicy],
    edge: Edge,
    endpoints: dict[str, Endpoint],
    sources: dict[str, Source],
) -> tuple[bool, list[str]]:
    """Would the policies admit ``edge`` (its source's pods to its target's port)?"""
    target, source = endpoints[edge.target], sources[edge.source]
    return ingress_verdict(
        policies,
        target.labels,
        target.target_port,
        target.port_name,
        source.labels,
        source.namespace_labels,
        same_namespace=source.same_namespace,
    )


def policy_problems(
    policies: list[client.V1NetworkPolicy],
    endpoints: dict[str, Endpoint],
    sources: dict[str, Source],
) -> list[str]:
    """Where the policies and the guide's graph disagree: a forbidden path some policy
    admits (or that no policy covers: no default deny), a graph path none admits."""
    problems = []
    for edge in GRAPH.forbidden():
        admitted, selecting = policy_verdict(policies, edge, endpoints, sources)
        if admitted:
            # Name the policies whose own rules admit it (each judged alone).
            by = [
                p.metadata.name
                for p in policies
                if policy_verdict([p], edge, endpoints, sources) == (True, [p.metadata.name])
            ]
            why = (
                f"admitted by a rule of {', '.join(by or selecting)}"
                if selecting
                else f"no policy selects {edge.target} (no default deny)"
            )
            problems.append(f"forbidden path {edge.describe()}: {why}")
    for edge in GRAPH.allowed():
        admitted, selecting = policy_verdict(policies, edge, endpoints, sources)
        if not admitted:
            problems.append(
                f"guide path {edge.describe()} is admitted by no rule of "
                f"{', '.join(selecting) or 'the policies'}"
            )
    return problems


@pytest.mark.requirement(
    "5.2/policy-admits: the NetworkPolicies admit the guide's paths and no other"
)
def test_policies_admit_only_the_guide_paths(
    codelab_stack: StackInfo,
    core_v1: client.CoreV1Api,
    network_policies: list[client.V1NetworkPolicy],
) -> None:
    """Judged on the namespace's NetworkPolicy objects, so it needs no enforcing network
    plugin: every path of the guide's graph (manifests/README.md) is admitted, and every
    other ordered pair of components (the ingress controller to any but the gateway and
    auth-service included) is admitted by no policy. A target that no policy selects (no
    default deny) admits every path into it; the failure names the path and the policies."""
    ns = codelab_stack.namespace
    ns_labels = namespace_labels(core_v1, ns)
    endpoints = {name: service_endpoint(core_v1, ns, name, port) for name, port in SERVICES.items()}
    sources = {
        name: Source(dict(endpoint.labels), ns_labels, same_namespace=True)
        for name, endpoint in endpoints.items()
    }
    sources[INGRESS_CONTROLLER] = ingress_controller_source(core_v1)
    names = sorted(p.metadata.name for p in network_policies) or ["none"]
    problems = policy_problems(network_policies, endpoints, sources)
    assert not problems, (
        f"the NetworkPolicies of {ns} ({', '.join(names)}) do not match the guide's graph "
        f"({len(problems)} paths):\n" + "\n".join(problems)
    )


@pytest.mark.requirement("5.2/network-policies: a path the guide forbids is refused")
def test_forbidden_paths_are_refused(
    codelab_stack: StackInfo,
    core_v1: client.CoreV1Api,
    pod_exec: Exec,
    network_policies: list[client.V1NetworkPolicy],
) -> None:
    """Enforcement: from every CodeLab source pod, a TCP connection on a path the guide's
    graph forbids fails, while the same source still reaches its graph paths. Whether the
    network plugin enforces policies at all is told by a path the policies themselves
    refuse: when that one connects, the plugin does not enforce and the test skips (what
    the policies say is test_policies_admit_only_the_guide_paths's verdict)."""
    ns = codelab_stack.namespace
    if not network_policies:
        pytest.skip(
            f"namespace {ns} has no NetworkPolicies: nothing to enforce "
            "(test_policies_admit_only_the_guide_paths fails for it)"
        )
    ns_labels = namespace_labels(core_v1, ns)
    endpoints = {name: service_endpoint(core_v1, ns, name, port) for name, port in SERVICES.items()}
    pods = {source: source_pod(core_v1, ns, source) for source in PYTHON_SOURCES}
    forbidden = [e for e in GRAPH.forbidden() if e.source in pods]
    refused_by_policy = []
    for edge in forbidden:
        ok, selecting = admits(
            network_policies, endpoints[edge.target], pods[edge.source], ns_labels
        )
        if not ok:
            refused_by_policy.append((edge, selecting))
    if not refused_by_policy:
        pytest.skip(
            f"the NetworkPolicies of {ns} refuse no path a CodeLab pod could try, so enforcement "
            "cannot be told (test_policies_admit_only_the_guide_paths fails for it)"
        )
    probe, selecting = refused_by_policy[0]
    target = f"{probe.target}:{probe.port}"
    ok, detail = run_check(pod_exec, pods[probe.source], "tcp", f"TARGET={target}")
    if ok:
        pytest.skip(
            "the network plugin does not enforce NetworkPolicies: "
            f"pod/{pods[probe.source].metadata.name} connected to {target}, which no policy "
            f"admits (policies selecting it: {', '.join(selecting)})"
        )
    failures = []
    for edge in forbidden:
        if edge == probe:
            continue
        target = f"{edge.target}:{edge.port}"
        ok, detail = run_check(pod_exec, pods[edge.source], "tcp", f"TARGET={target}")
        if ok:
            failures.append(
                f"pod/{pods[edge.source].metadata.name} -> {target} connected ({detail}): "
                "the guide forbids it"
            )
    for edge in GRAPH.allowed():
        if edge.source not in pods:
            continue
        target = f"{edge.target}:{edge.port}"
        ok, detail = run_check(pod_exec, pods[edge.source], "tcp", f"TARGET={target}")
        if not ok:
            failures.append(
                f"pod/{pods[edge.source].metadata.name} -> {target} (a guide path) failed: {detail}"
            )
    assert not failures, "NetworkPolicies not honoured:\n" + "\n".join(failures)
