"""Issue 5.3: the CodeLab Ingress, seen from outside the cluster.

Through the ingress address with the configured host: ``/api/v1/...`` reaches the gateway,
``/oauth/...`` reaches auth-service, other paths reach neither; TLS for the host is served
from the Ingress's TLS Secret; the expected ``proxy-body-size`` (the guide's 50m) is enforced.
Who answered is told by the services' ``X-Served-By`` header (the pod's hostname,
images/README.md).
"""

from __future__ import annotations

import base64
import hashlib
import ssl

import pytest
from kubernetes import client

from pytest_codelab.clients.ingress import IngressClient, Result
from pytest_codelab.clients.tls import VerificationFailed
from pytest_codelab.deploy.credentials import GATE_CLIENT_ID
from pytest_codelab.deploy.expected import Expectation
from pytest_codelab.deploy.quantity import parse_nginx_size
from pytest_codelab.k8s.services import service_pod_names
from pytest_codelab.k8s.stack import StackInfo
from pytest_codelab.providers.base import ClusterHandle

BODY_SIZE_ANNOTATION = "nginx.ingress.kubernetes.io/proxy-body-size"
#: How far under / over the limit the two uploads are.
BODY_MARGIN = 64 * 1024


def who(result: Result, pods: dict[str, set[str]]) -> str:
    """Which service answered (by X-Served-By), or 'neither'."""
    name = result.headers.get("x-served-by", "")
    return next((service for service, names in pods.items() if name in names), "neither")


@pytest.fixture
def backends(codelab_stack: StackInfo, core_v1: client.CoreV1Api) -> dict[str, set[str]]:
    ns = codelab_stack.namespace
    return {svc: service_pod_names(core_v1, ns, svc) for svc in ("gateway", "auth-service")}


# ----------------------------------------------------------------- routing


@pytest.mark.requirement("5.3/ingress: /api/v1/... reaches the gateway")
def test_api_path_reaches_gateway(
    ingress_target: IngressClient, backends: dict[str, set[str]]
) -> None:
    """``GET /api/v1/whoami`` without a token is answered by a gateway pod with 401 and
    ``WWW-Authenticate`` (the gateway's own answer, not the proxy's)."""
    result = ingress_target.request("GET", "/api/v1/whoami", expect=lambda r: True)
    assert who(result, backends) == "gateway", (
        f"/api/v1/whoami via {ingress_target.describe()} was not answered by a gateway pod "
        f"{sorted(backends['gateway'])}: {result.describe()}, headers {dict(result.headers)}"
    )
    assert result.status == 401 and "www-authenticate" in result.headers, result.describe()


@pytest.mark.requirement("5.3/ingress: /api/v1/... with a token reaches agent-runtime")
def test_api_path_with_token_reaches_agent_runtime(
    ingress_target: IngressClient,
    api_token: str,
    backends: dict[str, set[str]],
    codelab_stack: StackInfo,
    core_v1: client.CoreV1Api,
) -> None:
    """With a bearer token from /oauth/token, ``GET /api/v1/whoami`` goes ingress -> gateway
    -> agent-runtime: 200, served by a gateway pod, upstream an agent-runtime pod."""
    agents = service_pod_names(core_v1, codelab_stack.namespace, "agent-runtime")
    target = ingress_target.with_token(api_token)
    result = target.request("GET", "/api/v1/whoami")
    assert result.ok, f"/api/v1/whoami with a token: {result.describe()}"
    assert who(result, backends) == "gateway", f"not served by a gateway pod: {result.headers}"
    upstream = result.headers.get("x-upstream-served-by")
    assert upstream in agents and result.get("served_by") in agents, (
        f"/api/v1/whoami not answered by an agent-runtime pod {sorted(agents)}: "
        f"X-Upstream-Served-By {upstream}, body {result.json()}"
    )


@pytest.mark.requirement("5.3/ingress: /oauth/... reaches auth-service")
def test_oauth_path_reaches_auth_service(
    ingress_target: IngressClient, backends: dict[str, set[str]]
) -> None:
    """``GET /oauth/verify`` without a token and ``POST /oauth/token`` with a wrong client
    secret are answered by auth-service pods with 401."""
    verify = ingress_target.request("GET", "/oauth/verify", expect=lambda r: True)
    token = ingress_target.oauth_token(GATE_CLIENT_ID, "wrong")
    for result in (verify, token):
        assert who(result, backends) == "auth-service" and result.status == 401, (
            f"{result.method} {result.path} via {ingress_target.describe()}: expected 401 from "
            f"an auth-service pod {sorted(backends['auth-service'])}, got {result.describe()} "
            f"(X-Served-By {result.headers.get('x-served-by')})"
        )
    assert token.get("error") == "invalid_client", token.describe()


@pytest.mark.parametrize("path", ["/", "/health", "/version", "/admin", "/apis/v1/whoami"])
@pytest.mark.requirement("5.3/ingress: other paths reach neither service (404)")
def test_other_paths_reach_neither(
    path: str, ingress_target: IngressClient, backends: dict[str, set[str]]
) -> None:
    """Paths outside ``/api/v1`` and ``/oauth`` get 404 from the ingress, not an answer
    from the gateway or auth-service."""
    result = ingress_target.request("GET", path, expect=lambda r: r.status == 404)
    assert who(result, backends) == "neither", (
        f"{path} via {ingress_target.describe()} reached {who(result, backends)}: "
        f"{result.describe()}"
    )
    assert result.status == 404, result.describe()


