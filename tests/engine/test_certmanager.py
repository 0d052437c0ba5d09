"""The cert-manager add-on without a cluster: its manifest, images, issuer, CRDs."""

from __future__ import annotations

import base64
import ipaddress
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_codelab.deploy.schema import validate_object
from pytest_codelab.engine import certmanager, extra, versions
from pytest_codelab.engine.errors import EngineError
from pytest_codelab.engine.layout import NODE_IP, SERVICE_CIDR

Obj = dict[str, Any]


def _docs() -> list[Obj]:
    text = extra.template(certmanager.ADDON, certmanager.substitutions())
    return [d for d in yaml.safe_load_all(text) if d]


def _find(docs: list[Obj], kind: str, name: str) -> Obj:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def test_manifest_renders_and_validates_against_the_pinned_schema() -> None:
    docs = _docs()
    assert docs[0]["kind"] == "Namespace"  # applied first, alone
    for doc in docs:
        assert "${" not in json.dumps(doc), doc["metadata"]["name"]
        if doc["kind"] in ("Deployment", "Service", "ConfigMap", "ServiceAccount"):
            result = validate_object(doc)
            assert result.status == "valid", (doc["metadata"]["name"], result.errors)


def test_every_image_is_local_and_never_pulled() -> None:
    images = set()
    for doc in _docs():
        if doc["kind"] != "Deployment":
            continue
        for c in doc["spec"]["template"]["spec"]["containers"]:
            assert c["imagePullPolicy"] == "Never", c["name"]
            images.add(c["image"])
    assert images == set(certmanager.BINARIES) - {certmanager.ACMESOLVER_IMAGE}


def test_pebble_validates_for_real_through_the_ingress() -> None:
    """HTTP-01 as in production: Pebble never skips validation, and its DNS stand-in
    answers every name with the ingress address (Traefik's host ports)."""
    pod = _find(_docs(), "Deployment", "pebble")["spec"]["template"]["spec"]
    pebble, dns = pod["containers"]
    env = {e["name"]: e["value"] for e in pebble["env"]}
    assert env["PEBBLE_VA_ALWAYS_VALID"] == "0" and env["PEBBLE_VA_NOSLEEP"] == "1"
    assert pebble["args"][-1] == "127.0.0.1:8053"
    assert dns["args"][:2] == ["-defaultIPv4", NODE_IP]
    config = json.loads(_find(_docs(), "ConfigMap", "pebble-config")["data"]["pebble.json"])
    assert config["pebble"]["httpPort"] == 80


def test_the_controller_resolves_through_the_same_stand_in() -> None:
    """cert-manager's self-check GETs the challenge URL before Pebble does: it must resolve
    the ingress host the way Pebble does, hence the pebble Service as its nameserver."""
    pod = _find(_docs(), "Deployment", "cert-manager")["spec"]["template"]["spec"]
    assert pod["dnsPolicy"] == "None"
    assert pod["dnsConfig"]["nameservers"] == [certmanager.PEBBLE_IP]
    service = _find(_docs(), "Service", "pebble")
    assert service["spec"]["clusterIP"] == certmanager.PEBBLE_IP
    assert ipaddress.ip_address(certmanager.PEBBLE_IP) in ipaddress.ip_network(SERVICE_CIDR)
    args = pod["containers"][0]["args"]
    assert f"--acme-http01-solver-image={certmanager.ACMESOLVER_IMAGE}" in args


def test_cluster_issuer_is_the_guides_name_at_pebbles_directory() -> None:
    issuer = certmanager.cluster_issuer(b"PEM")
    assert issuer["metadata"]["name"] == "letsencrypt-prod"  # type: ignore[index]
    acme = issuer["spec"]["acme"]  # type: ignore[index]
    assert acme["server"] == f"https://{certmanager.PEBBLE_IP}:14000/dir"
    assert base64.b64decode(acme["caBundle"]) == b"PEM"
    assert acme["solvers"] == [{"http01": {"ingress": {"ingressClassName": "nginx"}}}]


def test_webhooks_get_their_ca_from_cainjector() -> None:
    docs = _docs()
    for kind in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"):
        hook = _find(docs, kind, "cert-manager-webhook")
        annotation = hook["metadata"]["annotations"]["cert-manager.io/inject-ca-from-secret"]
        assert annotation == "cert-manager/cert-manager-webhook-ca"


def test_image_recipes_name_the_missing_binaries(tmp_path: Path) -> None:
    with pytest.raises(EngineError, match="controller-binary.*--with cert-manager"):
        certmanager.image_recipes(tmp_path)


def test_image_recipes_make_one_image_per_binary(tmp_path: Path) -> None:
    for name in [*certmanager.BINARIES.values(), "pebble-challtestsrv"]:
        (tmp_path / name).write_bytes(b"\x7fELF")
    recipes = certmanager.image_recipes(tmp_path)
    assert set(recipes) == set(certmanager.BINARIES)
    assert recipes[versions.PEBBLE_IMAGE].tags == (versions.PEBBLE_IMAGE,)


def test_component_builds_every_binary_the_images_need() -> None:
    built = {
        Path(p).name
        for c in versions.COMPONENTS
        if c.addon == certmanager.ADDON
        for p in c.packages
    }
    assert built == {*certmanager.BINARIES.values(), "pebble-challtestsrv"}


@pytest.mark.skipif(shutil.which("go") is None, reason="needs go and the Go module proxy")
def test_crds_come_from_the_pinned_module() -> None:
    docs = [d for d in yaml.safe_load_all(certmanager.crds()) if d]
    names = {d["metadata"]["name"] for d in docs}
    assert names == {f"{k}.cert-manager.io" for k in certmanager.CRD_KINDS}
