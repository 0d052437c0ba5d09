"""The TLS Secret the gate generates: a chain issued like production's, root kept for clients."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from pytest_codelab.deploy.secrets import (
    CA_KEY,
    MIN_MASKED,
    TLS_SECRET,
    Secret,
    generate_secrets,
    issue_tls,
    mask,
    secret_values,
)


def _certificates(pem: bytes) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(pem)


def _tls_data(**kwargs: Any) -> dict[str, bytes]:
    secret = next(s for s in generate_secrets(**kwargs) if s["metadata"]["name"] == TLS_SECRET)
    assert secret["type"] == "kubernetes.io/tls"
    return {k: base64.b64decode(v) for k, v in secret["data"].items()}


def test_the_chain_runs_root_intermediate_leaf() -> None:
    issued = issue_tls("gate.test")
    leaf, intermediate = _certificates(issued.chain)
    (root,) = _certificates(issued.root)
    leaf.verify_directly_issued_by(intermediate)
    intermediate.verify_directly_issued_by(root)
    root.verify_directly_issued_by(root)
    constraints = [
        c.extensions.get_extension_for_class(x509.BasicConstraints).value
        for c in (root, intermediate, leaf)
    ]
    assert [(b.ca, b.path_length) for b in constraints] == [(True, 1), (True, 0), (False, None)]
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["gate.test"]
    key = serialization.load_pem_private_key(issued.key, password=None)
    assert key.public_key() == leaf.public_key()


def test_an_address_goes_into_the_san_as_an_ip() -> None:
    (leaf, _) = _certificates(issue_tls("172.31.254.2").chain)
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["172.31.254.2"]


def test_each_deployment_gets_its_own_ca() -> None:
    assert issue_tls("a.test").root != issue_tls("a.test").root


def test_the_secret_serves_the_chain_and_publishes_the_root() -> None:
    data = _tls_data(ingress_host="gate.test")
    assert set(data) == {"tls.crt", "tls.key", CA_KEY}
    leaf, intermediate = _certificates(data["tls.crt"])
    (root,) = _certificates(data[CA_KEY])
    intermediate.verify_directly_issued_by(root)
    assert b"PRIVATE KEY" in data["tls.key"] and b"PRIVATE KEY" not in data[CA_KEY]


def test_a_provided_certificate_is_kept_with_or_without_its_root() -> None:
    issued = issue_tls("real.test")
    given = {"tls.crt": issued.chain.decode(), "tls.key": issued.key.decode()}
    assert _tls_data(provided={TLS_SECRET: given}) == {
        "tls.crt": issued.chain,
        "tls.key": issued.key,
    }
    with_root = {**given, CA_KEY: issued.root.decode()}
    assert _tls_data(provided={TLS_SECRET: with_root})[CA_KEY] == issued.root
    with pytest.raises(ValueError, match="needs both tls.crt and tls.key"):
        generate_secrets(provided={TLS_SECRET: {"tls.crt": given["tls.crt"]}})


# --------------------------------------------------------------------------- masking


def test_secret_values_are_every_generated_value_raw_and_base64() -> None:
    objects = generate_secrets(ingress_host="h.example.com")
    values = secret_values(objects)
    by_name = {o["metadata"]["name"]: o["data"] for o in objects}
    pg = by_name["postgres-secret"]
    password = base64.b64decode(pg["password"]).decode()
    assert {password, pg["password"], base64.b64decode(pg["connection-string"]).decode()} <= values
    assert base64.b64decode(pg["username"]).decode() not in values  # a user name is no secret
    tls = by_name["codelab-tls"]
    key_lines = base64.b64decode(tls["tls.key"]).decode().splitlines()
    assert {line for line in key_lines if len(line) >= MIN_MASKED} <= values
    assert tls["tls.crt"] not in values and tls["ca.crt"] not in values
    assert all(len(v) >= MIN_MASKED for v in values)


def test_mask_replaces_the_longest_value_first() -> None:
    values = {"hunter2-password", "postgresql://u:hunter2-password@db/x", "short"}
    text = "url postgresql://u:hunter2-password@db/x and hunter2-password; short stays"
    assert mask(text, values) == "url *** and ***; short stays"
    assert mask(text, set()) == text


def test_a_secret_reads_as_its_value_but_prints_masked() -> None:
    value = Secret("hunter2-password")
    assert value == "hunter2-password" and f"{value}" == "hunter2-password"
    assert repr(value) == "'***'" and repr({"k": value}) == "{'k': '***'}"
