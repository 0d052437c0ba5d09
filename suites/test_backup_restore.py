"""Issue 7: CodeLab survives a Velero backup and restore, data included.

Known data is written into the stack's namespace (PostgreSQL rows with a checksum, a Redis
key, a Secret, a ConfigMap); a Velero Backup of the namespace takes every pod volume with
the node-agent (file-system backup, ``defaultVolumesToFsBackup``) after pre-backup hooks
that checkpoint PostgreSQL and save Redis. Then:

* the backup is restored into a new namespace while the original keeps running (the
  Ingress is left out: two Ingresses claiming one host cannot both be served); the copy
  becomes Ready and holds the same data;
* (disruptive) the namespace itself is deleted, PVCs and all, and restored under the same
  name: every object and row is back with equal checksums, the stack is Ready and serves
  a new token and an API call through the ingress again.

Only Velero's API objects are used (Backup, Restore, BackupStorageLocation, PodVolumeBackup,
DeleteBackupRequest, through CustomObjectsApi), never the velero CLI. Without the Velero
CRDs or an Available BackupStorageLocation the tests skip with the reason. Durations,
items and sizes (volume bytes moved, bytes in the bucket) are recorded with
user properties (JUnit XML ``<property>``) and summed up in the run's notes.

The library behind it (the known data, Velero's API) is ``pytest_codelab.clients.backup``
and ``pytest_codelab.clients.velero``; every check and verdict is here.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import time
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from pytest_codelab.clients import velero
from pytest_codelab.clients.backup import (
    PG_HOOK,
    REDIS_HOOK,
    Data,
    Snapshot,
    container_name,
    pvc_volumes,
    ready_pod,
)
from pytest_codelab.clients.ingress import IngressClient, Result
from pytest_codelab.clients.velero import Velero
from pytest_codelab.errors import WaitTimeout
from pytest_codelab.fixtures.handles import skip_if_missing_kind
from pytest_codelab.k8s import namespaces
from pytest_codelab.k8s.namespaces import NamespaceInfo
from pytest_codelab.k8s.stack import StackInfo, wait_ready
from pytest_codelab.k8s.waiting import Timeouts, wait_until
from pytest_codelab.run import RUN_KEY
from pytest_codelab.safety import is_managed

pytestmark = [pytest.mark.e2e, pytest.mark.cluster, pytest.mark.slow]

#: Ingresses are left out of the restore into a second namespace (the host is taken).
NO_INGRESS = ("ingresses.networking.k8s.io",)
#: Base seconds to delete a namespace holding restored volumes: longer than an ordinary
#: namespace (Timeouts.delete), since the volumes' file-system restores are torn down too.
RESTORED_DELETE = 300.0


def record(request: pytest.FixtureRequest, what: str, figures: Mapping[str, Any]) -> None:
    """One ``velero_<what>_<figure>`` user property per figure plus the whole as JSON
    (JUnit XML ``<property>``; they travel with xdist), and one line in the run's notes."""
    props = request.node.user_properties
    for key, value in figures.items():
        if value is not None:
            props.append((f"velero_{what}_{key}", value))
    props.append((f"velero_{what}", json.dumps(dict(figures), sort_keys=True)))
    run = request.config.stash.get(RUN_KEY, None)
    if run is not None:
        run.note(f"velero {what}: {velero.summary(figures)}")


# ----------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def velero_namespace() -> str:
    """Namespace Velero runs in (override in a conftest.py for another install)."""
    return velero.NAMESPACE


# Session scope: pytest sets session fixtures up first, so a missing Velero skips before
# the stack is deployed.
@pytest.fixture(scope="session")
def velero_api(k8s_client: client.ApiClient, velero_namespace: str) -> Velero:
    """Velero's API, or a skip naming what is missing (CRDs, an Available location)."""
    skip_if_missing_kind(k8s_client, velero.API_VERSION, "Backup")
    try:
        locations = client.CustomObjectsApi(k8s_client).list_namespaced_custom_object(
            velero.GROUP, velero.VERSION, velero_namespace, "backupstoragelocations"
        )["items"]
    except ApiException as exc:
        pytest.skip(
            f"cannot list Velero BackupStorageLocations in {velero_namespace}: HTTP {exc.status}"
        )
    reason = velero.bsl_unavailable_reason(locations)
    name = velero.available_bsl(locations)
    if reason and name is None:
        pytest.skip(f"Velero in namespace {velero_namespace}: {reason}")
    return Velero(k8s_client, velero_namespace, str(name))


