"""Known data in the stack's namespace that a backup must bring back, read through exec.

PostgreSQL rows with a checksum per table, a Redis key, a Secret and a ConfigMap are
written before a backup; a :class:`Snapshot` of them is compared after a restore. The
pre-backup hooks checkpoint PostgreSQL and save Redis, so the files the node-agent copies
are at rest. Secret values are compared, never shown.
"""

from __future__ import annotations

import base64
import contextlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from pytest_codelab.k8s import podtools
from pytest_codelab.k8s.waiting import Timeouts

TABLE = "codelab_gate_backup"
ROWS = 500
OBJECT_NAME = "codelab-gate-backup"
REDIS_KEY_PREFIX = "codelab:gate:backup:"
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


def _meta(pod: client.V1Pod) -> client.V1ObjectMeta:
    return pod.metadata or client.V1ObjectMeta()


def ready_pod(core: client.CoreV1Api, ns: str, app: str) -> client.V1Pod:
    """A Ready pod (not being deleted) with label ``app``; none is a failed check."""
    for pod in core.list_namespaced_pod(ns, label_selector=f"app={app}").items:
        conds = {c.type: c.status for c in (pod.status.conditions if pod.status else None) or []}
        if conds.get("Ready") == "True" and _meta(pod).deletion_timestamp is None:
            return pod
    raise AssertionError(f"no Ready pod with label app={app} in namespace {ns}")


def container_name(pod: client.V1Pod, name: str) -> str:
    """``name`` if the pod has a container of that name, else its first container's."""
    names = [c.name for c in (pod.spec.containers if pod.spec else [])]
    return name if name in names else names[0]


class Data:
    """Reads and writes the known data of one namespace through exec."""

    def __init__(self, core: client.CoreV1Api, ns: str, timeouts: Timeouts) -> None:
        self.core, self.ns, self.timeouts = core, ns, timeouts

    def _exec(self, app: str, argv: list[str]) -> str:
        pod = ready_pod(self.core, self.ns, app)
        res = podtools.exec_in_pod(
            self.core,
            self.ns,
            _meta(pod).name or "",
            argv,
            container=container_name(pod, app),
            timeout=self.timeouts.exec,
        )
        if not res.ok:
            raise AssertionError(
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
            with contextlib.suppress(Exception):
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


def pvc_volumes(core: client.CoreV1Api, ns: str) -> list[str]:
    """``<pod>/<volume>`` of every PVC-backed volume of the namespace's running pods."""
    out = []
    for pod in core.list_namespaced_pod(ns).items:
        phase = pod.status.phase if pod.status else None
        if _meta(pod).deletion_timestamp is not None or phase != "Running":
            continue
        for vol in (pod.spec.volumes if pod.spec else None) or []:
            if vol.persistent_volume_claim is not None:
                out.append(f"{_meta(pod).name}/{vol.name}")
    return sorted(out)
