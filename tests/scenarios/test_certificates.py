"""cert-manager's objects as the gate reads them, without a cluster."""

from __future__ import annotations

import datetime as dt
from typing import Any
from unittest import mock

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from kubernetes.client.exceptions import ApiException

from pytest_codelab.scenarios import certificates


def _ingress(annotations: dict[str, str], tls: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "kind": "Ingress",
        "metadata": {"name": "i", "annotations": annotations},
        "spec": {"tls": tls},
    }


def test_annotated_issuer_needs_both_the_annotation_and_a_tls_secret() -> None:
    ann = {certificates.CLUSTER_ISSUER_ANNOTATION: "letsencrypt-prod"}
    tls = [{"hosts": ["h"], "secretName": "codelab-tls"}]
    assert certificates.annotated_issuer([_ingress(ann, tls)]) == (
        "letsencrypt-prod",
        "codelab-tls",
    )
    assert certificates.annotated_issuer([_ingress({}, tls)]) is None
    assert certificates.annotated_issuer([_ingress(ann, [])]) is None
    assert certificates.annotated_issuer([{"kind": "Service"}]) is None


def test_issued_by_cert_manager_only_when_the_issuer_exists() -> None:
    ann = {certificates.CLUSTER_ISSUER_ANNOTATION: "letsencrypt-prod"}
    objects = [_ingress(ann, [{"hosts": ["h"], "secretName": "codelab-tls"}])]
    api = mock.Mock()
    with mock.patch.object(certificates, "cluster_issuer", return_value={"kind": "ClusterIssuer"}):
        assert certificates.issued_by_cert_manager(api, objects) == (
            "letsencrypt-prod",
            "codelab-tls",
        )
    with mock.patch.object(certificates, "cluster_issuer", return_value=None):
        assert certificates.issued_by_cert_manager(api, objects) is None


def test_conditions_and_readiness() -> None:
    cert = {
        "status": {
            "conditions": [
                {"type": "Ready", "status": "False", "reason": "Issuing", "message": "m"},
            ]
        }
    }
    assert not certificates.is_ready(cert)
    assert certificates.describe(cert) == "Ready=False (Issuing: m)"
    assert certificates.describe(None) == "no Certificate yet"
    cert["status"]["conditions"][0]["status"] = "True"
    assert certificates.is_ready(cert)


def test_published_root_is_empty_without_a_proxy_or_an_answer() -> None:
    assert certificates.published_root(mock.Mock(), None) == ""
    with mock.patch.object(certificates.client, "CoreV1Api") as core:
        core.return_value.connect_get_namespaced_service_proxy_with_path.side_effect = ApiException(
            status=503
        )
        assert certificates.published_root(mock.Mock(), ("ns", "https:pebble:m", "roots/0")) == ""
        core.return_value.connect_get_namespaced_service_proxy_with_path.side_effect = None
        pem = "-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n"
        core.return_value.connect_get_namespaced_service_proxy_with_path.return_value = pem
        assert certificates.published_root(mock.Mock(), ("ns", "https:pebble:m", "roots/0")) == pem


def test_request_renewal_sets_issuing_like_cmctl() -> None:
    api = mock.Mock()
    with mock.patch.object(certificates.client, "CustomObjectsApi") as objects:
        objects.return_value.get_namespaced_custom_object.return_value = {
            "status": {"conditions": [{"type": "Ready", "status": "True"}]}
        }
        certificates.request_renewal(api, "ns", "codelab-tls")
        patch = objects.return_value.patch_namespaced_custom_object_status.call_args.args
    conds = patch[-1]["status"]["conditions"]
    assert {c["type"]: c["status"] for c in conds} == {"Ready": "True", "Issuing": "True"}


def test_leaf_reads_names_serial_expiry() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "h")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(42)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=90))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("a.example")]), False)
        .sign(key, hashes.SHA256())
    )
    leaf = certificates.Leaf.from_der(cert.public_bytes(serialization.Encoding.DER))
    assert leaf.serial == 42 and leaf.names == {"a.example"}
    assert 89.9 < leaf.days_left() <= 90
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    assert certificates.root_subject(pem) == "CN=h"
