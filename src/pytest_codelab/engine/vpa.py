"""The Vertical Pod Autoscaler on the local cluster (issue 14): recommender, updater,
admission controller.

Everything applied comes from the pinned module's ``deploy`` folder (the CRDs, the RBAC,
the three Deployments and the webhook Service), read through the module proxy's copy; the
Deployments are changed only where the local cluster needs it: images imported, never
pulled; smaller requests (the node is a laptop's); shorter loops, so that a recommendation
and an eviction happen within a gate run rather than within upstream's minutes. The
admission controller's serving certificate is made here (``vpa-tls-certs``, the files its
flags name); it registers its own MutatingWebhookConfiguration with that CA.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from pytest_codelab.engine import addons, build, extra, versions
from pytest_codelab.engine.errors import EngineError
from pytest_codelab.engine.images import loading
from pytest_codelab.engine.images.builder import Recipe
from pytest_codelab.engine.images.recipes import static
from pytest_codelab.engine.layout import Layout
from pytest_codelab.engine.paths import bin_dir as _bin_dir
from pytest_codelab.engine.progress import step
from pytest_codelab.engine.timeouts import Timeouts
from pytest_codelab.engine.waiting import wait_until

ADDON = "vpa"
NAMESPACE = "kube-system"
TLS_SECRET = "vpa-tls-certs"
WEBHOOK_CONFIG = "vpa-webhook-config"
#: image -> binary (in the engine's bin folder) it is made of.
BINARIES = {
    versions.VPA_RECOMMENDER_IMAGE: "recommender",
    versions.VPA_UPDATER_IMAGE: "updater",
    versions.VPA_ADMISSION_IMAGE: "admission-controller",
}
#: Upstream's files, in apply order.
FILES = (
    "vpa-v1-crd-gen.yaml",
    "vpa-rbac.yaml",
    "recommender-deployment.yaml",
    "updater-deployment.yaml",
    "admission-controller-service.yaml",
    "admission-controller-deployment.yaml",
)
#: Extra flags per container: a metrics sample every 15 s (upstream: 1 min) and an updater
#: loop every 15 s (upstream: 1 min); everything else is upstream's default.
FLAGS = {
    "recommender": ("--recommender-interval=15s",),
    "updater": ("--updater-interval=15s",),
    "admission-controller": (),
}
REQUESTS = {"cpu": "20m", "memory": "64Mi"}


def image_recipes(bin_dir: Path | None = None) -> dict[str, Recipe]:
    """image name -> static recipe (upstream runs them as nobody, 65534)."""
    b = bin_dir or _bin_dir()
    missing = [n for n in BINARIES.values() if not (b / n).is_file()]
    if missing:
        raise EngineError(
            f"VPA binaries missing in {b} ({', '.join(missing)}): run "
            "`codelab-cluster build --with vpa` first"
        )
    return {image: static(image, b / binary) for image, binary in BINARIES.items()}


def load_images(layout: Layout, timeouts: Timeouts) -> list[str]:
    """Import the three images into the cluster's containerd (skipped when current)."""
    return loading.load_recipes(layout, image_recipes(layout.bin), timeouts)


def deploy_folder() -> Path:
    """The pinned module's ``deploy`` folder (the module proxy's copy)."""
    component = next(c for c in versions.COMPONENTS if c.name == ADDON)
    info = build.download(component.module, component.version, build.go_env(component))
    return Path(info["Dir"]) / "deploy"


def localized(doc: dict[str, Any]) -> dict[str, Any]:
    """An upstream object as the local cluster runs it (Deployments only are changed)."""
    if doc.get("kind") != "Deployment":
        return doc
    for container in doc["spec"]["template"]["spec"]["containers"]:
        container["imagePullPolicy"] = "Never"
        container.setdefault("resources", {})["requests"] = dict(REQUESTS)
        container["args"] = [*container.get("args", []), *FLAGS.get(container["name"], ())]
    return doc


