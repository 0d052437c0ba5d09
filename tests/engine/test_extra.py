"""Helpers of the optional add-ons: serving certificates and Secrets."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from cryptography import x509

from pytest_codelab.engine import extra


def test_serving_certificate_is_signed_by_its_ca_for_the_hosts(tmp_path: Path) -> None:
    made = extra.serving_certificate(tmp_path, "pebble", ("10.96.0.14", "pebble.ns.svc"))
    cert = x509.load_pem_x509_certificate(made.cert)
    ca = x509.load_pem_x509_certificate(made.ca)
    cert.verify_directly_issued_by(ca)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["pebble.ns.svc"]
    assert [str(i) for i in san.get_values_for_type(x509.IPAddress)] == ["10.96.0.14"]


def test_secret_json_encodes_every_key() -> None:
    obj = json.loads(extra.secret_json("ns", "s", {"a": b"x"}, "vpa"))
    assert obj["metadata"] == {"name": "s", "namespace": "ns", "labels": {"component": "vpa"}}
    assert base64.b64decode(obj["data"]["a"]) == b"x"
