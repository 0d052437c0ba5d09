"""Issue 5.2: in-cluster connectivity along the seed's architecture graph.

Every Service answers on its port by DNS name from a short-lived pod and has Ready
endpoints; the documented paths work when tried from the source pod itself with the
source's own configuration (URLs and keys from its environment, never printed); where
NetworkPolicies exist and the network plugin enforces them, a path they forbid is refused.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from pytest_codelab import podtools
from pytest_codelab.diagnostics import pod_summary
from pytest_codelab.safety import MANAGED_BY, MANAGED_BY_LABEL
from pytest_codelab.stack import StackInfo

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
#: Labels of podtools.probe_manifest pods.
PROBE_LABELS = {MANAGED_BY_LABEL: MANAGED_BY, "codelab.dev/role": "probe"}
CONNECT_TIMEOUT = 3

Exec = Callable[..., podtools.ExecResult]
Probe = Callable[..., podtools.ProbeResult]


@dataclass(frozen=True)
class Path:
    """An edge of the architecture graph and how to exercise it from the source pod."""

    source: str
    target: str
    check: str  # http | postgres | redis | llm (see CHECK_SCRIPT)
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

#: Runs in a source pod: ``python3 -c SCRIPT CHECK SETTING``; prints one JSON line
#: {"ok": bool, "detail": str}. Secret values from the environment are masked.
CHECK_SCRIPT = r"""
import json, os, re, socket, sys, urllib.parse, urllib.request
check, setting = sys.argv[1], sys.argv[2]
name, _, default = setting.partition("=")
value = os.environ.get(name) or default
SECRET = re.compile("KEY|SECRET|PASSWORD|TOKEN|URL")

def mask(text):
    text = str(text)
    for key, val in os.environ.items():
        if SECRET.search(key) and len(val) >= 6:
            parts = urllib.parse.urlsplit(val) if "://" in val else None
            if parts is not None and parts.password:
                text = text.replace(parts.password, "***")
            elif parts is None:
                text = text.replace(val, "***")
    return text

def http(url, headers=None):
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()

def run():
    if not value:
        return False, "%s is not set in the source container" % name
    if check == "tcp":
        host, _, port = value.rpartition(":")
        socket.create_connection((host, int(port)), timeout=%(timeout)d).close()
        return True, "connected to %s" % value
    if check == "http":
        status, body = http(value.rstrip("/") + "/health")
        return status == 200, "GET %s/health: HTTP %d %s" % (value, status, body[:200])
    if check == "postgres":
        import psycopg2
        conn = psycopg2.connect(value, connect_timeout=5)
        try:
            cur = conn.cursor()
            cur.execute("SELECT 1")
            return cur.fetchone()[0] == 1, "SELECT 1 via %s" % name
        finally:
            conn.close()
    if check == "redis":
        import redis
        password = os.environ.get("REDIS_PASSWORD")
        if urllib.parse.urlsplit(value).password:
            password = None
        pong = redis.Redis.from_url(value, password=password, socket_timeout=5).ping()
        return bool(pong), "PING via %s: %s" % (name, pong)
    if check == "llm":
        base = value.rstrip("/")
        status, body = http(base + "/health/liveliness")
        if status != 200:
            return False, "GET %s/health/liveliness: HTTP %d %s" % (base, status, body[:200])
        key = next((os.environ[k] for k in ("LLM_PROXY_API_KEY", "LITELLM_MASTER_KEY",
                    "OPENAI_API_KEY") if os.environ.get(k)), "")
        status, body = http(base + "/v1/models", {"Authorization": "Bearer " + key})
        model = os.environ.get("LLM_MODEL", "gpt-4")
        ids = [m.get("id") for m in json.loads(body).get("data", [])] if status == 200 else []
        return model in ids, "GET %s/v1/models with the proxy key: HTTP %d, models %s" % (
            base, status, ids or body[:200])
    return False, "unknown check " + check

try:
    ok, detail = run()
except Exception as exc:
    ok, detail = False, "%s: %s" % (type(exc).__name__, exc)
