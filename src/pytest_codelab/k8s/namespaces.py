"""Ephemeral namespaces: one per run and xdist worker, labelled, expiring, always removed.

Name ``codelab-<runid>-<worker>``; labels say who owns it and which run made it; the
``expires-at`` annotation lets a later run reap what a killed run left behind. Deletion
is guaranteed three ways: the session fixture's teardown (also after a failure or
Ctrl-C, which pytest turns into teardown), SIGTERM turned into KeyboardInterrupt (so the
same teardown runs), and an atexit safety net for whatever is still registered.
"""

from __future__ import annotations

import atexit
import getpass
import os
import re
import secrets
import shlex
import signal
import socket
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import FrameType

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from pytest_codelab.k8s.waiting import wait_until
from pytest_codelab.safety import MANAGED_BY, MANAGED_BY_LABEL, check_deletable, is_managed

RUN_ID_LABEL = "codelab.dev/run-id"
EXPIRES_AT = "codelab.dev/expires-at"
CREATED_BY = "codelab.dev/created-by"
#: Long enough for the slowest gate run; a namespace older than this is debris.
DEFAULT_TTL = timedelta(hours=3)

#: The one home of the namespace name format: ``codelab-<runid>-<worker>``.
NAME_PREFIX = "codelab"
_RUN_ID = "[0-9a-f]{6}"
_WORKER = "gw[0-9]+|main"
#: A namespace name the gate makes (``fullmatch`` it); report.cleanup recognises the gate's
#: load folders by it.
NAME_PATTERN = re.compile(rf"{NAME_PREFIX}-(?P<run_id>{_RUN_ID})-(?P<worker>{_WORKER})")


def new_run_id() -> str:
    """Six lowercase hex characters, shared by all workers of one run."""
    return secrets.token_hex(3)


def namespace_name(run_id: str, worker: str) -> str:
    """``codelab-<runid>-<worker>``; ValueError for ids that would not form a valid name."""
    if not re.fullmatch(_RUN_ID, run_id):
        raise ValueError(f"run id must be 6 lowercase hex characters, not {run_id!r}")
    if not re.fullmatch(_WORKER, worker):
        raise ValueError(f"worker must be 'main' or 'gw<N>', not {worker!r}")
    return f"{NAME_PREFIX}-{run_id}-{worker}"


def run_namespaces(run_id: str) -> str:
    """The namespaces of one run, as shown to people: ``codelab-<runid>-*``."""
    return f"{NAME_PREFIX}-{run_id}-*"


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def creator() -> str:
    """``user@host`` of whoever runs the gate, for the created-by annotation."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def namespace_labels(run_id: str) -> dict[str, str]:
    return {MANAGED_BY_LABEL: MANAGED_BY, RUN_ID_LABEL: run_id}


def namespace_annotations(now: datetime, ttl: timedelta, created_by: str) -> dict[str, str]:
    return {EXPIRES_AT: rfc3339(now + ttl), CREATED_BY: created_by}


def expires_at(annotations: Mapping[str, str] | None) -> datetime | None:
    """The expiry annotation as an aware datetime, None if absent or unreadable."""
    text = (annotations or {}).get(EXPIRES_AT)
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def is_expired(namespace: client.V1Namespace, now: datetime) -> bool:
    """Only a gate-managed namespace whose expiry has passed is expired."""
    meta = namespace.metadata or client.V1ObjectMeta()
    if not is_managed(meta.labels):
        return False
    expiry = expires_at(meta.annotations)
    return expiry is not None and expiry <= now


@dataclass(frozen=True)
class NamespaceInfo:
    """The namespace a worker tests in; ``created`` is True only for the gate's own."""

    name: str
    created: bool
    run_id: str | None = None


def manifest(
    name: str, run_id: str, *, now: datetime, ttl: timedelta = DEFAULT_TTL, created_by: str
) -> client.V1Namespace:
    """The Namespace object the gate creates."""
    return client.V1Namespace(
        metadata=client.V1ObjectMeta(
            name=name,
            labels=namespace_labels(run_id),
            annotations=namespace_annotations(now, ttl, created_by),
        )
    )


def create(
    core: client.CoreV1Api, name: str, run_id: str, *, timeout: float, ttl: timedelta = DEFAULT_TTL
) -> NamespaceInfo:
    """Create the namespace and wait for its default ServiceAccount (pods need it)."""
    body = manifest(name, run_id, now=datetime.now(UTC), ttl=ttl, created_by=creator())
    core.create_namespace(body)

    def service_account_ready() -> tuple[bool, str]:
        try:
            core.read_namespaced_service_account("default", name)
        except ApiException as exc:
            if exc.status == 404:
                return False, "no default ServiceAccount yet"
            raise
        return True, "default ServiceAccount present"

    wait_until(service_account_ready, timeout=timeout, what=f"namespace {name} to be usable")
    return NamespaceInfo(name=name, created=True, run_id=run_id)


