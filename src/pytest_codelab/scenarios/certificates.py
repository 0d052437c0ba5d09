"""cert-manager issuing the Ingress's TLS Secret, as the TLS suite and the stack see it.

Why here: the guide's Ingress carries ``cert-manager.io/cluster-issuer: letsencrypt-prod``;
where that ClusterIssuer exists, the certificate is cert-manager's to issue (the gate must not
pre-empt it with a Secret of its own), and what the suite checks is the issuance itself:
the Certificate Ready, from that issuer, served, renewed. Where cert-manager is absent the
checks are not made, and say so.

The issuer's root is what a client of the product trusts: Let's Encrypt's is among the
system CAs; a test ACME server (Pebble, on the local cluster) publishes its own, which the
cluster provider says where to read (``ClusterHandle.issuer_root_proxy``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from pytest_codelab.k8s.waiting import Timeouts, try_until

#: The Ingress annotation naming the ClusterIssuer (the guide's manifest carries it).
CLUSTER_ISSUER_ANNOTATION = "cert-manager.io/cluster-issuer"
GROUP, VERSION = "cert-manager.io", "v1"
#: Base seconds for a Certificate to become Ready: an ACME order with an HTTP-01 challenge
#: (cert-manager's self-check polls every 10 s; Pebble validates at once). Scaled.
CERTIFICATE_READY = 180.0


def annotated_issuer(objects: Iterable[Mapping[str, Any]]) -> tuple[str, str] | None:
    """(ClusterIssuer, TLS Secret) of the first Ingress that names an issuer and a TLS
    Secret in rendered objects; None when none does."""
    for obj in objects:
        if obj.get("kind") != "Ingress":
            continue
        meta = obj.get("metadata") or {}
        issuer = (meta.get("annotations") or {}).get(CLUSTER_ISSUER_ANNOTATION)
        tls = [t for t in (obj.get("spec") or {}).get("tls") or [] if t.get("secretName")]
        if issuer and tls:
            return str(issuer), str(tls[0]["secretName"])
    return None


def issued_by_cert_manager(
    api: client.ApiClient, objects: Iterable[Mapping[str, Any]]
) -> tuple[str, str] | None:
    """(ClusterIssuer, TLS Secret) when the rendered Ingress names a ClusterIssuer that
    exists in the cluster: cert-manager will issue that Secret, the gate must not."""
    named = annotated_issuer(objects)
    try:
        if named is None or cluster_issuer(api, named[0]) is None:
            return None
    except ApiException:  # no right to read ClusterIssuers: the gate issues its own
        return None
    return named


def cluster_issuer(api: client.ApiClient, name: str) -> dict[str, Any] | None:
    """The ClusterIssuer ``name``; None when it or cert-manager's API is absent."""
    try:
        obj = client.CustomObjectsApi(api).get_cluster_custom_object(
            GROUP, VERSION, "clusterissuers", name
        )
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return dict(obj)  # type: ignore[call-overload]


def certificate_for(api: client.ApiClient, namespace: str, secret: str) -> dict[str, Any] | None:
    """The Certificate writing Secret ``secret`` in ``namespace`` (cert-manager's
    ingress-shim names it after the Secret; any name is found by spec.secretName)."""
    try:
        listed: Any = client.CustomObjectsApi(api).list_namespaced_custom_object(
            GROUP, VERSION, namespace, "certificates"
        )
        items = listed["items"]
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    for item in items:
        if (item.get("spec") or {}).get("secretName") == secret:
            return dict(item)
    return None