def manifests(folder: Path | None = None) -> list[dict[str, Any]]:
    """Upstream's objects, in :data:`FILES` order, localized."""
    folder = folder or deploy_folder()
    out: list[dict[str, Any]] = []
    for name in FILES:
        out += [localized(d) for d in yaml.safe_load_all((folder / name).read_text()) if d]
    return out


def tls_secret(layout: Layout, timeouts: Timeouts) -> str:
    """The admission controller's certificate Secret (JSON), "" when one exists already."""
    if extra.secret_key(layout, NAMESPACE, TLS_SECRET, "caCert.pem", timeouts):
        return ""
    host = f"vpa-webhook.{NAMESPACE}.svc"
    made = extra.serving_certificate(layout.pki / "vpa", "vpa-webhook", (host,))
    data = {"caCert.pem": made.ca, "serverCert.pem": made.cert, "serverKey.pem": made.key}
    return extra.secret_json(NAMESPACE, TLS_SECRET, data, ADDON)


def install(layout: Layout | None = None, *, timeout_scale: float = 1.0, load: bool = True) -> None:
    """Install the VPA and wait until its three Deployments are rolled out and the admission
    controller has registered its webhook. Idempotent (server-side apply)."""
    t = Timeouts().scaled(timeout_scale)
    layout = layout or Layout.default()
    if load:
        with step("VPA images (recommender, updater, admission-controller)") as s:
            s.note(f"{len(set(load_images(layout, t)))} names imported")
    objects = manifests()
    crds = [o for o in objects if o["kind"] == "CustomResourceDefinition"]
    with step("VPA CRDs"):
        extra.apply(layout, ADDON, yaml.safe_dump_all(crds), t)
        names = " ".join(o["metadata"]["name"] for o in crds)
        extra.wait(layout, ADDON, None, f"crd {names}", "condition=Established", t)
    with step("VPA recommender, updater, admission controller"):
        secret = tls_secret(layout, t)
        if secret:
            extra.apply(layout, ADDON, secret, t)
        rest = [o for o in objects if o["kind"] != "CustomResourceDefinition"]
        extra.apply(layout, ADDON, yaml.safe_dump_all(rest), t)
        for o in rest:
            if o["kind"] == "Deployment":
                name = o["metadata"]["name"]
                extra.wait(layout, ADDON, NAMESPACE, f"deployment/{name}", "rollout", t)
        wait_until(
            lambda: _webhook_registered(layout, t),
            timeout=t.extra_ready,
            what=f"the VPA admission controller to register {WEBHOOK_CONFIG}",
            interval=2,
        )


def _webhook_registered(layout: Layout, timeouts: Timeouts) -> tuple[bool, str]:
    out = addons.kubectl(
        layout,
        "get",
        "mutatingwebhookconfigurations",
        WEBHOOK_CONFIG,
        "--ignore-not-found",
        "-o",
        "name",
        timeout=timeouts.kubectl,
    )
    return bool(out.strip()), out.strip() or f"no mutatingwebhookconfiguration {WEBHOOK_CONFIG}"


def uninstall(layout: Layout | None = None, *, timeout_scale: float = 1.0) -> None:
    """Remove what ``install`` made (upstream's objects, the certificate Secret and the
    webhook the admission controller registered): VPA objects become inert, then go with
    their CRDs."""
    t = Timeouts().scaled(timeout_scale)
    layout = layout or Layout.default()
    extra.delete(layout, ("mutatingwebhookconfiguration", WEBHOOK_CONFIG), t)
    for obj in reversed(manifests()):
        meta = obj["metadata"]
        ns = ("-n", meta["namespace"]) if meta.get("namespace") else ()
        extra.delete(layout, (*ns, obj["kind"].lower(), meta["name"]), t)
    extra.delete(layout, ("-n", NAMESPACE, "secret", TLS_SECRET), t)