def delete(core: client.CoreV1Api, name: str, *, timeout: float) -> None:
    """Delete a gate-managed namespace and wait until it is gone (SafetyError if not ours)."""
    try:
        namespace = core.read_namespace(name)
    except ApiException as exc:
        if exc.status == 404:
            return
        raise
    meta = namespace.metadata or client.V1ObjectMeta()
    check_deletable(name, meta.labels)
    if meta.deletion_timestamp is None:
        _request_delete(core, name)

    def gone() -> tuple[bool, str]:
        try:
            ns = core.read_namespace(name)
        except ApiException as exc:
            if exc.status == 404:
                return True, "gone"
            raise
        phase = ns.status.phase if ns.status else None
        return False, f"phase {phase}" + _blocking_conditions(ns)

    wait_until(gone, timeout=timeout, what=f"namespace {name} to be deleted", interval=2.0)


def _request_delete(core: client.CoreV1Api, name: str) -> None:
    try:
        core.delete_namespace(name, propagation_policy="Background")
    except ApiException as exc:
        if exc.status not in (404, 409):
            raise


def _blocking_conditions(namespace: client.V1Namespace) -> str:
    """Why a Terminating namespace is stuck (remaining content, finalizers)."""
    conditions = namespace.status.conditions if namespace.status else None
    stuck = [c.message for c in conditions or [] if c.status == "True" and c.message]
    return f" ({'; '.join(stuck)})" if stuck else ""


def reap_expired(core: client.CoreV1Api, now: datetime | None = None) -> list[str]:
    """Start deleting gate-managed namespaces past their expiry; return their names.

    Does not wait: they belong to dead runs and nobody waits for them.
    """
    moment = now or datetime.now(UTC)
    listing = core.list_namespace(label_selector=f"{MANAGED_BY_LABEL}={MANAGED_BY}")
    reaped = []
    for namespace in listing.items:
        meta = namespace.metadata or client.V1ObjectMeta()
        if meta.name and meta.deletion_timestamp is None and is_expired(namespace, moment):
            check_deletable(meta.name, meta.labels)
            _request_delete(core, meta.name)
            reaped.append(meta.name)
    return reaped


def delete_command(name: str, kubeconfig: str, context: str | None) -> str:
    """The kubectl command that removes a kept namespace."""
    ctx = f" --context {context}" if context else ""
    if os.pathsep in kubeconfig:  # a KUBECONFIG list: --kubeconfig takes one file
        return f"KUBECONFIG={shlex.quote(kubeconfig)} kubectl{ctx} delete namespace {name}"
    return f"kubectl --kubeconfig {kubeconfig}{ctx} delete namespace {name}"


class Reaper:
    """Namespaces created by this process and not deleted yet: the atexit safety net.

    Normally empty at exit because the fixture's teardown deleted them; after a crash in
    teardown or an interpreter exit without teardown, it issues the delete requests.
    """

    def __init__(self) -> None:
        self._pending: dict[str, Callable[[], None]] = {}
        self._lock = threading.Lock()
        self._registered = False

    def add(self, name: str, delete_fn: Callable[[], None]) -> None:
        with self._lock:
            if not self._registered:
                atexit.register(self.delete_all)
                self._registered = True
            self._pending[name] = delete_fn

    def discard(self, name: str) -> None:
        with self._lock:
            self._pending.pop(name, None)

    def pending(self) -> list[str]:
        with self._lock:
            return sorted(self._pending)

    def delete_all(self) -> None:
        with self._lock:
            items = list(self._pending.items())
            self._pending.clear()
        for _name, delete_fn in items:
            try:
                delete_fn()
            except Exception:  # best effort at exit; expiry reaping covers the rest
                pass


REAPER = Reaper()


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"received signal {signum}")


def install_sigterm_handler() -> Callable[[], None]:
    """Make SIGTERM behave like Ctrl-C (teardown runs); return a function undoing it.

    Only from the main thread and only if nobody else handles SIGTERM already.
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = signal.getsignal(signal.SIGTERM)
    if previous not in (signal.SIG_DFL, None):
        return lambda: None
    signal.signal(signal.SIGTERM, _interrupt)

    def restore() -> None:
        if signal.getsignal(signal.SIGTERM) is _interrupt:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)

    return restore
