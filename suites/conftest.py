"""Fixtures of the cluster suites: the CodeLab Ingress as a traffic Target, an API token."""

from __future__ import annotations

import functools
import urllib.parse
from collections.abc import Callable

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from pytest_codelab import traffic
from pytest_codelab.credentials import oauth_client_id, oauth_client_secret, secret_value
from pytest_codelab.settings import Settings
from pytest_codelab.stack import StackInfo

INGRESS = "codelab-ingress"


@pytest.fixture(scope="session")
def codelab_ingress(codelab_stack: StackInfo, k8s_client: client.ApiClient) -> client.V1Ingress:
    """The live Ingress ``codelab-ingress`` of the namespace under test."""
    try:
        return client.NetworkingV1Api(k8s_client).read_namespaced_ingress(
            INGRESS, codelab_stack.namespace
        )
    except ApiException as exc:
        pytest.skip(f"ingress/{INGRESS} in {codelab_stack.namespace}: HTTP {exc.status}")


def ingress_conflicts(api: client.ApiClient, ingress: client.V1Ingress, host: str) -> list[str]:
    """Other Ingresses of the cluster that claim ``host`` (the controller may route the
    host's requests to them); [] when they cannot be listed."""
    try:
        items = client.NetworkingV1Api(api).list_ingress_for_all_namespaces().items
    except ApiException:
        return []
    me = (ingress.metadata.namespace, ingress.metadata.name)
    return [
        f"ingress/{i.metadata.name} in {i.metadata.namespace}"
        for i in items
        if (i.metadata.namespace, i.metadata.name) != me
        and any(r.host == host for r in (i.spec.rules or []))
    ]


@pytest.fixture(scope="session")
def ingress_target(
    codelab_stack: StackInfo,
    codelab_ingress: client.V1Ingress,
    codelab_settings: Settings,
    core_v1: client.CoreV1Api,
    k8s_client: client.ApiClient,
) -> traffic.Target:
    """Where the Ingress answers (run's ingress URL, else the Ingress status address), with
    Host/SNI = --codelab-ingress-host (or the Ingress's own host when its rules name another)
    and the TLS secret's certificate trusted. When the controller redirects HTTP to HTTPS
    (ssl-redirect), the https address is used."""
    base = codelab_stack.ingress_url
    if not base:
        lbs = codelab_ingress.status.load_balancer.ingress if codelab_ingress.status else None
        address = next((lb.ip or lb.hostname for lb in lbs or [] if lb.ip or lb.hostname), None)
        if address is None:
            pytest.skip(
                f"no ingress address: pass --codelab-ingress-url, or let the controller "
                f"publish one in ingress/{INGRESS} status"
            )
        base = f"http://{address}"
    rule_hosts = [r.host for r in (codelab_ingress.spec.rules or []) if r.host]
    host = codelab_stack.ingress_host or codelab_settings.ingress_host
    if rule_hosts and host not in rule_hosts:
        host = rule_hosts[0]  # the deployment under test serves another host
    ca_pem = None
    for tls in (codelab_ingress.spec.tls if codelab_ingress.spec else None) or []:
        if host in (tls.hosts or []) and tls.secret_name:
            ca_pem = secret_value(core_v1, codelab_stack.namespace, tls.secret_name, "tls.crt")
    conflicts = ingress_conflicts(k8s_client, codelab_ingress, host)
    if conflicts:
        pytest.fail(
            f"host {host} of ingress/{INGRESS} in {codelab_stack.namespace} is also claimed by "
            f"{', '.join(conflicts)}: requests cannot be attributed; give each deployment its "
            "own --codelab-ingress-host",
            pytrace=False,
        )
    target = traffic.Target(base.rstrip("/"), host=host, ca_pem=ca_pem)
    first = traffic.request(target, "GET", "/oauth/verify", expect=lambda r: True)
    location = first.headers.get("location", "")
    if target.scheme == "http" and first.status in (301, 302, 307, 308):
        redirect = urllib.parse.urlsplit(location)
        if redirect.scheme == "https":
            port = f":{redirect.port}" if redirect.port else ""
            target = traffic.Target(f"https://{target.address}{port}", host=host, ca_pem=ca_pem)
    return target


@pytest.fixture(scope="session")
def api_token(
    ingress_target: traffic.Target,
    codelab_stack: StackInfo,
    core_v1: client.CoreV1Api,
    apps_v1: client.AppsV1Api,
) -> str:
    """A bearer token from auth-service (client credentials through the Ingress, the client
    secret read from ``oauth-secret``)."""
    ns = codelab_stack.namespace
    secret = oauth_client_secret(core_v1, ns)
    client_id = oauth_client_id(apps_v1, core_v1, ns)
    form = urllib.parse.urlencode(
        {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    )
    result = traffic.request(
        ingress_target,
        "POST",
        "/oauth/token",
        body=form.encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    token = result.get("access_token")
    assert result.ok and token, (
        f"POST /oauth/token through {ingress_target.describe()} gave no token: {result.describe()}"
    )
    return str(token)


@pytest.fixture(scope="session")
def ingress_conflict_check(
    ingress_target: traffic.Target, codelab_ingress: client.V1Ingress, k8s_client: client.ApiClient
) -> Callable[[], list[str]]:
    """``check()`` -> other Ingresses claiming the target's host now (for failure messages)."""
    return functools.partial(
        ingress_conflicts, k8s_client, codelab_ingress, ingress_target.server_name
    )
