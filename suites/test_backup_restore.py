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
"""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import secrets
import time
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from pytest_codelab import namespaces, podtools, traffic
from pytest_codelab.cluster import RUN_KEY
from pytest_codelab.engine import velero
from pytest_codelab.errors import WaitTimeout
from pytest_codelab.fixtures import skip_if_missing_kind
from pytest_codelab.namespaces import NamespaceInfo
from pytest_codelab.safety import is_managed
from pytest_codelab.stack import StackInfo, wait_ready
from pytest_codelab.waiting import Timeouts, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.cluster, pytest.mark.slow]

GROUP, VERSION = velero.GROUP, velero.VERSION
TABLE = "codelab_gate_backup"
ROWS = 500
OBJECT_NAME = "codelab-gate-backup"
REDIS_KEY_PREFIX = "codelab:gate:backup:"
#: Ingresses are left out of the restore into a second namespace (the host is taken).
NO_INGRESS = ("ingresses.networking.k8s.io",)

#: Pre-backup hooks: flush PostgreSQL's dirty pages and write Redis' RDB, so the files the
#: node-agent copies are at rest.
PG_HOOK = podtools.psql_argv("CHECKPOINT")
REDIS_HOOK = podtools.redis_cli_argv("SAVE")


def checksum_sql(table: str) -> str:
    """count:md5 over a table's rows in a stable order (empty table: count 0, md5 of '')."""
    return (
        f"SELECT count(*) || ':' || md5(coalesce(string_agg(t::text, ',' "
        f"ORDER BY t::text), '')) FROM {table} t"
    )


# ----------------------------------------------------------------- data


@dataclass(frozen=True)
class Snapshot:
    """What must come back: PostgreSQL checksums per table, a Redis key, a Secret's and a
    ConfigMap's data (Secret values are compared, never shown)."""

    tables: Mapping[str, str]
    redis_key: str
    redis_value: str
    secret_data: Mapping[str, str] = field(repr=False)
    configmap_data: Mapping[str, str]

    def differences(self, other: Snapshot) -> list[str]:
        out = [
            f"table {t}: count:md5 {self.tables[t]} before, {other.tables.get(t)} after"
            for t in self.tables
            if other.tables.get(t) != self.tables[t]
        ]
        if other.redis_value != self.redis_value:
            out.append(
                f"redis key {self.redis_key}: value differs or is missing "
                f"({len(other.redis_value)} bytes read)"
            )
        if other.secret_data != self.secret_data:
            out.append(f"secret/{OBJECT_NAME}: data differs or is missing")
        if other.configmap_data != self.configmap_data:
            out.append(
                f"configmap/{OBJECT_NAME}: {other.configmap_data} instead of {self.configmap_data}"
            )
        return out


def _ready_pod(core: client.CoreV1Api, ns: str, app: str) -> client.V1Pod:
    for pod in core.list_namespaced_pod(ns, label_selector=f"app={app}").items:
        conds = {c.type: c.status for c in (pod.status.conditions if pod.status else None) or []}
        if conds.get("Ready") == "True" and pod.metadata.deletion_timestamp is None:
            return pod
    pytest.fail(f"no Ready pod with label app={app} in namespace {ns}")


def _container(pod: client.V1Pod, name: str) -> str:
    names = [c.name for c in pod.spec.containers]
    return name if name in names else names[0]