@dataclass
class BackupRun:
    """The module's one backup: its object, pod volume backups, what it should restore."""

    name: str
    obj: dict[str, Any]
    volumes: list[dict[str, Any]]
    expected: Snapshot
    pvc_volumes: list[str]
    bucket: dict[str, tuple[int, int]]
    seconds: float
    restores: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def backup(
    velero_api: Velero,
    codelab_stack: StackInfo,
    core_v1: client.CoreV1Api,
    k8s_client: client.ApiClient,
    codelab_timeouts: Timeouts,
) -> Iterator[BackupRun]:
    """Known data written, then a Backup of the stack's namespace (volumes by file-system
    backup) that reached a final phase. Deleted with its data at the end of the module."""
    ns = codelab_stack.namespace
    wait_ready(k8s_client, ns, timeout=codelab_timeouts.deploy)
    data = Data(core_v1, ns, codelab_timeouts)
    key, *_ = data.write()
    expected = data.snapshot(key)
    pvc = pvc_volumes(core_v1, ns)
    name = velero.object_name("gate", ns)
    pg = container_name(ready_pod(core_v1, ns, "postgres"), "postgres")
    rd = container_name(ready_pod(core_v1, ns, "redis"), "redis")
    hooks = [
        velero.exec_hook("postgres-checkpoint", ns, {"app": "postgres"}, pg, PG_HOOK),
        velero.exec_hook("redis-save", ns, {"app": "redis"}, rd, REDIS_HOOK),
    ]
    body = velero.backup_manifest(
        name,
        [ns],
        namespace=velero_api.namespace,
        storage_location=velero_api.location,
        pre_hooks=hooks,
        labels={"app.kubernetes.io/managed-by": "pytest-codelab"},
    )
    started = time.monotonic()
    velero_api.create(body)
    try:
        obj = final(velero_api.wait_final, "backups", name, codelab_timeouts.deploy)
        seconds = time.monotonic() - started
        volumes = velero_api.pod_volumes("podvolumebackups", "velero.io/backup-name", name)
        try:
            usage = velero_api.bucket_usage(
                core_v1,
                {"backup": f"backups/{name}/", "kopia": f"kopia/{ns}/"},
                timeout=codelab_timeouts.request,
            )
        except Exception as exc:  # a measurement, not a verdict
            usage = {}
            print(f"[backup] bucket size not measured: {exc}")
        run = BackupRun(name, obj, volumes, expected, pvc, usage, seconds)
        yield run
        for restore_name in run.restores:
            velero_api.delete("restores", restore_name)
    finally:
        velero_api.forget(name, ns, codelab_timeouts.delete)
        data.cleanup(key)


def final(wait: Any, *args: Any) -> dict[str, Any]:
    """``velero_api.wait_final(...)``, its timeout a failure without a traceback."""
    try:
        return dict(wait(*args))
    except WaitTimeout as exc:
        pytest.fail(str(exc), pytrace=False)


def restore(
    v: Velero, run: BackupRun, timeouts: Timeouts, **kw: Any
) -> tuple[dict[str, Any], list[dict[str, Any]], float]:
    """Create a Restore of the module's backup and wait for its final phase; it must have
    completed without errors."""
    try:
        name, obj, volumes, seconds = v.restore(run.name, timeouts.deploy, run.restores, **kw)
    except WaitTimeout as exc:
        pytest.fail(str(exc), pytrace=False)
    if velero.phase(obj) != "Completed" or (obj.get("status") or {}).get("errors"):
        pytest.fail(
            f"restore did not complete cleanly:\n{v.explain('restores', name)}", pytrace=False
        )
    return obj, volumes, seconds


