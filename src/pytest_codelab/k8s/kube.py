"""API client from a kubeconfig, and the preflight that turns a bad setup into one line.

The official client's own errors are long (a ConfigException's repr, a urllib3 retry
chain); the gate reads the kubeconfig itself first so that a missing file, an unknown
context, an unreachable server or a missing permission each get a short message that
says what to fix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import urllib3
import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from pytest_codelab.errors import (
    AccessDenied,
    ApiUnreachable,
    ContextError,
    KubeconfigError,
    one_line,
)

#: Seconds the preflight waits for the API server; a healthy one answers at once.


def load_kubeconfig(path: Path) -> dict[str, Any]:
    """The kubeconfig as data; KubeconfigError if missing, unreadable or not a kubeconfig."""
    if not path.is_file():
        raise KubeconfigError(
            f"kubeconfig not found: {path} (set --codelab-kubeconfig or KUBECONFIG)"
        )
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise KubeconfigError(f"kubeconfig {path} cannot be read: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise KubeconfigError(f"kubeconfig {path} is not valid YAML{where}") from None
    if not isinstance(data, dict) or not isinstance(data.get("contexts"), list):
        raise KubeconfigError(f"kubeconfig {path} has no contexts: not a kubeconfig file")
    return data


def context_names(kubeconfig: dict[str, Any]) -> list[str]:
    return [str(c["name"]) for c in kubeconfig.get("contexts") or [] if isinstance(c, dict)]


def resolve_context(kubeconfig: dict[str, Any], path: Path, context: str | None) -> str:
    """The context to use (the requested one, else the current one), which must exist."""
    names = context_names(kubeconfig)
    available = ", ".join(names) if names else "none"
    name = context or kubeconfig.get("current-context")
    if not name:
        raise ContextError(
            f"kubeconfig {path} has no current context; pass --codelab-context "
            f"(available: {available})"
        )
    if name not in names:
        raise ContextError(f"context {name!r} not found in {path}; available: {available}")
    return str(name)


def server_url(kubeconfig: dict[str, Any], context: str) -> str:
    """The API server URL of a context, for messages (``?`` if the file does not say)."""
    ctx = next(c for c in kubeconfig["contexts"] if c.get("name") == context)
    cluster_name = (ctx.get("context") or {}).get("cluster")
    for cluster in kubeconfig.get("clusters") or []:
        if isinstance(cluster, dict) and cluster.get("name") == cluster_name:
            return str((cluster.get("cluster") or {}).get("server", "?"))
    return "?"


@dataclass(frozen=True)
class Target:
    """Which cluster a client talks to, as the user named it."""

    kubeconfig: Path
    context: str
    server: str


def target(kubeconfig: Path, context: str | None) -> Target:
    """Validate the kubeconfig file and context without touching the network."""
    data = load_kubeconfig(kubeconfig)
    name = resolve_context(data, kubeconfig, context)
    return Target(kubeconfig, name, server_url(data, name))


def new_client(
    kubeconfig: Path, context: str | None, *, retries: int | None = None
) -> client.ApiClient:
    """An ApiClient for the kubeconfig/context (official client's new_client_from_config)."""
    tgt = target(kubeconfig, context)
    configuration = client.Configuration()
    if retries is not None:
        configuration.retries = retries
    try:
        return config.new_client_from_config(
            config_file=str(kubeconfig),
            context=tgt.context,
            persist_config=False,
            client_configuration=configuration,
        )
    except Exception as exc:  # ConfigException, exec plugin failures, bad certificates ...
        raise KubeconfigError(
            f"kubeconfig {kubeconfig}, context {tgt.context}: {_short(exc)}"
        ) from None


def _short(exc: BaseException) -> str:
    """The useful part of a client or urllib3 error, in one short line."""
    if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason is not None:
        exc = exc.reason
    text = one_line(str(exc))
    errno = re.search(r"\[Errno -?\d+\] [^)'\"]+", text)
    if errno:
        return errno.group(0).strip()
    if isinstance(exc, ApiException):
        return one_line(f"HTTP {exc.status} {exc.reason or ''}")
    return text[:200] if text else type(exc).__name__


def check_reachable(api: client.ApiClient, tgt: Target, timeout: float) -> str:
    """The server's version (e.g. ``v1.37.2``); ApiUnreachable / AccessDenied otherwise."""
    try:
        version = client.VersionApi(api).get_code(_request_timeout=timeout)
    except ApiException as exc:
        if exc.status == 401:
            raise AccessDenied(
                f"API server {tgt.server} rejected the credentials of context "
                f"{tgt.context} (401 Unauthorized)"
            ) from None
        if exc.status == 403:  # reachable and authenticated; /version is merely hidden
            return "unknown"
        raise ApiUnreachable(
            f"API server {tgt.server} (context {tgt.context}) failed: {_short(exc)}"
        ) from None
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise ApiUnreachable(
            f"cannot reach the API server {tgt.server} (context {tgt.context}): {_short(exc)}"
        ) from None
    return str(version.git_version)


@dataclass(frozen=True)
class Access:
    """One permission the gate needs, checked with a SelfSubjectAccessReview."""

    verb: str
    resource: str
    group: str = ""
    namespace: str | None = None
    subresource: str | None = None

    def __str__(self) -> str:
        what = self.resource + (f"/{self.subresource}" if self.subresource else "")
        if self.group:
            what += f".{self.group}"
        where = f" in namespace {self.namespace}" if self.namespace else ""
        return f"{self.verb} {what}{where}"


def required_access(namespace: str | None) -> list[Access]:
    """What a run needs: manage its own namespaces, or work inside the given one."""
    if namespace is None:
        return [
            Access("create", "namespaces"),
            Access("delete", "namespaces"),
            Access("list", "namespaces"),
        ]
    return [
        Access("list", "pods", namespace=namespace),
        Access("list", "deployments", "apps", namespace=namespace),
        Access("list", "statefulsets", "apps", namespace=namespace),
        Access("list", "events", namespace=namespace),
    ]


def is_allowed(api: client.ApiClient, access: Access) -> bool:
    review = client.V1SelfSubjectAccessReview(
        spec=client.V1SelfSubjectAccessReviewSpec(
            resource_attributes=client.V1ResourceAttributes(
                verb=access.verb,
                resource=access.resource,
                group=access.group,
                namespace=access.namespace,
                subresource=access.subresource,
            )
        )
    )
    result = client.AuthorizationV1Api(api).create_self_subject_access_review(review)
    return bool(result.status and result.status.allowed)


def check_access(api: client.ApiClient, tgt: Target, needed: list[Access]) -> None:
    """AccessDenied naming every missing permission, in one line."""
    try:
        denied = [str(a) for a in needed if not is_allowed(api, a)]
    except ApiException as exc:
        raise AccessDenied(
            f"context {tgt.context} cannot check its permissions: {_short(exc)}"
        ) from None
    if denied:
        raise AccessDenied(
            f"context {tgt.context} is not allowed to {'; '.join(denied)} (RBAC); "
            "grant these or use another context"
        )


def preflight(
    kubeconfig: Path, context: str | None, namespace: str | None, *, timeout: float
) -> Target:
    """Everything a run needs from the cluster, checked before any test: GateError if not.

    ``timeout`` bounds the reachability request (the run's scaled ``Timeouts.api``)."""
    tgt = target(kubeconfig, context)
    api = new_client(kubeconfig, tgt.context, retries=0)
    try:
        check_reachable(api, tgt, timeout)
        check_access(api, tgt, required_access(namespace))
    finally:
        api.close()
    return tgt


def missing_kind_reason(api: client.ApiClient, api_version: str, kind: str) -> str | None:
    """None if the cluster serves ``kind`` in ``api_version``, else a skip reason.

    Used for optional add-ons with CRDs (VerticalPodAutoscaler, Velero's Backup): their
    absence is a property of the cluster, not a failure of CodeLab.
    """
    group, _, version = api_version.rpartition("/")
    try:
        if group:
            resources = client.CustomObjectsApi(api).get_api_resources(group, version)
        else:
            resources = client.CoreV1Api(api).get_api_resources()
    except ApiException as exc:
        if exc.status == 404:
            return f"{kind} ({api_version}) is not served by this cluster: CRD not installed"
        raise
    if any(r.kind == kind for r in resources.resources):
        return None
    return f"{kind} ({api_version}) is not served by this cluster: CRD not installed"
