"""The Velero add-on without a cluster: rendering, credentials, images, API helpers, S3."""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_codelab.engine import velero, versions
from pytest_codelab.engine.errors import EngineError
from pytest_codelab.engine.layout import Layout
from pytest_codelab.engine.paths import bin_dir
from pytest_codelab.schema import validate_object

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
    results = [validate_object(d) for d in docs if d["apiVersion"] != velero.API_VERSION]
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


def test_node_agent_mounts_the_engines_kubelet_pods_dir(layout: Layout) -> None:
    docs = _docs(velero.render("velero", layout))
    pod = _find(docs, "DaemonSet", "node-agent")["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert c["args"][:2] == ["node-agent", "server"]
    assert c["securityContext"]["privileged"] is True
    mounts = {m["name"]: m for m in c["volumeMounts"]}
    assert mounts["host-pods"]["mountPath"] == "/host_pods"
    assert mounts["host-pods"]["mountPropagation"] == "HostToContainer"
    vols = {v["name"]: v for v in pod["volumes"]}
    assert vols["host-pods"]["hostPath"]["path"] == str(layout.kubelet_root / "pods")
    assert str(layout.kubelet_root).startswith(str(layout.state))


def test_default_layout_uses_the_engines_kubelet_root() -> None:
    subs = velero.substitutions(Layout(Path("/var/lib/pytest-codelab"), Path("/c"), Path("/b")))
    assert subs["KUBELET_PODS_DIR"] == "/var/lib/pytest-codelab/kubelet/pods"
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
    assert velero.existing_credentials(layout) == velero.Credentials("u", "p")
    kubectl.write_text("#!/bin/sh\nexit 0\n")
    assert velero.existing_credentials(layout) is None
    kubectl.write_text("#!/bin/sh\necho 'SECRETVALUE'\necho 'forbidden' >&2\nexit 1\n")
    with pytest.raises(EngineError) as err:
        velero.existing_credentials(layout)
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
    assert "CustomResourceDefinition" in velero.crds(fake)
    fake.write_text("#!/bin/sh\necho boom\nexit 3\n")
    with pytest.raises(EngineError, match="exit 3"):
        velero.crds(fake)


@pytest.mark.skipif(not (bin_dir() / "velero").exists(), reason="velero not built here")
def test_crds_of_the_built_binary() -> None:
    doc = yaml.safe_load(velero.crds(bin_dir() / "velero"))
    names = {i["metadata"]["name"] for i in doc["items"]}
    assert {
        "backups.velero.io",
        "restores.velero.io",
        "backupstoragelocations.velero.io",
        "podvolumebackups.velero.io",
        "deletebackuprequests.velero.io",
    } <= names
    assert all(i["metadata"]["labels"]["component"] == "velero" for i in doc["items"])


# ----------------------------------------------------------------- API objects


def test_backup_manifest() -> None:
    hook = velero.exec_hook("pg", "ns1", {"app": "postgres"}, "postgres", ["sh", "-c", "x"])
    body = velero.backup_manifest("b1", ["ns1"], pre_hooks=[hook], labels={"a": "b"})
    assert body["apiVersion"] == "velero.io/v1" and body["kind"] == "Backup"
    assert body["metadata"] == {"name": "b1", "namespace": "velero", "labels": {"a": "b"}}
    spec = body["spec"]
    assert spec["includedNamespaces"] == ["ns1"]
    assert spec["defaultVolumesToFsBackup"] is True and spec["snapshotVolumes"] is False
    assert spec["storageLocation"] == "default"
    (res,) = spec["hooks"]["resources"]
    assert res["includedNamespaces"] == ["ns1"]
    assert res["labelSelector"] == {"matchLabels": {"app": "postgres"}}
    assert res["pre"][0]["exec"] == {
        "container": "postgres",
        "command": ["sh", "-c", "x"],
        "onError": "Fail",
        "timeout": "60s",
    }
    assert "hooks" not in velero.backup_manifest("b2", ["ns1"])["spec"]


def test_restore_manifest() -> None:
    body = velero.restore_manifest(
        "r1",
        "b1",
        namespace_mapping={"a": "a-rst"},
        excluded_resources=["ingresses.networking.k8s.io"],
    )
    assert body["kind"] == "Restore" and body["metadata"]["namespace"] == "velero"
    assert body["spec"] == {
        "backupName": "b1",
        "restorePVs": True,
        "namespaceMapping": {"a": "a-rst"},
        "excludedResources": ["ingresses.networking.k8s.io"],
    }
    # "auto" cluster resources: the claims' PVs must be seen to re-provision them.
    assert "includeClusterResources" not in velero.restore_manifest("r2", "b1")["spec"]


def test_delete_backup_request() -> None:
    body = velero.delete_backup_request("b" * 70)
    assert body["kind"] == "DeleteBackupRequest" and body["spec"] == {"backupName": "b" * 70}
    assert len(body["metadata"]["labels"]["velero.io/backup-name"]) <= 63
    assert body["metadata"]["generateName"].endswith("-")


@pytest.mark.parametrize(
    "parts", [("gate", "codelab-abc123-gw0"), ("gate", "X" * 80, "r"), ("gate", "under_score.dot")]
)
def test_object_name_is_a_dns_label(parts: tuple[str, ...]) -> None:
    name = velero.object_name(*parts)
    assert len(name) <= 63
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name), name
    assert velero.object_name(*parts) != name