def _require_backup(run: BackupRun, v: Velero) -> None:
    if velero.phase(run.obj) != "Completed":
        pytest.fail(f"nothing to restore: {v.explain('backups', run.name)}", pytrace=False)


# ----------------------------------------------------------------- tests


@pytest.mark.requirement("7/backup: a Velero backup of the namespace includes volume data")
def test_backup_completes_with_volume_data(
    backup: BackupRun, velero_api: Velero, request: pytest.FixtureRequest
) -> None:
    """The Backup is Completed without errors, and every PVC-backed volume of the stack's
    pods (PostgreSQL's, Redis') was copied by a Completed PodVolumeBackup."""
    record(
        request,
        "backup",
        {
            **velero.figures(backup.obj, backup.volumes),
            "wall_seconds": round(backup.seconds, 1),
            **{f"bucket_{k}_objects": v[0] for k, v in backup.bucket.items()},
            **{f"bucket_{k}_bytes": v[1] for k, v in backup.bucket.items()},
        },
    )
    status = backup.obj.get("status") or {}
    assert velero.phase(backup.obj) == "Completed" and not status.get("errors"), velero_api.explain(
        "backups", backup.name
    )
    copied = velero.volume_summary(backup.volumes)
    missing = [v for v in backup.pvc_volumes if copied.get(v) != "Completed"]
    assert backup.pvc_volumes, "the stack has no PVC-backed volumes to back up"
    assert not missing, f"volumes without a Completed PodVolumeBackup: {missing}; got {copied}"
    hooks = status.get("hookStatus") or {}
    assert not hooks.get("hooksFailed"), f"pre-backup hooks failed: {hooks}"


@pytest.mark.requirement("7/restore: a backup restores into a new namespace beside the original")
def test_restore_into_new_namespace(
    backup: BackupRun,
    velero_api: Velero,
    codelab_stack: StackInfo,
    codelab_namespace: NamespaceInfo,
    core_v1: client.CoreV1Api,
    k8s_client: client.ApiClient,
    codelab_timeouts: Timeouts,
    request: pytest.FixtureRequest,
) -> None:
    """Restored with a namespaceMapping into a namespace the gate creates (its labels, its
    cleanup), Ingress excluded: the copy becomes Ready with the same data while the
    original keeps running."""
    _require_backup(backup, velero_api)
    source = codelab_stack.namespace
    target = f"{source[:59]}-rst"
    run_id = codelab_namespace.run_id or "velero"
    with contextlib.suppress(Exception):  # left by an interrupted earlier attempt
        namespaces.delete(core_v1, target, timeout=codelab_timeouts.delete)
    namespaces.REAPER.add(
        target, functools.partial(_delete_quietly, core_v1, target, codelab_timeouts.api)
    )
    try:
        namespaces.create(core_v1, target, run_id, timeout=codelab_timeouts.namespace)
        obj, volumes, seconds = restore(
            velero_api,
            backup,
            codelab_timeouts,
            namespace_mapping={source: target},
            excluded_resources=NO_INGRESS,
        )
        started = time.monotonic()
        wait_ready(k8s_client, target, timeout=codelab_timeouts.deploy)
        record(
            request,
            "restore_mapped",
            {
                **velero.figures(obj, volumes),
                "wall_seconds": round(seconds, 1),
                "ready_seconds": round(time.monotonic() - started, 1),
            },
        )
        got = Data(core_v1, target, codelab_timeouts).snapshot(backup.expected.redis_key)
        assert not backup.expected.differences(got), (
            f"restored copy in {target} differs: {backup.expected.differences(got)}"
        )
        wait_ready(k8s_client, source, timeout=codelab_timeouts.rollout)
    finally:
        namespaces.delete(core_v1, target, timeout=codelab_timeouts.scale(RESTORED_DELETE))
        namespaces.REAPER.discard(target)


def _delete_quietly(core: client.CoreV1Api, name: str, timeout: float) -> None:
    """The exit-time safety net: request the delete, wait one API deadline at most."""
    with contextlib.suppress(Exception):
        namespaces.delete(core, name, timeout=timeout)