def condition(obj: Mapping[str, Any] | None, kind: str) -> dict[str, Any]:
    """The status condition ``kind`` of a cert-manager object ({} when absent)."""
    for cond in ((obj or {}).get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind:
            return dict(cond)
    return {}


def is_ready(obj: Mapping[str, Any] | None) -> bool:
    return condition(obj, "Ready").get("status") == "True"


def describe(obj: Mapping[str, Any] | None) -> str:
    """A Certificate's conditions in one line, for "last seen" messages."""
    if obj is None:
        return "no Certificate yet"
    conds = ((obj.get("status") or {}).get("conditions")) or []
    shown = [
        f"{c.get('type')}={c.get('status')} ({c.get('reason')}: {c.get('message')})" for c in conds
    ]
    return "; ".join(shown) or "no conditions yet"


def wait_issued(api: client.ApiClient, namespace: str, secret: str, timeouts: Timeouts) -> None:
    """Wait (no verdict: the TLS suite gives it) until the Certificate writing ``secret``
    is Ready, when cert-manager issues it: until then the ingress serves its default
    certificate and every HTTPS check would fail for a reason that is not its own."""
    try:
        if certificate_for(api, namespace, secret) is None and not _shim_expected(api, namespace):
            return
    except ApiException:  # cert-manager's objects unreadable here: nothing to wait for
        return
    try_until(
        lambda: (
            is_ready(cert := certificate_for(api, namespace, secret)),
            describe(cert),
        ),
        timeout=timeouts.scale(CERTIFICATE_READY),
        interval=2,
    )


def _shim_expected(api: client.ApiClient, namespace: str) -> bool:
    """True when an Ingress of ``namespace`` names an existing ClusterIssuer (its
    Certificate may not be created yet)."""
    ingresses = client.NetworkingV1Api(api).list_namespaced_ingress(namespace).items
    for ing in ingresses:
        meta = ing.metadata or client.V1ObjectMeta()
        issuer = (meta.annotations or {}).get(CLUSTER_ISSUER_ANNOTATION)
        if issuer and cluster_issuer(api, issuer) is not None:
            return True
    return False


def request_renewal(api: client.ApiClient, namespace: str, name: str) -> None:
    """What ``cmctl renew`` does: the Issuing condition set True, so cert-manager issues
    a new certificate now rather than at its renewal time."""
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    cert: Any = client.CustomObjectsApi(api).get_namespaced_custom_object(
        GROUP, VERSION, namespace, "certificates", name
    )
    status = dict(cert.get("status") or {})
    conds = [c for c in status.get("conditions") or [] if c.get("type") != "Issuing"]
    conds.append(
        {
            "type": "Issuing",
            "status": "True",
            "reason": "ManuallyTriggered",
            "message": "Certificate re-issuance manually triggered by pytest-codelab",
            "lastTransitionTime": now,
        }
    )
    status["conditions"] = conds
    client.CustomObjectsApi(api).patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, "certificates", name, {"status": status}
    )


def published_root(api: client.ApiClient, proxy: tuple[str, str, str] | None) -> str:
    """The PEM root an ACME test server publishes, read through the API server's service
    proxy at ``proxy`` = (namespace, "scheme:service:port", path); "" without one or when
    it does not answer (then only the system CAs and --codelab-ca-file are trusted)."""
    if proxy is None:
        return ""
    namespace, service, path = proxy
    try:
        text = client.CoreV1Api(api).connect_get_namespaced_service_proxy_with_path(
            service, namespace, path
        )
    except ApiException:
        return ""
    return str(text) if "BEGIN CERTIFICATE" in str(text) else ""


@dataclass(frozen=True)
class Leaf:
    """What a client reads from a served certificate."""

    serial: int
    names: frozenset[str]
    not_after: dt.datetime
    issuer: str
    subject: str

    @classmethod
    def from_der(cls, der: bytes) -> Leaf:
        cert = x509.load_der_x509_certificate(der)
        try:
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            names = frozenset(san.get_values_for_type(x509.DNSName))
        except x509.ExtensionNotFound:
            names = frozenset()
        return cls(
            serial=cert.serial_number,
            names=names,
            not_after=cert.not_valid_after_utc,
            issuer=cert.issuer.rfc4514_string(),
            subject=cert.subject.rfc4514_string(),
        )

    def days_left(self, now: dt.datetime | None = None) -> float:
        now = now or dt.datetime.now(dt.UTC)
        return (self.not_after - now).total_seconds() / 86400


def root_subject(pem: str) -> str:
    """The subject of the first certificate of ``pem``."""
    return x509.load_pem_x509_certificate(pem.encode()).subject.rfc4514_string()