def _backup(phase: str | None, **status: Any) -> Obj:
    return {"status": {"phase": phase, **status} if phase else status}


def test_phase_helpers() -> None:
    assert not velero.is_final(None) and not velero.is_final(_backup("InProgress"))
    for p in ("Completed", "PartiallyFailed", "Failed", "FailedValidation"):
        assert velero.is_final(_backup(p))
    assert velero.describe(None) == "not found"
    text = velero.describe(
        _backup(
            "PartiallyFailed",
            errors=2,
            warnings=1,
            progress={"itemsBackedUp": 3, "totalItems": 5},
            failureReason="x",
            validationErrors=["bad"],
            hookStatus={"hooksAttempted": 2, "hooksFailed": 1},
        )
    )
    assert text == (
        "phase PartiallyFailed, items 3/5, errors 2, warnings 1, failure: x, "
        "invalid: bad, hooks failed 1/2"
    )
    assert velero.describe({"status": {}}) == "phase (none yet)"


def test_figures() -> None:
    obj = _backup(
        "Completed",
        startTimestamp="2026-01-01T00:00:00Z",
        completionTimestamp="2026-01-01T00:01:30Z",
        progress={"itemsRestored": 7, "totalItems": 7},
        warnings=1,
    )
    pvs = [
        {
            "spec": {"pod": {"name": "postgres-0"}, "volume": "data"},
            "status": {"phase": "Completed", "progress": {"totalBytes": 100}},
        },
        {
            "spec": {"pod": {"name": "redis-0"}, "volume": "data"},
            "status": {"phase": "InProgress", "progress": {}},
        },
    ]
    out = velero.figures(obj, pvs, bucket=(3, 4096))
    assert out == {
        "phase": "Completed",
        "seconds": 90.0,
        "items": 7,
        "total_items": 7,
        "volume_bytes": 100,
        "warnings": 1,
        "errors": 0,
        "bucket_objects": 3,
        "bucket_bytes": 4096,
    }
    assert velero.volume_summary(pvs) == {
        "postgres-0/data": "Completed",
        "redis-0/data": "InProgress",
    }
    assert velero.duration(_backup("InProgress", startTimestamp="2026-01-01T00:00:00Z")) is None


def _bsl(name: str, phase: str | None, default: bool = False, message: str = "") -> Obj:
    st = {"phase": phase, "message": message} if phase else {}
    return {"metadata": {"name": name}, "spec": {"default": default}, "status": st}