# ----------------------------------------------------------------- TLS


@pytest.mark.requirement("5.3/tls: TLS for the host is served from the TLS Secret")
def test_tls_certificate_comes_from_the_secret(
    ingress_target: IngressClient,
    codelab_ingress: client.V1Ingress,
    codelab_stack: StackInfo,
    core_v1: client.CoreV1Api,
    backends: dict[str, set[str]],
) -> None:
    """On the https port with SNI = the ingress host, the certificate served is the first
    certificate of the Secret named in the Ingress's TLS section for that host, verified
    like a client would (chain up to the system CAs, the Secret's issuer root or
    --codelab-ca-file, and the host name), and an HTTPS request reaches auth-service."""
    host = ingress_target.server_name
    names = [
        tls.secret_name
        for tls in codelab_ingress.spec.tls or []
        if host in (tls.hosts or []) and tls.secret_name
    ]
    assert names, f"ingress/{codelab_ingress.metadata.name} has no TLS section for {host}"
    secret = core_v1.read_namespaced_secret(names[0], codelab_stack.namespace)
    chain = base64.b64decode((secret.data or {})["tls.crt"]).decode()
    first = chain[: chain.index("-----END CERTIFICATE-----") + len("-----END CERTIFICATE-----")]
    expected = ssl.PEM_cert_to_DER_cert(first)
    target = ingress_target.https()
    try:
        served = target.served_certificate()
    except VerificationFailed as exc:  # names the host, the reason and what was trusted
        pytest.fail(str(exc), pytrace=False)
    assert served == expected, (
        f"{target.describe()} served a certificate (SHA-256 {_fingerprint(served)}) that is "
        f"not secret/{names[0]}'s tls.crt (SHA-256 {_fingerprint(expected)})"
    )
    verified = target.request("GET", "/oauth/verify", expect=lambda r: r.status == 401)
    assert verified.ok and who(verified, backends) == "auth-service", (
        f"HTTPS request verified against {target.trust.describe()}: {verified.describe()}"
    )


def _fingerprint(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()[:16]


# ----------------------------------------------------------------- body size


@pytest.fixture
def body_limit(codelab_expected: Expectation, codelab_cluster: ClusterHandle) -> int:
    """The expected proxy-body-size in bytes: the guide's (``50m``) or --codelab-expect's,
    never the live annotation (a check that reads its limit from the Ingress under test
    passes whatever limit it has, or none). Skips when the expectation states no limit, or
    when the cluster's controller is known not to implement it (a gap of the test cluster,
    not of the deployment)."""
    figure = codelab_expected.ingress_annotations().get(BODY_SIZE_ANNOTATION)
    if figure is None:
        pytest.skip(f"the expectation states no {BODY_SIZE_ANNOTATION}: no limit to check")
    if BODY_SIZE_ANNOTATION in codelab_cluster.ingress_gaps:
        pytest.skip(f"{BODY_SIZE_ANNOTATION}: {codelab_cluster.ingress_gaps[BODY_SIZE_ANNOTATION]}")
    limit = parse_nginx_size(str(figure.value))
    if limit == 0:
        pytest.skip(f"{BODY_SIZE_ANNOTATION} is 0 ({figure.key}): no limit to check")
    return limit


@pytest.mark.slow
@pytest.mark.requirement("5.3/body-size: proxy-body-size passes bodies under it, 413 over it")
def test_body_size_limit(
    ingress_target: IngressClient, body_limit: int, backends: dict[str, set[str]]
) -> None:
    """A streamed body just under the expected limit passes: the ingress hands it to the
    gateway and it is not refused as too large (without a token the gateway reads it and
    answers 401). One just over the limit is refused by the ingress with 413 and never
    reaches the gateway. An Ingress with a lower limit (or none: ingress-nginx's default is
    1m) refuses the first; one with a higher limit, or none enforced, passes the second."""
    problems = []
    size = body_limit - BODY_MARGIN
    under = ingress_target.upload("/api/v1/sessions", size)
    if who(under, backends) != "gateway":
        problems.append(
            f"a {size}-byte body (limit {body_limit}) was not passed to the gateway: "
            f"{under.describe()}, X-Served-By {under.headers.get('x-served-by')}"
        )
    elif under.status == 413:
        problems.append(
            f"a {size}-byte body (limit {body_limit}) reached the gateway, which refused it as "
            f"too large: {under.describe()}"
        )
    size = body_limit + BODY_MARGIN
    over = ingress_target.upload("/api/v1/sessions", size)
    if over.status != 413 or who(over, backends) != "neither":
        reached = f"reached {who(over, backends)}; " if who(over, backends) != "neither" else ""
        problems.append(
            f"a {size}-byte body (limit {body_limit}) was not refused by the ingress with 413: "
            f"{reached}{over.describe()}, X-Served-By {over.headers.get('x-served-by')}"
        )
    assert not problems, f"{BODY_SIZE_ANNOTATION} not honoured:\n" + "\n".join(problems)
