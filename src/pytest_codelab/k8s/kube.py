"""API client from a kubeconfig, and the preflight that turns a bad setup into one line.

The official client's own errors are long (a ConfigException's repr, a urllib3 retry
chain); the gate reads the kubeconfig itself first so that a missing file, an unknown
context, an unreachable server or a missing permission each get a short message that
says what to fix.

The kubeconfig is read as kubectl reads it: a ``KUBECONFIG``-style list of files is merged
(the first file to name a cluster, user or context wins; the current context comes from
the first file that sets one; relative paths are relative to the file that holds them), so
that exec credential plugins, client certificates, token files and bearer tokens all work;
with no file at all inside a pod, the pod's service account is used (in-cluster).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
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
from pytest_codelab.k8s.access import Access, missing_access

#: Where a pod's service account is mounted (token, ca.crt, namespace).
SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
#: The context name of the in-cluster configuration (kubectl's own has none).
IN_CLUSTER = "in-cluster"
#: Keys holding file paths, which kubectl resolves relative to the file that holds them.
_PATH_KEYS = {
    "clusters": ("cluster", ("certificate-authority",)),
    "users": ("user", ("client-certificate", "client-key", "tokenFile")),
}


def kubeconfig_files(kubeconfig: Path | str) -> list[Path]:
    """The files of a kubeconfig value: one path or a list joined like ``KUBECONFIG``."""
    return [Path(p).expanduser() for p in str(kubeconfig).split(os.pathsep) if p]


def kubectl_env(kubeconfig: Path | str) -> dict[str, str]:
    """The environment a ``kubectl`` subprocess needs to read the same kubeconfig: its
    ``--kubeconfig`` takes one file, ``KUBECONFIG`` takes the whole list."""
    return {"KUBECONFIG": os.pathsep.join(str(p) for p in kubeconfig_files(kubeconfig))}


def _read_file(path: Path) -> dict[str, Any] | None:
    """One kubeconfig file as data (None if empty, as kubectl ignores empty files)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise KubeconfigError(f"kubeconfig {path} cannot be read: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise KubeconfigError(f"kubeconfig {path} is not valid YAML{where}") from None
    if data is None:
        return None
    if not isinstance(data, dict) or not all(
        isinstance(data.get(key) or [], list) for key in ("clusters", "users", "contexts")
    ):
        raise KubeconfigError(f"kubeconfig {path} has no contexts: not a kubeconfig file")
    return data


def _absolute(entry: dict[str, Any], section: str, folder: Path) -> dict[str, Any]:
    """``entry`` with its relative file paths (and exec command) made absolute."""
    inner_key, keys = _PATH_KEYS.get(section, ("", ()))
    inner = dict(entry.get(inner_key) or {}) if inner_key else {}
    for key in keys:
        value = inner.get(key)
        if isinstance(value, str) and value and not os.path.isabs(value):
            inner[key] = str(folder / value)
    plugin = inner.get("exec")
    if section == "users" and isinstance(plugin, dict):
        command = str(plugin.get("command") or "")
        if os.sep in command and not os.path.isabs(command):
            inner["exec"] = {**plugin, "command": str(folder / command)}
    return {**entry, inner_key: inner} if inner_key else dict(entry)


def merge_kubeconfigs(files: list[tuple[Path, dict[str, Any]]]) -> dict[str, Any]:
    """kubectl's merge: the first file to name a cluster, user or context wins; the
    current context is the first one set (the official client's merger lets the last win)."""
    merged: dict[str, Any] = {"apiVersion": "v1", "kind": "Config"}
    for section in ("clusters", "users", "contexts"):
        seen: dict[str, dict[str, Any]] = {}
        for path, data in files:
            for entry in data.get(section) or []:
                if isinstance(entry, dict) and entry.get("name") not in seen:
                    seen[str(entry.get("name"))] = _absolute(entry, section, path.parent)
        merged[section] = list(seen.values())
    current = next((d["current-context"] for _, d in files if d.get("current-context")), None)
    if current:
        merged["current-context"] = current
    return merged


def in_cluster_available(environ: Mapping[str, str] | None = None) -> bool:
    """Inside a pod with a mounted service account, as kubectl's in-cluster fallback sees it."""
    env = os.environ if environ is None else environ
    return bool(env.get("KUBERNETES_SERVICE_HOST")) and (SERVICE_ACCOUNT_DIR / "token").is_file()


def in_cluster_kubeconfig(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The pod's service account as a kubeconfig: the token is read from its file on each
    load, so a rotated projected token is picked up by the next client."""
    env = os.environ if environ is None else environ
    host, port = env["KUBERNETES_SERVICE_HOST"], env.get("KUBERNETES_SERVICE_PORT", "443")
    server = f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"
    namespace_file = SERVICE_ACCOUNT_DIR / "namespace"
    context: dict[str, Any] = {"cluster": IN_CLUSTER, "user": IN_CLUSTER}
    if namespace_file.is_file():
        context["namespace"] = namespace_file.read_text(encoding="utf-8").strip()
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": IN_CLUSTER,
                "cluster": {
                    "server": server,
                    "certificate-authority": str(SERVICE_ACCOUNT_DIR / "ca.crt"),
                },
            }
        ],
        "users": [{"name": IN_CLUSTER, "user": {"tokenFile": str(SERVICE_ACCOUNT_DIR / "token")}}],
        "contexts": [{"name": IN_CLUSTER, "context": context}],
        "current-context": IN_CLUSTER,
    }


def load_kubeconfig(path: Path | str) -> dict[str, Any]:
    """The kubeconfig as data, merged like kubectl from every existing file of ``path`` (one
    file or a ``KUBECONFIG``-style list); in a pod without any, the in-cluster one.
    KubeconfigError if none exists, one is unreadable, or one is not a kubeconfig."""
    found = [p for p in kubeconfig_files(path) if p.is_file()]
    if not found:
        if in_cluster_available():
            return in_cluster_kubeconfig()
        raise KubeconfigError(
            f"kubeconfig not found: {path} (set --codelab-kubeconfig or KUBECONFIG)"
        )
    files = [(p, data) for p in found if (data := _read_file(p)) is not None]
    merged = merge_kubeconfigs(files)
    if not merged["contexts"]:
        raise KubeconfigError(f"kubeconfig {path} has no contexts: not a kubeconfig file")
    return merged


def context_names(kubeconfig: dict[str, Any]) -> list[str]:
    return [str(c["name"]) for c in kubeconfig.get("contexts") or [] if isinstance(c, dict)]


def resolve_context(kubeconfig: dict[str, Any], path: Path | str, context: str | None) -> str:
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
    """Validate the kubeconfig file(s) and context without touching the network."""
    data = load_kubeconfig(kubeconfig)
    name = resolve_context(data, kubeconfig, context)
    return Target(kubeconfig, name, server_url(data, name))


def new_client(
    kubeconfig: Path, context: str | None, *, retries: int | None = None
) -> client.ApiClient:
    """An ApiClient for the kubeconfig/context, merged and resolved as kubectl does."""
    data = load_kubeconfig(kubeconfig)
    name = resolve_context(data, kubeconfig, context)
    configuration = client.Configuration()
    if retries is not None:
        configuration.retries = retries
    try:
        api = config.new_client_from_config_dict(
            _read_token_files(data, name),
            context=name,
            persist_config=False,
            client_configuration=configuration,
        )
    except Exception as exc:  # ConfigException, bad certificates, unreadable token files ...
        raise KubeconfigError(f"kubeconfig {kubeconfig}, context {name}: {_short(exc)}") from None
    _check_exec_credential(data, name, configuration, kubeconfig)
    return api


def _context_user(data: dict[str, Any], context: str) -> str | None:
    ctx = next(c for c in data["contexts"] if c.get("name") == context)
    user = (ctx.get("context") or {}).get("user")
    return str(user) if user else None


def _read_token_files(data: dict[str, Any], context: str) -> dict[str, Any]:
    """The context's user's ``tokenFile`` read as kubectl reads it, surrounding whitespace
    trimmed (the official client would send a final newline in the Authorization header)."""
    wanted = _context_user(data, context)
    users = []
    for entry in data.get("users") or []:
        user = dict(entry.get("user") or {})
        token_file = user.get("tokenFile")
        if entry.get("name") == wanted and token_file and not user.get("token"):
            try:
                user["token"] = Path(token_file).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise KubeconfigError(
                    f"token file {token_file} of user {entry.get('name')} cannot be read: "
                    f"{exc.strerror or exc}"
                ) from None
            del user["tokenFile"]
        users.append({**entry, "user": user})
    return {**data, "users": users}


def _check_exec_credential(
    data: dict[str, Any], context: str, configuration: client.Configuration, path: Path
) -> None:
    """The official client only logs a failed exec plugin and goes on without credentials
    (a 401 later, with no word of why); the gate stops here naming the plugin."""
    user_name = _context_user(data, context)
    user = next((u.get("user") or {} for u in data["users"] if u.get("name") == user_name), {})
    plugin = user.get("exec")
    if not isinstance(plugin, dict):
        return
    if configuration.api_key.get("BearerToken") or configuration.cert_file:
        return
    raise KubeconfigError(
        f"kubeconfig {path}, context {context}: the exec credential plugin "
        f"{plugin.get('command')!r} gave no token or client certificate"
    )


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


def check_permissions(kubeconfig: Path, context: str | None, needed: list[Access]) -> None:
    """AccessDenied naming every permission of ``needed`` the context lacks, in one line:
    ``preflight: missing permissions: create deployments.apps in namespace codelab, ...``."""
    tgt = target(kubeconfig, context)
    api = new_client(kubeconfig, tgt.context, retries=0)
    try:
        missing = missing_access(api, needed)
    except ApiException as exc:
        raise AccessDenied(
            f"preflight: context {tgt.context} cannot check its permissions: {_short(exc)}"
        ) from None
    finally:
        api.close()
    if missing:
        raise AccessDenied(
            f"preflight: missing permissions: {', '.join(map(str, missing))} "
            f"(context {tgt.context}; rbac/ has the Roles that grant them)"
        )


def preflight(kubeconfig: Path, context: str | None, *, timeout: float) -> Target:
    """The kubeconfig, the context and the API server, checked before any test: GateError
    if not usable. The permissions are checked once the tests are selected
    (:func:`check_permissions`). ``timeout`` bounds the reachability request."""
    tgt = target(kubeconfig, context)
    api = new_client(kubeconfig, tgt.context, retries=0)
    try:
        check_reachable(api, tgt, timeout)
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
