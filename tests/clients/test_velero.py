"""Velero's API objects as the backup and restore suite builds and reads them (no cluster)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from pytest_codelab.clients import velero

Obj = dict[str, Any]


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


def test_summary_of_figures() -> None:
    figures = {
        "seconds": 18.04,
        "items": 176,
        "total_items": 176,
        "volume_bytes": 47_900_000,
        "bucket_backup_bytes": 20_000_000,
        "bucket_backup_objects": 20,
        "bucket_kopia_bytes": 9_000_000,
        "bucket_kopia_objects": 8,
        "ready_seconds": 31.0,
    }
    assert velero.summary(figures) == (
        "18.0s, 176/176 items, volumes 47.9 MB, bucket 29.0 MB in 28 objects, ready 31.0s"
    )
    assert velero.summary({}) == "volumes 0.0 MB"
