"""Velero's API, as the backup and restore suite uses it against any cluster.

Pure helpers build and read Velero's API objects (``velero.io/v1`` Backup, Restore,
DeleteBackupRequest, BackupStorageLocation, PodVolumeBackup/Restore) as plain dicts;
:class:`Velero` reads and writes them in Velero's namespace through CustomObjectsApi (never
the velero CLI), waits for an operation's final phase, explains a failed one, and measures
what a backup occupies in the bucket when the object store is the local cluster's MinIO.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import secrets
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from pytest_codelab.clients import s3
from pytest_codelab.errors import WaitTimeout
from pytest_codelab.k8s import podtools
from pytest_codelab.k8s.waiting import wait_until

GROUP, VERSION = "velero.io", "v1"
API_VERSION = f"{GROUP}/{VERSION}"
#: Namespace Velero runs in by default (the local cluster's add-on installs it there).
NAMESPACE = "velero"
BSL_NAME = "default"
#: Phases after which a Backup or Restore changes no more.
FINAL_PHASES = frozenset({"Completed", "PartiallyFailed", "Failed", "FailedValidation"})

# ----------------------------------------------------------------- API objects


def backup_manifest(
    name: str,
    included_namespaces: Sequence[str],
    *,
    namespace: str = NAMESPACE,
    storage_location: str = BSL_NAME,
    fs_backup: bool = True,
    ttl: str = "2h0m0s",
    pre_hooks: Sequence[Mapping[str, Any]] = (),
    labels: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A Backup of whole namespaces; ``fs_backup`` backs every pod volume up with the
    node-agent (``defaultVolumesToFsBackup``); no volume snapshots."""
    spec: dict[str, Any] = {
        "includedNamespaces": list(included_namespaces),
        "storageLocation": storage_location,
        "defaultVolumesToFsBackup": fs_backup,
        "snapshotVolumes": False,
        "ttl": ttl,
    }
    if pre_hooks:
        spec["hooks"] = {"resources": [dict(h) for h in pre_hooks]}
    return {
        "apiVersion": API_VERSION,
        "kind": "Backup",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels or {})},
        "spec": spec,
    }


def exec_hook(
    name: str,
    namespace: str,
    pod_labels: Mapping[str, str],
    container: str,
    command: Sequence[str],
    timeout: str = "60s",
) -> dict[str, Any]:
    """One pre-backup exec hook (spec.hooks.resources[]) for pods with ``pod_labels``."""
    return {
        "name": name,
        "includedNamespaces": [namespace],
        "labelSelector": {"matchLabels": dict(pod_labels)},
        "pre": [
            {
                "exec": {
                    "container": container,
                    "command": list(command),
                    "onError": "Fail",
                    "timeout": timeout,
                }
            }
        ],
    }


def restore_manifest(
    name: str,
    backup: str,
    *,
    namespace: str = NAMESPACE,
    namespace_mapping: Mapping[str, str] | None = None,
    excluded_resources: Sequence[str] = (),
    labels: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A Restore of everything in ``backup``, pod volume data included (restored by the
    node-agent before the pods' containers start), optionally into other namespaces."""
    # includeClusterResources stays unset ("auto"): the PVs of the backed-up claims must be
    # looked at, or Velero keeps the claims' volumeName (pointing at the source's volumes)
    # instead of provisioning new ones for the file-system restore.
    spec: dict[str, Any] = {"backupName": backup, "restorePVs": True}
    if namespace_mapping:
        spec["namespaceMapping"] = dict(namespace_mapping)
    if excluded_resources:
        spec["excludedResources"] = list(excluded_resources)
    return {
        "apiVersion": API_VERSION,
        "kind": "Restore",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels or {})},
        "spec": spec,
    }


def delete_backup_request(backup: str, namespace: str = NAMESPACE) -> dict[str, Any]:
    """Asks Velero to delete a backup with its data in the bucket."""
    return {
        "apiVersion": API_VERSION,
        "kind": "DeleteBackupRequest",
        "metadata": {
            "generateName": f"{backup[:40]}-",
            "namespace": namespace,
            "labels": {"velero.io/backup-name": backup[:63]},
        },
        "spec": {"backupName": backup},
    }