class Data:
    """Reads and writes the known data of one namespace through exec."""

    def __init__(self, core: client.CoreV1Api, ns: str, timeouts: Timeouts) -> None:
        self.core, self.ns, self.timeouts = core, ns, timeouts

    def _exec(self, app: str, argv: list[str]) -> str:
        pod = _ready_pod(self.core, self.ns, app)
        res = podtools.exec_in_pod(
            self.core,
            self.ns,
            pod.metadata.name,
            argv,
            container=_container(pod, app),
            timeout=self.timeouts.exec,
        )
        if not res.ok:
            pytest.fail(
                f"{app} in {self.ns}: {argv[0]} exited {res.exit_code}: {res.stderr.strip()[:300]}"
            )
        return res.stdout

    def psql(self, sql: str) -> str:
        return self._exec("postgres", podtools.psql_argv(sql)).strip()

    def redis(self, *args: str) -> str:
        return self._exec("redis", podtools.redis_cli_argv(*args)).strip()

    def tables(self) -> list[str]:
        """The gate's table and CodeLab's sessions table when it exists."""
        found = self.psql("SELECT coalesce(to_regclass('sessions')::text, '')")
        return [TABLE, *(["sessions"] if found else [])]

    def write(self) -> tuple[str, str, dict[str, str], dict[str, str]]:
        seed = secrets.token_hex(8)
        self.psql(
            f"CREATE TABLE IF NOT EXISTS {TABLE} (id int PRIMARY KEY, payload text "
            f"NOT NULL); TRUNCATE {TABLE}; INSERT INTO {TABLE} SELECT g, md5('{seed}' "
            f"|| g) FROM generate_series(1, {ROWS}) g;"
        )
        key, value = REDIS_KEY_PREFIX + seed, secrets.token_urlsafe(24)
        assert self.redis("SET", key, value) == "OK"
        secret = {"token": secrets.token_urlsafe(24)}
        configmap = {"seed": seed, "rows": str(ROWS)}
        meta = client.V1ObjectMeta(name=OBJECT_NAME, labels={"codelab.dev/purpose": "backup"})
        with contextlib.suppress(ApiException):
            self.core.delete_namespaced_secret(OBJECT_NAME, self.ns)
        with contextlib.suppress(ApiException):
            self.core.delete_namespaced_config_map(OBJECT_NAME, self.ns)
        self.core.create_namespaced_secret(
            self.ns, client.V1Secret(metadata=meta, string_data=secret)
        )
        self.core.create_namespaced_config_map(
            self.ns, client.V1ConfigMap(metadata=meta, data=configmap)
        )
        return key, value, secret, configmap

    def cleanup(self, redis_key: str) -> None:
        """Remove the known data again (best effort: the namespace may be gone)."""
        for step in (
            lambda: self.psql(f"DROP TABLE IF EXISTS {TABLE}"),
            lambda: self.redis("DEL", redis_key),
            lambda: self.core.delete_namespaced_secret(OBJECT_NAME, self.ns),
            lambda: self.core.delete_namespaced_config_map(OBJECT_NAME, self.ns),
        ):
            with contextlib.suppress(Exception, pytest.fail.Exception):
                step()

    def snapshot(self, redis_key: str) -> Snapshot:
        tables = {t: self.psql(checksum_sql(t)) for t in self.tables()}
        value = self.redis("GET", redis_key)
        try:
            raw = self.core.read_namespaced_secret(OBJECT_NAME, self.ns).data or {}
            secret = {k: base64.b64decode(v).decode() for k, v in raw.items()}
        except ApiException:
            secret = {}
        try:
            cm = dict(self.core.read_namespaced_config_map(OBJECT_NAME, self.ns).data or {})
        except ApiException:
            cm = {}
        return Snapshot(tables, redis_key, value, secret, cm)


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
        return dict(
            self.custom.create_namespaced_custom_object(
                GROUP, VERSION, self.namespace, plural, body
            )
        )

    def get(self, plural: str, name: str) -> dict[str, Any] | None:
        try:
            return dict(
                self.custom.get_namespaced_custom_object(
                    GROUP, VERSION, self.namespace, plural, name
                )
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def list(self, plural: str, selector: str = "") -> list[dict[str, Any]]:
        return list(
            self.custom.list_namespaced_custom_object(
                GROUP, VERSION, self.namespace, plural, label_selector=selector
            )["items"]
        )

    def delete(self, plural: str, name: str) -> None:
        with contextlib.suppress(ApiException):
            self.custom.delete_namespaced_custom_object(
                GROUP, VERSION, self.namespace, plural, name
            )

    def wait_final(self, plural: str, name: str, timeout: float) -> dict[str, Any]:
        """Wait until the Backup/Restore reaches a final phase; return it."""
        seen: dict[str, Any] = {}

        def probe() -> tuple[bool, str]:
            obj = self.get(plural, name)
            seen["obj"] = obj
            return velero.is_final(obj), velero.describe(obj)

        try:
            wait_until(probe, timeout=timeout, what=f"{plural[:-1]} {name} to finish", interval=2.0)
        except WaitTimeout as exc:
            pytest.fail(f"{exc}\n{self.explain(plural, name)}", pytrace=False)
        return dict(seen["obj"])

    def pod_volumes(self, plural: str, label: str, name: str) -> list[dict[str, Any]]:
        return self.list(plural, f"{label}={name}")

    def explain(self, plural: str, name: str) -> str:
        """The object's status and its pod volume operations, for a failure message."""
        obj = self.get(plural, name)
        lines = [f"{plural[:-1]} {self.namespace}/{name}: {velero.describe(obj)}"]
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
        return store.get("bucket") or velero.BUCKET, (prefix.rstrip("/") + "/" if prefix else "")


def bucket_usage(
    core: client.CoreV1Api, v: Velero, prefixes: Mapping[str, str]
) -> dict[str, tuple[int, int]]:
    """(objects, bytes) per prefix in the location's bucket, read from the engine's MinIO
    through a port-forward; {} when that MinIO (or its credentials) is not there."""
    try:
        raw = core.read_namespaced_secret(velero.MINIO_SECRET, v.namespace).data or {}
        pod = core.list_namespaced_pod(v.namespace, label_selector="component=minio").items
    except ApiException:
        return {}
    creds = velero.Credentials.from_secret_data(raw)
    if creds is None or not pod:
        return {}
    bucket, base = v.bucket()
    with podtools.port_forward(core, v.namespace, pod[0].metadata.name, 9000) as port:
        endpoint = f"http://127.0.0.1:{port}"
        return {
            name: velero.bucket_usage(endpoint, creds, bucket, base + prefix)
            for name, prefix in prefixes.items()
        }


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
        run.note(f"velero {what}: {summary(figures)}")


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
            GROUP, VERSION, velero_namespace, "backupstoragelocations"
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


def _pvc_volumes(core: client.CoreV1Api, ns: str) -> list[str]:
    """``<pod>/<volume>`` of every PVC-backed volume of the namespace's running pods."""
    out = []
    for pod in core.list_namespaced_pod(ns).items:
        if pod.metadata.deletion_timestamp is not None or pod.status.phase != "Running":
            continue
        for vol in pod.spec.volumes or []:
            if vol.persistent_volume_claim is not None:
                out.append(f"{pod.metadata.name}/{vol.name}")
    return sorted(out)


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
    pvc_volumes = _pvc_volumes(core_v1, ns)
    name = velero.object_name("gate", ns)
    pg = _container(_ready_pod(core_v1, ns, "postgres"), "postgres")
    rd = _container(_ready_pod(core_v1, ns, "redis"), "redis")
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
        obj = velero_api.wait_final("backups", name, codelab_timeouts.deploy)
        seconds = time.monotonic() - started
        volumes = velero_api.pod_volumes("podvolumebackups", "velero.io/backup-name", name)
        try:
            usage = bucket_usage(
                core_v1, velero_api, {"backup": f"backups/{name}/", "kopia": f"kopia/{ns}/"}
            )
        except Exception as exc:  # a measurement, not a verdict
            usage = {}
            print(f"[backup] bucket size not measured: {exc}")
        run = BackupRun(name, obj, volumes, expected, pvc_volumes, usage, seconds)
        yield run
        for restore_name in run.restores:
            velero_api.delete("restores", restore_name)
    finally:
        forget(velero_api, name, ns, codelab_timeouts)
        data.cleanup(key)


def forget(v: Velero, backup: str, ns: str, timeouts: Timeouts) -> None:
    """Delete the backup with its data (a DeleteBackupRequest), then, once Velero is done,
    the namespace's BackupRepository object (best effort: cleanup must not fail a test)."""
    try:
        v.create(velero.delete_backup_request(backup, v.namespace))
        wait_until(
            lambda: (v.get("backups", backup) is None, "backup still there"),
            timeout=timeouts.delete,
            what=f"backup {backup} to be deleted",
            interval=2.0,
        )
        for repo in v.list("backuprepositories", f"velero.io/volume-namespace={ns}"):
            v.delete("backuprepositories", repo["metadata"]["name"])
    except (ApiException, WaitTimeout) as exc:
        print(f"[backup] cleanup of {backup} incomplete: {str(exc).splitlines()[0]}")


def restore(
    v: Velero, run: BackupRun, timeouts: Timeouts, **kw: Any
) -> tuple[dict[str, Any], list[dict[str, Any]], float]:
    """Create a Restore of the module's backup and wait for its final phase."""
    name = velero.object_name("gate", run.name.removeprefix("gate-")[:30], "r")
    started = time.monotonic()
    v.create(velero.restore_manifest(name, run.name, namespace=v.namespace, **kw))
    run.restores.append(name)
    obj = v.wait_final("restores", name, timeouts.deploy)
    seconds = time.monotonic() - started
    volumes = v.pod_volumes("podvolumerestores", "velero.io/restore-name", name)
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
    namespaces.REAPER.add(target, functools.partial(_delete_quietly, core_v1, target))
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
        namespaces.delete(core_v1, target, timeout=max(codelab_timeouts.delete, 300.0))
        namespaces.REAPER.discard(target)


def _delete_quietly(core: client.CoreV1Api, name: str) -> None:
    with contextlib.suppress(Exception):
        namespaces.delete(core, name, timeout=5)


def fresh_token(
    target: traffic.Target, core: client.CoreV1Api, apps: client.AppsV1Api, ns: str
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
    result = traffic.request(
        target,
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
    ingress_target: traffic.Target,
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
    namespaces.delete(core_v1, ns, timeout=max(codelab_timeouts.delete, 300.0))
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

    last: dict[str, traffic.Result] = {}

    def serves() -> tuple[bool, str]:
        try:
            token = fresh_token(ingress_target, core_v1, apps_v1, ns)
        except AssertionError as exc:
            return False, str(exc).splitlines()[0]
        r = traffic.request(
            ingress_target,
            "POST",
            "/api/v1/sessions",
            body=json.dumps({"prompt": "after restore: say hi"}).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
            timeout=60,
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
