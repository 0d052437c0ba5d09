"""cert-manager with Pebble as its ACME server on the local cluster (issue 14).

``install(layout)`` imports the images (built from the binaries in the engine's bin
folder with ``images.recipes.static``), applies cert-manager's CRDs as the pinned module
ships them (``deploy/crds``), ``addons/cert-manager.yaml`` (controller, webhook,
cainjector, Pebble with its DNS stand-in) and the ClusterIssuer ``letsencrypt-prod`` the
guide's Ingress annotation names, pointed at Pebble's directory, then waits until the
issuer has registered its ACME account (Ready).

Pebble's directory is served over TLS with a certificate made here (its CA goes into the
issuer's ``caBundle``); the root it issues from is new at each Pebble start and published
on its management port (``/roots/0``), which the gate reads through the API server's
service proxy (:data:`ROOTS_SERVICE`, :data:`ROOTS_PATH`). Nothing here is a secret of the stack.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

from pytest_codelab.engine import build, extra, versions
from pytest_codelab.engine.errors import EngineError
from pytest_codelab.engine.images import loading
from pytest_codelab.engine.images.archive import host_file
from pytest_codelab.engine.images.builder import Recipe
from pytest_codelab.engine.images.recipes import static
from pytest_codelab.engine.layout import NODE_IP, Layout
from pytest_codelab.engine.paths import bin_dir as _bin_dir
from pytest_codelab.engine.progress import step
from pytest_codelab.engine.timeouts import Timeouts

ADDON = "cert-manager"
NAMESPACE = "cert-manager"
#: The ClusterIssuer the guide's Ingress annotation names (cert-manager.io/cluster-issuer).
ISSUER = "letsencrypt-prod"
#: Pebble's Service address: fixed, because cert-manager's controller uses it as its
#: nameserver (a pod's resolv.conf takes addresses only) and as its ACME directory host.
PEBBLE_IP = "10.96.0.14"
DIRECTORY_URL = f"https://{PEBBLE_IP}:14000/dir"
#: Where Pebble publishes the root it issues from: its management port, read through the
#: API server's service proxy (/api/v1/namespaces/NS/services/SERVICE/proxy/PATH).
ROOTS_SERVICE = "https:pebble:management"
ROOTS_PATH = "roots/0"
PEBBLE_TLS_SECRET = "pebble-tls"
#: The CRDs (plural.group prefix) the controller needs before it starts.
CRD_KINDS = (
    "certificates",
    "certificaterequests",
    "issuers",
    "clusterissuers",
    "challenges.acme",
    "orders.acme",
)

CONTROLLER_IMAGE = versions.CERT_MANAGER_CONTROLLER_IMAGE
WEBHOOK_IMAGE = versions.CERT_MANAGER_WEBHOOK_IMAGE
CAINJECTOR_IMAGE = versions.CERT_MANAGER_CAINJECTOR_IMAGE
ACMESOLVER_IMAGE = versions.CERT_MANAGER_ACMESOLVER_IMAGE
PEBBLE_IMAGE = versions.PEBBLE_IMAGE
#: image -> binary (in the engine's bin folder) it is made of.
BINARIES = {
    CONTROLLER_IMAGE: "controller-binary",
    WEBHOOK_IMAGE: "webhook-binary",
    CAINJECTOR_IMAGE: "cainjector-binary",
    ACMESOLVER_IMAGE: "acmesolver-binary",
    PEBBLE_IMAGE: "pebble",
}


def image_recipes(bin_dir: Path | None = None) -> dict[str, Recipe]:
    """image name -> static recipe, each binary its entrypoint, run as nonroot; Pebble's
    image also holds pebble-challtestsrv."""
    b = bin_dir or _bin_dir()
    missing = [n for n in [*BINARIES.values(), "pebble-challtestsrv"] if not (b / n).is_file()]
    if missing:
        raise EngineError(
            f"cert-manager binaries missing in {b} ({', '.join(missing)}): run "
            "`codelab-cluster build --with cert-manager` first"
        )
    out = {
        image: static(image, b / binary, user="65532:65532")
        for image, binary in BINARIES.items()
        if image != PEBBLE_IMAGE
    }
    out[PEBBLE_IMAGE] = static(
        PEBBLE_IMAGE,
        b / "pebble",
        user="65532:65532",
        extra=(host_file("pebble-challtestsrv", b / "pebble-challtestsrv", 0o755),),
    )
    return out


def load_images(layout: Layout, timeouts: Timeouts) -> list[str]:
    """Import the five images into the cluster's containerd (skipped when current)."""
    return loading.load_recipes(layout, image_recipes(layout.bin), timeouts)


def crds() -> str:
    """cert-manager's CRDs from the pinned module's ``deploy/crds`` (the module proxy's copy)."""
    component = next(c for c in versions.COMPONENTS if c.name == ADDON)
    info = build.download(component.module, component.version, build.go_env(component))
    folder = Path(info["Dir"]) / "deploy" / "crds"
    files = sorted(folder.glob("*.yaml"))
    if not files:
        raise EngineError(f"no CRDs in {folder}")
    return "\n---\n".join(f.read_text() for f in files)