def object_name(prefix: str, *parts: str) -> str:
    """A DNS-1123 object name from a prefix, parts and a random suffix (max 63 chars)."""
    suffix = secrets.token_hex(3)
    base = "-".join(p for p in (prefix, *parts) if p).lower()
    base = "".join(c if c.isalnum() or c == "-" else "-" for c in base).strip("-")
    return f"{base[: 63 - len(suffix) - 1].rstrip('-')}-{suffix}"


def phase(obj: Mapping[str, Any] | None) -> str:
    return str(((obj or {}).get("status") or {}).get("phase") or "")


def is_final(obj: Mapping[str, Any] | None) -> bool:
    """True once a Backup or Restore has reached a phase it leaves no more."""
    return phase(obj) in FINAL_PHASES


def describe(obj: Mapping[str, Any] | None) -> str:
    """One line on a Backup or Restore: phase, progress, errors, warnings, reasons."""
    if not obj:
        return "not found"
    st = obj.get("status") or {}
    bits = [f"phase {st.get('phase') or '(none yet)'}"]
    prog = st.get("progress") or {}
    if prog:
        done = prog.get("itemsBackedUp", prog.get("itemsRestored"))
        bits.append(f"items {done}/{prog.get('totalItems')}")
    for key in ("errors", "warnings"):
        if st.get(key):
            bits.append(f"{key} {st[key]}")
    if st.get("failureReason"):
        bits.append(f"failure: {st['failureReason']}")
    for msg in st.get("validationErrors") or []:
        bits.append(f"invalid: {msg}")
    hooks = st.get("hookStatus") or {}
    if hooks.get("hooksFailed"):
        bits.append(f"hooks failed {hooks['hooksFailed']}/{hooks.get('hooksAttempted')}")
    return ", ".join(bits)


def _time(value: str | None) -> _dt.datetime | None:
    if not value:
        return None
    return _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def duration(obj: Mapping[str, Any]) -> float | None:
    """Seconds from status.startTimestamp to status.completionTimestamp (None if unset)."""
    st = obj.get("status") or {}
    start, end = _time(st.get("startTimestamp")), _time(st.get("completionTimestamp"))
    return (end - start).total_seconds() if start and end else None


def volume_bytes(pod_volume_objects: Iterable[Mapping[str, Any]]) -> int:
    """Bytes the node-agent moved: the sum of status.progress.totalBytes of the
    PodVolumeBackups (or PodVolumeRestores) of one backup (restore)."""
    return sum(
        int(((o.get("status") or {}).get("progress") or {}).get("totalBytes") or 0)
        for o in pod_volume_objects
    )