print(json.dumps({"ok": ok, "detail": mask(detail)}))
""".replace("%(timeout)d", str(CONNECT_TIMEOUT))


# ----------------------------------------------------------------- helpers


def is_ready(pod: client.V1Pod) -> bool:
    conditions = pod.status.conditions if pod.status else None
    return any(c.type == "Ready" and c.status == "True" for c in conditions or [])


def service_pods(core: client.CoreV1Api, namespace: str, service: str) -> list[client.V1Pod]:
    svc = core.read_namespaced_service(service, namespace)
    selector = ",".join(f"{k}={v}" for k, v in sorted((svc.spec.selector or {}).items()))
    pods = core.list_namespaced_pod(namespace, label_selector=selector).items
    return [p for p in pods if p.metadata.deletion_timestamp is None]


def source_pod(core: client.CoreV1Api, namespace: str, name: str) -> client.V1Pod:
    """A Ready pod of the Service/Deployment ``name`` (label ``app=<name>``)."""
    pods = [p for p in service_pods(core, namespace, name) if is_ready(p)]
    if not pods:
        summaries = "; ".join(map(pod_summary, service_pods(core, namespace, name)))
        pytest.fail(f"no Ready pod of {name} to run the check from: {summaries or 'no pods'}")
    return sorted(pods, key=lambda p: p.metadata.name)[0]


def run_check(pod_exec: Exec, pod: client.V1Pod, check: str, setting: str) -> tuple[bool, str]:
    """Run CHECK_SCRIPT in the pod's first container; (ok, what it saw)."""
    container = pod.spec.containers[0].name
    result = pod_exec(
        pod.metadata.name, ["python3", "-c", CHECK_SCRIPT, check, setting], container=container
    )
    try:
        answer = json.loads(result.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return False, f"exit {result.exit_code}: {result.stderr.strip()[:300]}"
    return bool(answer["ok"]), str(answer["detail"])


def endpoint_addresses(
    discovery: client.DiscoveryV1Api, namespace: str, service: str
) -> tuple[list[str], list[str]]:
    """(ready, not ready) endpoint target names of a Service, from its EndpointSlices."""
    ready, unready = [], []
    slices = discovery.list_namespaced_endpoint_slice(
        namespace, label_selector=f"kubernetes.io/service-name={service}"
    ).items
    for endpoint_slice in slices:
        for endpoint in endpoint_slice.endpoints or []:
            name = endpoint.target_ref.name if endpoint.target_ref else ",".join(endpoint.addresses)
            conditions = endpoint.conditions
            (unready if conditions and conditions.ready is False else ready).append(name)
    return ready, unready


# ----------------------------------------------------------------- NetworkPolicy evaluation


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
) -> tuple[bool, list[str]]:
    """Whether same-namespace ``source`` may open ``port`` on ``target`` under these
    policies (ingress side only), and the names of the policies that select the target."""
    selecting = [
        p
        for p in policies
        if selector_matches(p.spec.pod_selector, target_labels)
        and "Ingress" in (p.spec.policy_types or ["Ingress"])
    ]
    if not selecting:
        return True, []
    for policy in selecting:
        for rule in policy.spec.ingress or []:
            if not _port_matches(rule.ports, port, port_name):
                continue
            if not rule._from:
                return True, [p.metadata.name for p in selecting]
            for peer in rule._from:
                if peer.ip_block is not None:
                    continue
                ns_ok = peer.namespace_selector is None or selector_matches(
                    peer.namespace_selector, namespace_labels
                )
                pod_ok = peer.pod_selector is None or selector_matches(
                    peer.pod_selector, source_labels
                )
                if ns_ok and pod_ok:
                    return True, [p.metadata.name for p in selecting]
    return False, [p.metadata.name for p in selecting]


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
        pod.metadata.labels or {},
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
    pods = [p for p in service_pods(core, namespace, service) if is_ready(p)]
    assert pods, f"service/{service} has no Ready pods"
    pod = pods[0]
    svc = core.read_namespaced_service(service, namespace)
    svc_port = next((p for p in svc.spec.ports if p.port == port), None)
    assert svc_port is not None, f"service/{service} has no port {port}"
    target, name = svc_port.target_port or port, None
    for container in pod.spec.containers:
        for cport in container.ports or []:
            if cport.name == target or cport.container_port == target:
                target, name = cport.container_port, cport.name
    return Endpoint(service, port, int(target), name, pod.metadata.labels or {})


def namespace_labels(core: client.CoreV1Api, namespace: str) -> dict[str, str]:
    try:
        return dict(core.read_namespace(namespace).metadata.labels or {})
    except ApiException:
        return {"kubernetes.io/metadata.name": namespace}


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
        PROBE_LABELS,
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
