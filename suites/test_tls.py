"""Issue 14: the TLS certificate of the Ingress, issued by cert-manager as the guide has it.

The guide's Ingress carries ``cert-manager.io/cluster-issuer: letsencrypt-prod`` and names
the TLS Secret ``codelab-tls``: cert-manager's ingress-shim makes a Certificate for it and
the ClusterIssuer's ACME server issues it through an HTTP-01 challenge answered through the
ingress controller. Checked here, like a client and an operator would: the Certificate
becomes Ready in bounded time, from the annotated issuer; the ingress serves exactly that
certificate; the served chain (leaf and intermediate) verifies against the issuer's root
alone (Let's Encrypt's among the system CAs on staging; on the local cluster Pebble's,
which it publishes); its names are the Ingress's TLS hosts; it is valid long enough; and a
renewal yields a new serial that the ingress serves with no failed request.

Where cert-manager or the annotated ClusterIssuer is absent, every check skips saying so:
the report shows the TLS-issuance promise as not checked, with that reason.
"""

from __future__ import annotations

import base64
import dataclasses
import ssl
import time
from dataclasses import dataclass
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from pytest_codelab.clients.ingress import IngressClient
from pytest_codelab.clients.tls import Trust, VerificationFailed
from pytest_codelab.clients.traffic import Traffic, running
from pytest_codelab.k8s.stack import StackInfo
from pytest_codelab.k8s.waiting import Timeouts, try_until
from pytest_codelab.providers.base import ClusterHandle
from pytest_codelab.scenarios import certificates
from pytest_codelab.scenarios.certificates import CLUSTER_ISSUER_ANNOTATION, Leaf

pytestmark = [pytest.mark.e2e, pytest.mark.cluster]

#: Least validity a served certificate must have left, in days. Why 30: cert-manager
#: renews at two thirds of a certificate's life by default, so a Let's Encrypt certificate
#: (90 days) it keeps renewed never has less than 30 days left; less means renewal stalls.
MIN_DAYS_LEFT = 30
#: Base seconds for a forced renewal to be issued and served (scaled like every deadline).
RENEWAL = 180.0
#: Requests that must succeed over fresh TLS connections once the new serial is served.
AFTER_RENEWAL = 5
#: The path requests go to while the certificate is replaced (auth-service answers 401).
TRAFFIC_PATH = "/oauth/verify"


@dataclass(frozen=True)
class Issuance:
    """Who issues the host's TLS Secret: the annotated ClusterIssuer, the Secret, the
    Certificate cert-manager made for it, and the root its chain must verify against."""

    issuer: str
    secret: str
    certificate: str
    root: str
    root_source: str


def _tls_secret_for(ingress: client.V1Ingress, host: str) -> str | None:
    for tls in (ingress.spec.tls if ingress.spec else None) or []:
        if host in (tls.hosts or []) and tls.secret_name:
            return str(tls.secret_name)
    return None


@pytest.fixture(scope="module")
def issuance(
    k8s_client: client.ApiClient,
    codelab_stack: StackInfo,
    codelab_ingress: client.V1Ingress,
    ingress_target: IngressClient,
    codelab_cluster: ClusterHandle,
    codelab_timeouts: Timeouts,
) -> Issuance:
    """What issues the ingress host's certificate; skips (not checked, with the reason)
    when the Ingress names no ClusterIssuer, or cert-manager or that issuer is absent."""
    meta = codelab_ingress.metadata or client.V1ObjectMeta()
    issuer = (meta.annotations or {}).get(CLUSTER_ISSUER_ANNOTATION)
    if not issuer:
        pytest.skip(f"ingress/{meta.name} has no {CLUSTER_ISSUER_ANNOTATION} annotation")
    secret = _tls_secret_for(codelab_ingress, ingress_target.server_name)
    if secret is None:
        pytest.skip(f"ingress/{meta.name} has no TLS section for {ingress_target.server_name}")
    try:
        found = certificates.cluster_issuer(k8s_client, issuer)
    except ApiException as exc:
        pytest.skip(f"cannot read ClusterIssuer {issuer}: HTTP {exc.status}")
    if found is None:
        pytest.skip(
            f"not checked: cert-manager or its ClusterIssuer {issuer} is absent from cluster "
            f"{codelab_cluster.name} (the local cluster has them with "
            "--codelab-local-addons=cert-manager)"
        )
    try:
        cert = _wait_certificate(k8s_client, codelab_stack.namespace, secret, codelab_timeouts)
    except ApiException as exc:
        pytest.skip(f"cannot read Certificates in {codelab_stack.namespace}: HTTP {exc.status}")
    root = certificates.published_root(k8s_client, codelab_cluster.issuer_root_proxy)
    source = "the ACME server's published root" if root else "system CAs and --codelab-ca-file"
    return Issuance(issuer, secret, cert["metadata"]["name"], root, source)