def substitutions() -> dict[str, str]:
    """Values of the placeholders in cert-manager.yaml."""
    return {
        "NAMESPACE": NAMESPACE,
        "CONTROLLER_IMAGE": CONTROLLER_IMAGE,
        "WEBHOOK_IMAGE": WEBHOOK_IMAGE,
        "CAINJECTOR_IMAGE": CAINJECTOR_IMAGE,
        "ACMESOLVER_IMAGE": ACMESOLVER_IMAGE,
        "PEBBLE_IMAGE": PEBBLE_IMAGE,
        "PEBBLE_IP": PEBBLE_IP,
        # Traefik listens on the control-plane node's ports 80 and 443 (addons/traefik.yaml).
        "INGRESS_IP": NODE_IP,
    }


def cluster_issuer(ca_bundle: bytes) -> dict[str, object]:
    """ClusterIssuer letsencrypt-prod: ACME at Pebble's directory, HTTP-01 through the
    ingress class the guide's Ingress uses."""
    return {
        "apiVersion": "cert-manager.io/v1",
        "kind": "ClusterIssuer",
        "metadata": {"name": ISSUER, "labels": {"component": ADDON}},
        "spec": {
            "acme": {
                "server": DIRECTORY_URL,
                "caBundle": base64.b64encode(ca_bundle).decode(),
                "privateKeySecretRef": {"name": f"{ISSUER}-account-key"},
                "solvers": [{"http01": {"ingress": {"ingressClassName": "nginx"}}}],
            }
        },
    }


def pebble_tls(layout: Layout, timeouts: Timeouts) -> tuple[str, bytes]:
    """Pebble's serving Secret (JSON) and its CA: the existing ones when an earlier install
    made them (the issuer's caBundle stays valid), else new ones."""
    ca = extra.secret_key(layout, NAMESPACE, PEBBLE_TLS_SECRET, "ca.crt", timeouts)
    if ca:
        return "", ca
    hosts = (PEBBLE_IP, "pebble", f"pebble.{NAMESPACE}", f"pebble.{NAMESPACE}.svc")
    made = extra.serving_certificate(layout.pki / "cert-manager", "pebble", hosts)
    data = {"tls.crt": made.cert, "tls.key": made.key, "ca.crt": made.ca}
    return extra.secret_json(NAMESPACE, PEBBLE_TLS_SECRET, data, ADDON), made.ca


def install(layout: Layout | None = None, *, timeout_scale: float = 1.0, load: bool = True) -> None:
    """Install cert-manager and Pebble and wait until ClusterIssuer letsencrypt-prod is
    Ready. Idempotent (server-side apply); ``load`` imports the images first."""
    t = Timeouts().scaled(timeout_scale)
    layout = layout or Layout.default()
    if load:
        with step("cert-manager images (controller, webhook, cainjector, acmesolver, pebble)") as s:
            s.note(f"{len(set(load_images(layout, t)))} names imported")
    with step("cert-manager CRDs"):
        extra.apply(layout, ADDON, crds(), t)
        names = " ".join(f"{kind}.cert-manager.io" for kind in CRD_KINDS)
        extra.wait(layout, ADDON, None, f"crd {names}", "condition=Established", t)
    with step("cert-manager controller, webhook, cainjector; Pebble"):
        docs = extra.template(ADDON, substitutions()).split("\n---\n")
        extra.apply(layout, ADDON, docs[0], t)  # the namespace first
        secret, ca = pebble_tls(layout, t)
        if secret:
            extra.apply(layout, ADDON, secret, t)
        extra.apply(layout, ADDON, "\n---\n".join(docs[1:]), t)
        for name in ("pebble", "cert-manager-cainjector", "cert-manager-webhook", "cert-manager"):
            extra.wait(layout, ADDON, NAMESPACE, f"deployment/{name}", "rollout", t)
    with step(f"ClusterIssuer {ISSUER} (Pebble's directory) Ready"):
        extra.apply_until_accepted(layout, ADDON, json.dumps(cluster_issuer(ca)), t)
        extra.wait(layout, ADDON, NAMESPACE, f"clusterissuer/{ISSUER}", "condition=Ready", t)


def uninstall(layout: Layout | None = None, *, timeout_scale: float = 1.0) -> None:
    """Remove what ``install`` made: the issuer, the webhooks, the namespace, the CRDs
    (with every Certificate), the binding. The gate then issues codelab-tls itself again."""
    t = Timeouts().scaled(timeout_scale)
    layout = layout or Layout.default()
    for args in (
        ("clusterissuer", ISSUER),
        ("validatingwebhookconfiguration", "cert-manager-webhook"),
        ("mutatingwebhookconfiguration", "cert-manager-webhook"),
        ("clusterrolebinding", "codelab-cert-manager"),
        ("namespace", NAMESPACE),
        ("crd", *(f"{kind}.cert-manager.io" for kind in CRD_KINDS)),
    ):
        extra.delete(layout, args, t)