def test_bsl_reasons() -> None:
    assert "no BackupStorageLocation exists" in str(velero.bsl_unavailable_reason([]))
    ok = [_bsl("default", "Available", default=True)]
    assert velero.bsl_unavailable_reason(ok) is None and velero.available_bsl(ok) == "default"
    bad = [
        _bsl("default", "Unavailable", True, "dial tcp: connection refused\nmore"),
        _bsl("other", "Available"),
    ]
    assert velero.bsl_unavailable_reason(bad) == (
        "BackupStorageLocation default is not Available (phase Unavailable): "
        "dial tcp: connection refused"
    )
    assert velero.available_bsl(bad) == "other"
    assert velero.bsl_unavailable_reason(bad, name="other") is None
    assert velero.bsl_unavailable_reason(bad, name="x") == "no BackupStorageLocation named x"
    fresh = [_bsl("b", None)]
    assert velero.bsl_unavailable_reason(fresh) == (
        "BackupStorageLocation b is not Available (phase unknown)"
    )
    assert velero.available_bsl(fresh) is None


# ----------------------------------------------------------------- S3


def test_sigv4_matches_the_aws_documented_example() -> None:
    """The IAM ListUsers example of AWS's "Signature Version 4" documentation."""
    creds = velero.Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    headers = velero.sigv4_headers(
        "GET",
        "https://iam.amazonaws.com/?Action=ListUsers&Version=2010-05-08",
        creds,
        region="us-east-1",
        service="iam",
        now=dt.datetime(2015, 8, 30, 12, 36, tzinfo=dt.UTC),
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
    )
    assert headers["Authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, "
        "SignedHeaders=content-type;host;x-amz-date, "
        "Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
    )
    assert headers["x-amz-date"] == "20150830T123600Z"


def test_sigv4_s3_signs_the_payload_hash() -> None:
    creds = velero.Credentials("a", "b")
    h = velero.sigv4_headers("GET", "http://m:9000/velero?list-type=2&prefix=backups%2F", creds)
    assert h["x-amz-content-sha256"] == (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )
    assert "SignedHeaders=host;x-amz-content-sha256;x-amz-date" in h["Authorization"]
    assert "/minio/s3/aws4_request" in h["Authorization"]


PAGE = """<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>velero</Name>
{contents}<IsTruncated>{truncated}</IsTruncated>{token}</ListBucketResult>"""


def _page(items: list[tuple[str, int]], token: str | None = None) -> str:
    contents = "".join(f"<Contents><Key>{k}</Key><Size>{s}</Size></Contents>" for k, s in items)
    tok = f"<NextContinuationToken>{token}</NextContinuationToken>" if token else ""
    return PAGE.format(contents=contents, truncated="true" if token else "false", token=tok)


def test_parse_list_objects() -> None:
    items, token = velero.parse_list_objects(_page([("a", 1), ("b/c", 20)], "next"))
    assert items == [("a", 1), ("b/c", 20)] and token == "next"
    assert velero.parse_list_objects(_page([])) == ([], None)


@pytest.fixture
def fake_s3(serve_http: Any) -> tuple[str, list[str]]:
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            seen.append(self.path)
            if not self.headers.get("Authorization", "").startswith("AWS4-HMAC-SHA256 "):
                self.send_response(403)
                self.end_headers()
                return
            body = (
                _page([("backups/b/1", 10), ("backups/b/2", 5)], "t2")
                if "continuation-token" not in self.path
                else _page([("backups/b/3", 1)])
            )
            self.send_response(200)
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args: object) -> None:
            pass

    return serve_http(ThreadingHTTPServer(("127.0.0.1", 0), Handler)), seen


def test_bucket_usage_follows_continuation(fake_s3: tuple[str, list[str]]) -> None:
    endpoint, seen = fake_s3
    creds = velero.Credentials("a", "b")
    assert velero.bucket_usage(endpoint, creds, "velero", "backups/b/") == (3, 16)
    assert seen[0].startswith("/velero?list-type=2&prefix=backups%2Fb%2F")
    assert "continuation-token=t2" in seen[1]


def test_bucket_usage_error_names_the_bucket(
    fake_s3: tuple[str, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint, _ = fake_s3
    monkeypatch.setattr(velero, "sigv4_headers", lambda *a, **k: {})
    with pytest.raises(EngineError, match="ListObjectsV2 velero/x: HTTP 403"):
        velero.bucket_usage(endpoint, velero.Credentials("a", "b"), "velero", "x")