def _wait_certificate(
    api: client.ApiClient, namespace: str, secret: str, timeouts: Timeouts
) -> dict[str, Any]:
    """The Certificate for ``secret`` once cert-manager made it (it may still be issuing)."""
    seen: list[dict[str, Any] | None] = [None]

    def made() -> tuple[bool, str]:
        seen[0] = certificates.certificate_for(api, namespace, secret)
        return seen[0] is not None, certificates.describe(seen[0])

    try_until(made, timeout=timeouts.scale(certificates.CERTIFICATE_READY), interval=2)
    cert = seen[0]
    assert cert is not None, (
        f"cert-manager made no Certificate for secret/{secret} in {namespace} within "
        f"{timeouts.scale(certificates.CERTIFICATE_READY):.0f}s"
    )
    return cert


def _verifying(ingress_target: IngressClient, issuance: Issuance, trust: Trust) -> IngressClient:
    """The ingress over https trusting what a client of the product trusts: the system CAs,
    --codelab-ca-file and the issuer's published root; no intermediate, nothing of the
    Secret (so the served chain must carry its intermediate)."""
    return dataclasses.replace(
        ingress_target.https(), trust=trust.adding(issuance.root, issuance.root_source)
    )


def _served(target: IngressClient) -> bytes:
    try:
        return target.served_certificate()
    except VerificationFailed as exc:
        pytest.fail(str(exc), pytrace=False)


def _secret_leaf(core: client.CoreV1Api, namespace: str, name: str) -> bytes:
    data = core.read_namespaced_secret(name, namespace).data or {}
    chain = base64.b64decode(data.get("tls.crt") or "").decode()
    end = "-----END CERTIFICATE-----"
    if end not in chain:
        return b""
    return ssl.PEM_cert_to_DER_cert(chain[: chain.index(end) + len(end)])


@pytest.mark.requirement(
    "5.3/tls-issuance/ready: cert-manager issues the TLS Secret from the annotated issuer"
)
def test_certificate_is_ready_from_the_annotated_issuer(
    issuance: Issuance,
    k8s_client: client.ApiClient,
    codelab_stack: StackInfo,
    codelab_timeouts: Timeouts,
) -> None:
    """The Certificate for the Ingress's TLS Secret is Ready within a bounded time and was
    requested from the ClusterIssuer the Ingress annotation names."""
    ns = codelab_stack.namespace
    deadline = codelab_timeouts.scale(certificates.CERTIFICATE_READY)
    seen: list[dict[str, Any] | None] = [None]

    def ready() -> tuple[bool, str]:
        seen[0] = certificates.certificate_for(k8s_client, ns, issuance.secret)
        return certificates.is_ready(seen[0]), certificates.describe(seen[0])

    met, last = try_until(ready, timeout=deadline, interval=2)
    assert met, (
        f"certificate/{issuance.certificate} in {ns} not Ready within {deadline:.0f}s: {last}"
    )
    ref = (seen[0] or {}).get("spec", {}).get("issuerRef") or {}
    assert (ref.get("kind"), ref.get("name")) == ("ClusterIssuer", issuance.issuer), (
        f"certificate/{issuance.certificate} was issued by {ref.get('kind')}/{ref.get('name')}, "
        f"not ClusterIssuer/{issuance.issuer} named by {CLUSTER_ISSUER_ANNOTATION}"
    )


@pytest.mark.requirement(
    "5.3/tls-issuance/chain: the ingress serves the issued certificate; its chain verifies "
    "against the issuer's root"
)
def test_served_chain_verifies_against_the_issuer_root(
    issuance: Issuance,
    ingress_target: IngressClient,
    core_v1: client.CoreV1Api,
    codelab_stack: StackInfo,
    codelab_trust: Trust,
) -> None:
    """With only the issuer's root trusted (no intermediate, nothing from the Secret), the
    handshake with SNI = the host verifies: the ingress sends the intermediate, the leaf
    chains to the root, and it is the very certificate of the Secret cert-manager wrote.
    The leaf is not signed by the root itself: there is an intermediate between them."""
    target = _verifying(ingress_target, issuance, codelab_trust)
    served = _served(target)
    expected = _secret_leaf(core_v1, codelab_stack.namespace, issuance.secret)
    assert served == expected, (
        f"{target.describe()} served serial {Leaf.from_der(served).serial:x}, not the leaf of "
        f"secret/{issuance.secret} (serial "
        f"{Leaf.from_der(expected).serial if expected else 'none'})"
    )
    if issuance.root:
        leaf = Leaf.from_der(served)
        assert leaf.issuer != certificates.root_subject(issuance.root), (
            f"the leaf is signed by the root {leaf.issuer} directly: no intermediate"
        )