def volume_summary(pod_volume_objects: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """``<pod>/<volume>`` -> phase, for the PodVolumeBackups/Restores of one operation."""
    out = {}
    for o in pod_volume_objects:
        spec = o.get("spec") or {}
        pod = (spec.get("pod") or {}).get("name", "?")
        out[f"{pod}/{spec.get('volume', '?')}"] = phase(o)
    return out


def figures(
    obj: Mapping[str, Any],
    pod_volume_objects: Iterable[Mapping[str, Any]] = (),
    bucket: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """What the report shows of one Backup/Restore: duration, items, volume bytes, and the
    (objects, bytes) it occupies in the bucket when known."""
    st = obj.get("status") or {}
    prog = st.get("progress") or {}
    out: dict[str, Any] = {
        "phase": st.get("phase"),
        "seconds": duration(obj),
        "items": prog.get("itemsBackedUp", prog.get("itemsRestored")),
        "total_items": prog.get("totalItems"),
        "volume_bytes": volume_bytes(list(pod_volume_objects)),
        "warnings": st.get("warnings", 0),
        "errors": st.get("errors", 0),
    }
    if bucket is not None:
        out["bucket_objects"], out["bucket_bytes"] = bucket
    return out


def bsl_unavailable_reason(
    locations: Sequence[Mapping[str, Any]], name: str | None = None
) -> str | None:
    """None if the BackupStorageLocation ``name`` (default: the one marked default, else
    any) is Available; else why not, in one line."""
    if not locations:
        return "no BackupStorageLocation exists: Velero is not configured with an object store"
    if name:
        chosen = [b for b in locations if (b.get("metadata") or {}).get("name") == name]
        if not chosen:
            return f"no BackupStorageLocation named {name}"
    else:
        chosen = [b for b in locations if (b.get("spec") or {}).get("default")] or list(locations)
    for b in chosen:
        if phase(b) == "Available":
            return None
    b = chosen[0]
    msg = ((b.get("status") or {}).get("message") or "").strip().splitlines()
    why = f": {msg[0][:200]}" if msg else ""
    return (
        f"BackupStorageLocation {(b.get('metadata') or {}).get('name')} is not Available "
        f"(phase {phase(b) or 'unknown'}){why}"
    )


def available_bsl(locations: Sequence[Mapping[str, Any]]) -> str | None:
    """Name of the default BackupStorageLocation if Available, else of any Available one."""
    ordered = sorted(locations, key=lambda b: not (b.get("spec") or {}).get("default"))
    for b in ordered:
        if phase(b) == "Available":
            return str((b.get("metadata") or {}).get("name"))
    return None


def summary(figures: Mapping[str, Any]) -> str:
    """``18.0s, 176/176 items, volumes 47.9 MB, bucket 29.0 MB in 28 objects``."""
    bits = []
    if figures.get("seconds") is not None:
        bits.append(f"{figures['seconds']:.1f}s")
    if figures.get("items") is not None:
        bits.append(f"{figures['items']}/{figures.get('total_items')} items")
    bits.append(f"volumes {figures.get('volume_bytes', 0) / 1e6:.1f} MB")
    sizes = [(k, v) for k, v in figures.items() if k.startswith("bucket_") and k.endswith("_bytes")]
    if sizes:
        total = sum(v for _, v in sizes)
        objects = sum(v for k, v in figures.items() if k.endswith("_objects"))
        bits.append(f"bucket {total / 1e6:.1f} MB in {objects} objects")
    for key in ("ready_seconds", "delete_seconds"):
        if figures.get(key) is not None:
            bits.append(f"{key.removesuffix('_seconds')} {figures[key]:.1f}s")
    return ", ".join(bits)


# ----------------------------------------------------------------- Velero access


@dataclass
class Velero:
    """Velero's API objects in its namespace, through CustomObjectsApi."""

    api: client.ApiClient
    namespace: str
    location: str
    custom: client.CustomObjectsApi = field(init=False)

    def __post_init__(self) -> None:
        self.custom = client.CustomObjectsApi(self.api)

    def create(self, body: Mapping[str, Any]) -> dict[str, Any]:
        plural = body["kind"].lower() + "s"
        created = self.custom.create_namespaced_custom_object(
            GROUP, VERSION, self.namespace, plural, dict(body)
        )
        return dict(cast(Mapping[str, Any], created))

    def get(self, plural: str, name: str) -> dict[str, Any] | None:
        try:
            obj = self.custom.get_namespaced_custom_object(
                GROUP, VERSION, self.namespace, plural, name
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return dict(cast(Mapping[str, Any], obj))

    def list_objects(self, plural: str, selector: str = "") -> list[dict[str, Any]]:
        found = self.custom.list_namespaced_custom_object(
            GROUP, VERSION, self.namespace, plural, label_selector=selector
        )
        return list(cast(Mapping[str, Any], found)["items"])

    def delete(self, plural: str, name: str) -> None:
        with contextlib.suppress(ApiException):
            self.custom.delete_namespaced_custom_object(
                GROUP, VERSION, self.namespace, plural, name
            )

    def wait_final(self, plural: str, name: str, timeout: float) -> dict[str, Any]:
        """Wait until the Backup/Restore reaches a final phase; return it. A timeout raises
        WaitTimeout whose message ends with :meth:`explain`."""
        seen: dict[str, Any] = {}

        def probe() -> tuple[bool, str]:
            obj = self.get(plural, name)
            seen["obj"] = obj
            return is_final(obj), describe(obj)

        try:
            wait_until(probe, timeout=timeout, what=f"{plural[:-1]} {name} to finish", interval=2.0)
        except WaitTimeout as exc:
            raise WaitTimeout(f"{exc}\n{self.explain(plural, name)}") from None
        return dict(seen["obj"])

    def pod_volumes(self, plural: str, label: str, name: str) -> list[dict[str, Any]]:
        return self.list_objects(plural, f"{label}={name}")

    def explain(self, plural: str, name: str) -> str:
        """The object's status and its pod volume operations, for a failure message."""
        obj = self.get(plural, name)
        lines = [f"{plural[:-1]} {self.namespace}/{name}: {describe(obj)}"]
        kind, label = (
            ("podvolumebackups", "velero.io/backup-name")
            if plural == "backups"
            else ("podvolumerestores", "velero.io/restore-name")
        )
        for pv in self.pod_volumes(kind, label, name):
            st = pv.get("status") or {}
            lines.append(
                f"  {kind[:-1]} {pv['metadata']['name']}: {st.get('phase')} "
                f"{(st.get('message') or '')[:200]}"
            )
        return "\n".join(lines)

    def bucket(self) -> tuple[str, str]:
        """(bucket, prefix) of the storage location."""
        bsl = self.get("backupstoragelocations", self.location) or {}
        store = (bsl.get("spec") or {}).get("objectStorage") or {}
        prefix = store.get("prefix") or ""
        return store.get("bucket") or s3.BUCKET, (prefix.rstrip("/") + "/" if prefix else "")

    def bucket_usage(
        self, core: client.CoreV1Api, prefixes: Mapping[str, str], *, timeout: float
    ) -> dict[str, tuple[int, int]]:
        """(objects, bytes) per prefix in the location's bucket, read from the local
        cluster's MinIO through a port-forward; {} when that MinIO (or its credentials) is
        not there."""
        try:
            raw = core.read_namespaced_secret(s3.MINIO_SECRET, self.namespace).data or {}
            pod = core.list_namespaced_pod(self.namespace, label_selector="component=minio").items
        except ApiException:
            return {}
        creds = s3.Credentials.from_secret_data({k: str(v) for k, v in raw.items()})
        if creds is None or not pod:
            return {}
        bucket, base = self.bucket()
        pod_name = (pod[0].metadata or client.V1ObjectMeta()).name or ""
        with podtools.port_forward(core, self.namespace, pod_name, 9000) as port:
            endpoint = f"http://127.0.0.1:{port}"
            return {
                name: s3.bucket_usage(endpoint, creds, bucket, base + prefix, timeout=timeout)
                for name, prefix in prefixes.items()
            }

    def restore(
        self, backup: str, timeout: float, created: list[str], **kw: Any
    ) -> tuple[str, dict[str, Any], list[dict[str, Any]], float]:
        """Create a Restore of ``backup`` (``restore_manifest`` arguments in ``kw``), its name
        appended to ``created`` at once (for the caller's cleanup), and wait for its final
        phase: (name, Restore, its PodVolumeRestores, seconds). Whether it completed cleanly
        is the caller's verdict."""
        name = object_name("gate", backup.removeprefix("gate-")[:30], "r")
        started = time.monotonic()
        self.create(restore_manifest(name, backup, namespace=self.namespace, **kw))
        created.append(name)
        obj = self.wait_final("restores", name, timeout)
        seconds = time.monotonic() - started
        volumes = self.pod_volumes("podvolumerestores", "velero.io/restore-name", name)
        return name, obj, volumes, seconds

    def forget(self, backup: str, ns: str, timeout: float) -> None:
        """Delete the backup with its data (a DeleteBackupRequest), then, once Velero is
        done, the namespace's BackupRepository objects (best effort: cleanup must not fail a
        test)."""
        try:
            self.create(delete_backup_request(backup, self.namespace))
            wait_until(
                lambda: (self.get("backups", backup) is None, "backup still there"),
                timeout=timeout,
                what=f"backup {backup} to be deleted",
                interval=2.0,
            )
            for repo in self.list_objects("backuprepositories", f"velero.io/volume-namespace={ns}"):
                self.delete("backuprepositories", repo["metadata"]["name"])
        except (ApiException, WaitTimeout) as exc:
            print(f"[backup] cleanup of {backup} incomplete: {str(exc).splitlines()[0]}")