def fresh_token(
    target: IngressClient, core: client.CoreV1Api, apps: client.AppsV1Api, ns: str
) -> str:
    """A new bearer token (client credentials through the ingress), as ``api_token`` gets."""
    secret = base64.b64decode(
        (core.read_namespaced_secret("oauth-secret", ns).data or {})["client-secret"]
    ).decode()
    client_id = "pytest-codelab"
    for c in apps.read_namespaced_deployment("auth-service", ns).spec.template.spec.containers:
        for env in c.env or []:
            if env.name == "OAUTH2_CLIENT_ID":
                ref = env.value_from.secret_key_ref if env.value_from else None
                client_id = (
                    base64.b64decode(
                        (core.read_namespaced_secret(ref.name, ns).data or {})[ref.key]
                    ).decode()
                    if ref
                    else str(env.value or client_id)
                )
    form = urllib.parse.urlencode(
        {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    ).encode()
    result = target.request(
        "POST",
        "/oauth/token",
        body=form,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    token = result.get("access_token")
    assert result.ok and token, f"POST /oauth/token after the restore: {result.describe()}"
    return str(token)


@pytest.mark.disruptive
@pytest.mark.requirement("7/restore: a deleted namespace comes back from its backup")
def test_restore_after_namespace_deleted(
    backup: BackupRun,
    velero_api: Velero,
    codelab_stack: StackInfo,
    codelab_namespace: NamespaceInfo,
    ingress_target: IngressClient,
    core_v1: client.CoreV1Api,
    apps_v1: client.AppsV1Api,
    k8s_client: client.ApiClient,
    codelab_timeouts: Timeouts,
    request: pytest.FixtureRequest,
) -> None:
    """The namespace is deleted (workloads, PVCs and their volumes with it) and restored
    under its name: objects, rows (equal checksums), the Redis key are back, the stack is
    Ready and answers a new token and ``POST /api/v1/sessions`` through the ingress."""
    _require_backup(backup, velero_api)
    ns = codelab_stack.namespace
    started = time.monotonic()
    namespaces.delete(core_v1, ns, timeout=codelab_timeouts.scale(RESTORED_DELETE))
    deleted_seconds = time.monotonic() - started
    obj, volumes, seconds = restore(velero_api, backup, codelab_timeouts)
    labels = core_v1.read_namespace(ns).metadata.labels or {}
    if not is_managed(labels):  # keep the fixture's cleanup possible, then fail
        core_v1.patch_namespace(
            ns,
            {
                "metadata": {
                    "labels": namespaces.namespace_labels(codelab_namespace.run_id or "velero")
                }
            },
        )
        pytest.fail(f"restored namespace {ns} lost the gate's labels: {labels}")
    started = time.monotonic()
    wait_ready(k8s_client, ns, timeout=codelab_timeouts.deploy)
    ready_seconds = time.monotonic() - started
    record(
        request,
        "restore_in_place",
        {
            **velero.figures(obj, volumes),
            "wall_seconds": round(seconds, 1),
            "delete_seconds": round(deleted_seconds, 1),
            "ready_seconds": round(ready_seconds, 1),
        },
    )
    got = Data(core_v1, ns, codelab_timeouts).snapshot(backup.expected.redis_key)
    assert not backup.expected.differences(got), (
        f"restored namespace {ns} differs: {backup.expected.differences(got)}"
    )

    last: dict[str, Result] = {}

    def serves() -> tuple[bool, str]:
        try:
            token = fresh_token(ingress_target, core_v1, apps_v1, ns)
        except AssertionError as exc:
            return False, str(exc).splitlines()[0]
        r = ingress_target.request(
            "POST",
            "/api/v1/sessions",
            body=json.dumps({"prompt": "after restore: say hi"}).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
            timeout=codelab_timeouts.completion,
        )
        last["r"] = r
        return r.status == 201, r.describe()

    wait_until(
        serves,
        timeout=codelab_timeouts.http * 4,
        what="a new token and POST /api/v1/sessions through the ingress",
        interval=3.0,
    )
    body = last["r"].json() or {}
    assert body.get("status") == "completed", body
