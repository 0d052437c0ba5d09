"""Fixtures of the cluster suites: the CodeLab Ingress, its client, an API token."""

from __future__ import annotations

import functools
from collections.abc import Callable

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from pytest_codelab.clients.ingress import IngressClient, Result
from pytest_codelab.clients.tls import Trust
from pytest_codelab.deploy.credentials import issuer_root, oauth_client_id, oauth_client_secret
from pytest_codelab.deploy.manifests import INGRESS_NAME
from pytest_codelab.deploy.secrets import CA_KEY
from pytest_codelab.k8s import ingresses
from pytest_codelab.k8s.stack import StackInfo
from pytest_codelab.k8s.waiting import Timeouts, try_until
from pytest_codelab.providers.base import ClusterHandle
from pytest_codelab.scenarios import certificates
from pytest_codelab.settings import Settings


@pytest.fixture(scope="session")
def codelab_ingress(codelab_stack: StackInfo, k8s_client: client.ApiClient) -> client.V1Ingress:
    """The live Ingress ``codelab-ingress`` of the namespace under test."""
    try:
        return client.NetworkingV1Api(k8s_client).read_namespaced_ingress(
            INGRESS_NAME, codelab_stack.namespace
        )
    except ApiException as exc:
        pytest.skip(f"ingress/{INGRESS_NAME} in {codelab_stack.namespace}: HTTP {exc.status}")


@pytest.fixture(scope="session")
def ingress_target(
    codelab_stack: StackInfo,
    codelab_ingress: client.V1Ingress,
    codelab_settings: Settings,
    codelab_timeouts: Timeouts,
    codelab_trust: Trust,
    core_v1: client.CoreV1Api,
    k8s_client: client.ApiClient,
    codelab_cluster: ClusterHandle,
) -> IngressClient:
    """The client of the stack through its Ingress: the run's ingress URL, else the Ingress
    status address, with Host/SNI = --codelab-ingress-host (or the Ingress's own host when its
    rules name another). HTTPS is verified like a client would, chain and host name, against
    the system CAs, --codelab-ca-file and the issuer root of the host's TLS Secret (``ca.crt``;
    the served certificate itself is never trusted). When the controller redirects HTTP to
    HTTPS (ssl-redirect), the https address is used."""
    base = codelab_stack.ingress_url or None
    if base is None:
        address = ingresses.published_address(codelab_ingress)
        if address is None:
            pytest.skip(
                f"no ingress address: pass --codelab-ingress-url, or let the controller "
                f"publish one in ingress/{INGRESS_NAME} status"
            )
        base = f"http://{address}"
    host = ingresses.served_host(
        codelab_ingress, codelab_stack.ingress_host or codelab_settings.ingress_host
    )
    secret = ingresses.tls_secret(codelab_ingress, host)
    trust = codelab_trust
    if secret:
        certificates.wait_issued(k8s_client, codelab_stack.namespace, secret, codelab_timeouts)
        root = issuer_root(core_v1, codelab_stack.namespace, secret)
        source = f"secret/{secret} {CA_KEY}"
        if not root:  # an ACME issuer's Secret has no ca.crt: its root is published
            root = certificates.published_root(k8s_client, codelab_cluster.issuer_root_proxy)
            source = "the ACME issuer's published root"
        try:
            trust = trust.adding(root, source)
        except ValueError as exc:
            pytest.fail(f"issuer root of {host}: {exc}", pytrace=False)
    conflicts = ingresses.conflicts(k8s_client, codelab_ingress, host)
    if conflicts:
        pytest.fail(
            f"host {host} of ingress/{INGRESS_NAME} in {codelab_stack.namespace} is also claimed "
            f"by {', '.join(conflicts)}: requests cannot be attributed; give each deployment its "
            "own --codelab-ingress-host",
            pytrace=False,
        )
    ingress = IngressClient(
        base.rstrip("/"), host=host, trust=trust, timeout=codelab_timeouts.request
    )
    return ingress.following_https_redirect("/oauth/verify")


@pytest.fixture(scope="session")
def api_token(
    ingress_target: IngressClient,
    codelab_stack: StackInfo,
    core_v1: client.CoreV1Api,
    apps_v1: client.AppsV1Api,
    codelab_timeouts: Timeouts,
) -> str:
    """A bearer token from auth-service: client credentials through the Ingress (the client
    id auth-service expects, the secret read from ``oauth-secret``), once it answers."""
    ns = codelab_stack.namespace
    secret = oauth_client_secret(core_v1, ns)
    client_id = oauth_client_id(apps_v1, core_v1, ns)
    answers: list[Result] = []

    def answered() -> tuple[bool, str]:
        answers.append(ingress_target.oauth_token(client_id, secret))
        return answers[-1].ok, answers[-1].describe()

    try_until(answered, timeout=codelab_timeouts.http)  # the verdict is below
    result = answers[-1]
    token = result.get("access_token")
    assert result.ok and token, (
        f"POST /oauth/token through {ingress_target.describe()} gave no token: {result.describe()}"
    )
    assert result.get("token_type") == "Bearer", f"token type {result.get('token_type')!r}"
    return str(token)


@pytest.fixture(scope="session")
def ingress_conflict_check(
    ingress_target: IngressClient,
    codelab_ingress: client.V1Ingress,
    k8s_client: client.ApiClient,
) -> Callable[[], list[str]]:
    """``check()`` -> other Ingresses claiming the target's host now (for failure messages)."""
    return functools.partial(
        ingresses.conflicts, k8s_client, codelab_ingress, ingress_target.server_name
    )