@pytest.mark.requirement("5.3/tls-issuance/names: the certificate names the Ingress's TLS hosts")
def test_certificate_names_are_the_ingress_hosts(
    issuance: Issuance,
    ingress_target: IngressClient,
    codelab_ingress: client.V1Ingress,
    codelab_trust: Trust,
) -> None:
    """The served leaf's DNS names are exactly the hosts of the Ingress's TLS section for
    the Secret (a name missing fails clients; an extra one was asked by someone else)."""
    leaf = Leaf.from_der(_served(_verifying(ingress_target, issuance, codelab_trust)))
    hosts = {
        h
        for tls in (codelab_ingress.spec.tls if codelab_ingress.spec else None) or []
        if tls.secret_name == issuance.secret
        for h in tls.hosts or []
    }
    assert leaf.names == hosts, (
        f"served certificate names {sorted(leaf.names)}; the Ingress's TLS hosts for "
        f"secret/{issuance.secret} are {sorted(hosts)}"
    )


@pytest.mark.requirement(
    f"5.3/tls-issuance/expiry: the served certificate has at least {MIN_DAYS_LEFT} days left"
)
def test_certificate_expiry_is_far_enough(
    issuance: Issuance, ingress_target: IngressClient, codelab_trust: Trust
) -> None:
    """The served certificate expires at least :data:`MIN_DAYS_LEFT` days from now."""
    leaf = Leaf.from_der(_served(_verifying(ingress_target, issuance, codelab_trust)))
    assert leaf.days_left() >= MIN_DAYS_LEFT, (
        f"the served certificate expires {leaf.not_after:%Y-%m-%d %H:%M} UTC, "
        f"{leaf.days_left():.1f} days from now (< {MIN_DAYS_LEFT})"
    )


@pytest.mark.disruptive
@pytest.mark.requirement(
    "5.3/tls-issuance/renewal: a renewal is served with a new serial and no failed request"
)
def test_renewal_is_served_without_a_failed_request(
    issuance: Issuance,
    ingress_target: IngressClient,
    k8s_client: client.ApiClient,
    codelab_stack: StackInfo,
    codelab_timeouts: Timeouts,
    codelab_trust: Trust,
) -> None:
    """A renewal forced as ``cmctl renew`` does yields a new serial; the ingress serves it
    (new handshakes see it) while requests over fresh TLS connections keep succeeding."""
    ns = codelab_stack.namespace
    client_ = _verifying(ingress_target, issuance, codelab_trust)
    before = Leaf.from_der(_served(client_)).serial
    deadline = codelab_timeouts.scale(RENEWAL)
    traffic = Traffic(
        client_, TRAFFIC_PATH, expect=lambda r: r.status == 401, keepalive=False, interval=0.2
    )
    with running(traffic, timeout=codelab_timeouts.http) as t:
        t.mark("renew")
        certificates.request_renewal(k8s_client, ns, issuance.certificate)
        started = time.monotonic()

        def served_new() -> tuple[bool, str]:
            serial = Leaf.from_der(_served(client_)).serial
            return serial != before, f"serving serial {serial:x} (before: {before:x})"

        met, last = try_until(served_new, timeout=deadline, interval=2)
        took = time.monotonic() - started
        # A few requests on the new certificate, with a deadline rather than a fixed pause.
        t.wait_for(len(t.results()) + AFTER_RENEWAL, codelab_timeouts.http)
    report = traffic.report()
    cert = certificates.certificate_for(k8s_client, ns, issuance.secret)
    assert met, (
        f"no new certificate served within {deadline:.0f}s of the renewal: {last}; "
        f"certificate/{issuance.certificate}: {certificates.describe(cert)}"
    )
    assert not report.failures, (
        f"{len(report.failures)} failed requests while the certificate was renewed "
        f"(new one served after {took:.0f}s): {report.describe()}"
    )
