"""The Velero add-on of the local cluster without a cluster: rendering, credentials, images,
CRDs."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_codelab.deploy.schema import validate_object
from pytest_codelab.engine import velero, versions
from pytest_codelab.engine.errors import EngineError
from pytest_codelab.engine.layout import Layout, cluster_nodes
from pytest_codelab.engine.paths import bin_dir
from pytest_codelab.engine.timeouts import Timeouts

Obj = dict[str, Any]


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    return Layout(state=tmp_path / "state", cache=tmp_path / "cache", bin=tmp_path / "bin")


def _docs(text: str) -> list[Obj]:
    return [d for d in yaml.safe_load_all(text) if d]


def _find(docs: list[Obj], kind: str, name: str) -> Obj:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


# ----------------------------------------------------------------- rendering


def test_render_fills_every_placeholder(layout: Layout) -> None:
    for name in ("minio", "velero"):
        text = velero.render(name, layout, features=("EnableCSI",))
        assert "${" not in text, name
        assert all(d.get("apiVersion") and d.get("kind") for d in _docs(text))


def test_builtin_objects_validate_against_the_pinned_schema(layout: Layout) -> None:
    docs = _docs(velero.render("minio", layout)) + _docs(velero.render("velero", layout))
    results = [validate_object(d) for d in docs if d["apiVersion"] != "velero.io/v1"]
    invalid = [(r.name, r.errors) for r in results if r.status == "invalid"]
    assert not invalid
    assert {r.status for r in results} == {"valid"}


def test_minio_makes_the_bucket_and_reads_generated_credentials(layout: Layout) -> None:
    docs = _docs(velero.render("minio", layout))
    assert docs[0]["kind"] == "Namespace" and docs[0]["metadata"]["name"] == "velero"
    pod = _find(docs, "Deployment", "minio")["spec"]["template"]["spec"]
    init = pod["initContainers"][0]
    assert init["image"] == velero.versions.BUSYBOX_IMAGE
    assert "mkdir -p /data/velero" in init["command"][-1]
    (c,) = pod["containers"]
    assert c["image"] == velero.MINIO_IMAGE and c["imagePullPolicy"] == "Never"
    assert c["command"][:3] == ["/minio", "server", "/data"]
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in c["env"] if "valueFrom" in e}
    assert refs == {
        "MINIO_ROOT_USER": {"name": velero.MINIO_SECRET, "key": "MINIO_ROOT_USER"},
        "MINIO_ROOT_PASSWORD": {"name": velero.MINIO_SECRET, "key": "MINIO_ROOT_PASSWORD"},
    }
    claim = pod["volumes"][0]["persistentVolumeClaim"]["claimName"]
    assert _find(docs, "PersistentVolumeClaim", claim)
    svc = _find(docs, "Service", "minio")
    assert svc["spec"]["ports"][0]["port"] == 9000
    assert velero.s3_url() == "http://minio.velero.svc:9000"


def test_backup_storage_location_points_at_minio(layout: Layout) -> None:
    bsl = _find(_docs(velero.render("velero", layout)), "BackupStorageLocation", "default")
    assert bsl["spec"]["provider"] == "aws" and bsl["spec"]["default"] is True
    assert bsl["spec"]["objectStorage"] == {"bucket": "velero"}
    assert bsl["spec"]["config"] == {
        "region": "minio",
        "s3ForcePathStyle": "true",
        "s3Url": "http://minio.velero.svc:9000",
    }


def test_server_runs_with_features_and_the_aws_plugin(layout: Layout) -> None:
    docs = _docs(velero.render("velero", layout, features=("EnableCSI", "X")))
    pod = _find(docs, "Deployment", "velero")["spec"]["template"]["spec"]
    (init,) = pod["initContainers"]
    assert init["image"] == velero.VELERO_PLUGIN_AWS_IMAGE
    assert init["volumeMounts"] == [{"name": "plugins", "mountPath": "/target"}]
    (c,) = pod["containers"]
    assert c["image"] == velero.VELERO_IMAGE and c["command"] == ["/velero"]
    assert c["args"][0] == "server"
    assert "--features=EnableCSI,X" in c["args"]
    assert f"--fs-backup-timeout={velero.FS_BACKUP_TIMEOUT}" in c["args"]
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["AWS_SHARED_CREDENTIALS_FILE"] == "/credentials/cloud"
    secret_vols = [v for v in pod["volumes"] if "secret" in v]
    assert secret_vols[0]["secret"]["secretName"] == velero.CLOUD_SECRET
    binding = _find(docs, "ClusterRoleBinding", "velero")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "velero", "namespace": "velero"}
    ]


def test_node_agent_mounts_its_own_nodes_kubelet_pods_dir(layout: Layout) -> None:
    docs = _docs(velero.render("velero", layout))
    pod = _find(docs, "DaemonSet", "node-agent")["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert c["args"][:2] == ["node-agent", "server"]
    assert c["securityContext"]["privileged"] is True
    mounts = {m["name"]: m for m in c["volumeMounts"]}
    assert mounts["host-pods"]["mountPath"] == "/host_pods"
    assert mounts["host-pods"]["mountPropagation"] == "HostToContainer"
    # One DaemonSet for every node: each pod picks its node's kubelet folder by name.
    assert mounts["host-pods"]["subPathExpr"] == "$(NODE_NAME)/kubelet/pods"
    assert mounts["host-plugins"]["subPathExpr"] == "$(NODE_NAME)/kubelet/plugins"
    env = {e["name"]: e for e in c["env"]}
    assert env["NODE_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"
    vols = {v["name"]: v for v in pod["volumes"]}
    assert vols["host-pods"]["hostPath"]["path"] == str(layout.nodes_dir)
    for node in cluster_nodes(3):
        resolved = layout.nodes_dir / node.name / "kubelet" / "pods"
        assert resolved == layout.node_kubelet_root(node) / "pods"


def test_default_layout_uses_the_engines_nodes_folder() -> None:
    subs = velero.substitutions(Layout(Path("/var/lib/pytest-codelab"), Path("/c"), Path("/b")))
    assert subs["NODES_DIR"] == "/var/lib/pytest-codelab/nodes"
    assert subs["FEATURES"] == ""


# ----------------------------------------------------------------- credentials


def test_credentials_never_show_in_repr_or_str() -> None:
    creds = velero.Credentials.generate()
    for text in (repr(creds), str(creds), f"{creds}", repr([creds])):
        assert creds.secret_key not in text and creds.access_key not in text
    assert velero.Credentials.generate() != creds
    assert len(creds.secret_key) >= 32


def test_secrets_carry_the_same_key_pair() -> None:
    creds = velero.Credentials("user-1", "pass-1")
    minio, cloud = velero.secret_manifests(creds)
    assert minio["metadata"] == {
        "name": "minio-credentials",
        "namespace": "velero",
        "labels": {"component": "velero"},
    }
    assert minio["stringData"] == {"MINIO_ROOT_USER": "user-1", "MINIO_ROOT_PASSWORD": "pass-1"}
    assert cloud["metadata"]["name"] == "cloud-credentials"
    assert cloud["stringData"]["cloud"] == (
        "[default]\naws_access_key_id=user-1\naws_secret_access_key=pass-1\n"
    )


def test_credentials_from_secret_data() -> None:
    enc = {
        k: base64.b64encode(v.encode()).decode()
        for k, v in {"MINIO_ROOT_USER": "u", "MINIO_ROOT_PASSWORD": "p"}.items()
    }
    assert velero.Credentials.from_secret_data(enc) == velero.Credentials("u", "p")
    assert velero.Credentials.from_secret_data({"MINIO_ROOT_USER": enc["MINIO_ROOT_USER"]}) is None


def test_existing_credentials_are_read_without_leaking(layout: Layout) -> None:
    layout.bin.mkdir(parents=True)
    kubectl = layout.bin / "kubectl"
    secret = {
        "data": {
            "MINIO_ROOT_USER": base64.b64encode(b"u").decode(),
            "MINIO_ROOT_PASSWORD": base64.b64encode(b"p").decode(),
        }
    }
    kubectl.write_text(f"#!/bin/sh\ncat <<'EOF'\n{json.dumps(secret)}\nEOF\n")
    kubectl.chmod(0o755)
    assert velero.existing_credentials(layout, Timeouts()) == velero.Credentials("u", "p")
    kubectl.write_text("#!/bin/sh\nexit 0\n")
    assert velero.existing_credentials(layout, Timeouts()) is None
    kubectl.write_text("#!/bin/sh\necho 'SECRETVALUE'\necho 'forbidden' >&2\nexit 1\n")
    with pytest.raises(EngineError) as err:
        velero.existing_credentials(layout, Timeouts())
    assert "SECRETVALUE" not in f"{err.value} {err.value.detail}"
    assert "forbidden" in err.value.detail


# ----------------------------------------------------------------- images and CRDs


def _fake_bins(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in velero.BINARIES:
        (folder / name).write_bytes(b"\x7fELF" + name.encode())


def test_image_recipes(tmp_path: Path) -> None:
    _fake_bins(tmp_path)
    recipes = velero.image_recipes(tmp_path)
    assert set(recipes) == {velero.VELERO_IMAGE, velero.VELERO_PLUGIN_AWS_IMAGE, velero.MINIO_IMAGE}
    server = recipes[velero.VELERO_IMAGE]
    assert server.tags == (velero.VELERO_IMAGE,)
    assert server.config.entrypoint == ("/velero",)
    paths = {e.path for layer in server.layers for e in getattr(layer, "entries", ())}
    assert {"velero", "velero-restore-helper", "velero-helper"} <= paths
    plugin = recipes[velero.VELERO_PLUGIN_AWS_IMAGE]
    assert plugin.config.entrypoint == (
        "/bin/cp-plugin",
        "/plugins/velero-plugin-for-aws",
        "/target/velero-plugin-for-aws",
    )
    plugin_paths = {e.path for layer in plugin.layers for e in getattr(layer, "entries", ())}
    assert {"plugins/velero-plugin-for-aws", "bin/cp-plugin"} <= plugin_paths
    assert recipes[velero.MINIO_IMAGE].config.entrypoint == ("/minio",)
    assert all(r.config.user == "65532:65532" for r in recipes.values())


def test_image_recipes_name_missing_binaries(tmp_path: Path) -> None:
    _fake_bins(tmp_path)
    (tmp_path / "cp-plugin").unlink()
    (tmp_path / "minio").unlink()
    with pytest.raises(EngineError, match=r"missing .*\(cp-plugin, minio\).*codelab-cluster build"):
        velero.image_recipes(tmp_path)


def test_image_tags_follow_the_pins() -> None:
    assert velero.VELERO_IMAGE.endswith(":" + versions.VELERO)
    assert velero.VELERO_PLUGIN_AWS_IMAGE.endswith(":" + versions.VELERO_PLUGIN_AWS)
    assert re.fullmatch(r"[\w][\w.-]{0,127}", velero.MINIO_IMAGE.rsplit(":", 1)[1])


def test_crds_from_the_binary(tmp_path: Path) -> None:
    fake = tmp_path / "velero"
    fake.write_text("#!/bin/sh\necho 'kind: CustomResourceDefinition'\n")
    fake.chmod(0o755)
    assert "CustomResourceDefinition" in velero.crds(fake, Timeouts())
    fake.write_text("#!/bin/sh\necho boom\nexit 3\n")
    with pytest.raises(EngineError, match="exit 3"):
        velero.crds(fake, Timeouts())


@pytest.mark.skipif(not (bin_dir() / "velero").exists(), reason="velero not built here")
def test_crds_of_the_built_binary() -> None:
    doc = yaml.safe_load(velero.crds(bin_dir() / "velero", Timeouts()))
    names = {i["metadata"]["name"] for i in doc["items"]}
    assert {
        "backups.velero.io",
        "restores.velero.io",
        "backupstoragelocations.velero.io",
        "podvolumebackups.velero.io",
        "deletebackuprequests.velero.io",
    } <= names
    assert all(i["metadata"]["labels"]["component"] == "velero" for i in doc["items"])
