"""The schema of values files, shaped like the seed's ``values-prod.yaml``.

Why: operators size CodeLab with a Helm values file; the gate takes the same file so that the
figures of their install (replicas, resources, autoscaling, persistence) drive what is deployed
and checked. The schema is small and explicit so that a typo or a wrong type ends with one
line naming the full key path, never a traceback or a silently ignored key."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pytest_codelab.deploy.quantity import parse_quantity
from pytest_codelab.deploy.shapes import (
    Anything,
    ListOf,
    MapOf,
    Obj,
    Scalar,
    Spec,
    int_range,
    nonempty,
    one_of,
    problems,
)
from pytest_codelab.errors import GateError

#: Env var names a values file may list under ``<service>.secrets`` -> (Secret name, key).
#: The renderer wires each as a secretKeyRef; the table lives here because values validate it.
SECRET_ENV: Mapping[str, tuple[str, str]] = {
    "INTERNAL_API_KEY": ("api-keys", "internal-api-key"),
    "OPENAI_API_KEY": ("api-keys", "openai-api-key"),
    "JWT_SECRET_KEY": ("jwt-secret", "jwt-secret-key"),
    "OAUTH2_CLIENT_SECRET": ("oauth-secret", "client-secret"),
    "DATABASE_URL": ("postgres-secret", "connection-string"),
    "REDIS_URL": ("redis-secret", "url"),
    "LITELLM_MASTER_KEY": ("llm-proxy-secret", "master-key"),
    "LLM_PROXY_API_KEY": ("llm-proxy-secret", "master-key"),
}


class ValuesError(GateError, ValueError):
    """A values file or profile is unusable; ``str()`` is one line naming the key."""


def _quantity_check(v: Any) -> str | None:
    try:
        parse_quantity(v)
    except ValueError:
        return f"expected a quantity such as '500m' or '1Gi', got {v!r}"
    return None


STR = Scalar((str,), "a string")
SECRET_STR = Scalar((str,), "a string", sensitive=True)
NAME = Scalar((str,), "a string", nonempty)
BOOL = Scalar((bool,), "true or false")
COUNT = Scalar((int,), "an integer", int_range(0))
REPLICAS_MIN = Scalar((int,), "an integer", int_range(1))
PERCENT = Scalar((int,), "an integer", int_range(1, 100))
QUANTITY = Scalar((str, int, float), "a quantity such as '500m' or '1Gi'", _quantity_check)
PULL_POLICY = Scalar((str,), "a string", one_of("Always", "IfNotPresent", "Never"))
PATH_TYPE = Scalar((str,), "a string", one_of("Prefix", "Exact", "ImplementationSpecific"))
ARCHITECTURE = Scalar((str,), "a string", one_of("standalone", "replication"))

FIGURES = Obj({"cpu": QUANTITY, "memory": QUANTITY})
RESOURCES = Obj({"requests": FIGURES, "limits": FIGURES})
#: Resources of a workload the gate renders: requests and limits are both needed (rule
#: ``resources`` of the offline suite checks the rendered objects too).
RESOURCES_FULL = Obj(
    {
        "requests": Obj({"cpu": QUANTITY, "memory": QUANTITY}, required=("cpu", "memory")),
        "limits": Obj({"cpu": QUANTITY, "memory": QUANTITY}, required=("cpu", "memory")),
    },
    required=("requests", "limits"),
)
PERSISTENCE = Obj({"enabled": BOOL, "size": QUANTITY, "storageClass": STR, "accessMode": STR})
AUTOSCALING = Obj(
    {
        "enabled": BOOL,
        "minReplicas": REPLICAS_MIN,
        "maxReplicas": REPLICAS_MIN,
        "targetCPUUtilizationPercentage": PERCENT,
        "targetMemoryUtilizationPercentage": PERCENT,
    },
    required=("enabled",),
    whole=True,
)
ENV = ListOf(Obj({"name": NAME, "value": STR, "valueFrom": Anything()}, required=("name",)))
IMAGE = Obj({"repository": NAME, "tag": NAME}, required=("repository", "tag"), whole=True)
SECRETS = MapOf(SECRET_STR, keys=tuple(SECRET_ENV), what="secret")


def _service(extra: Mapping[str, Spec] | None = None) -> Obj:
    fields: dict[str, Spec] = {
        "enabled": BOOL,
        "replicaCount": COUNT,
        "image": IMAGE,
        "imagePullPolicy": PULL_POLICY,
        "resources": RESOURCES_FULL,
        "autoscaling": AUTOSCALING,
        "env": ENV,
        "secrets": SECRETS,
        "persistence": PERSISTENCE,
    }
    fields.update(extra or {})
    return Obj(fields, required=("replicaCount", "image", "resources"))


LITELLM_CONFIG = Obj(
    {
        "model_list": ListOf(
            Obj(
                {"model_name": NAME, "litellm_params": MapOf(Anything()), "model_info": Anything()},
                required=("model_name", "litellm_params"),
            )
        ),
        "litellm_settings": MapOf(Anything()),
        "general_settings": MapOf(Anything()),
        "router_settings": MapOf(Anything()),
        "environment_variables": MapOf(Anything()),
    },
    required=("model_list",),
)

SCHEMA = Obj(
    {
        "global": Obj(
            {
                "domain": NAME,
                "environment": STR,
                "imageRegistry": NAME,
                "imagePullPolicy": PULL_POLICY,
            },
            required=("domain",),
        ),
        "ingress": Obj(
            {
                "enabled": BOOL,
                "className": NAME,
                "annotations": MapOf(STR, what="annotation"),
                "hosts": ListOf(
                    Obj(
                        {
                            "host": NAME,
                            "paths": ListOf(Obj({"path": NAME, "pathType": PATH_TYPE})),
                        },
                        required=("host",),
                    )
                ),
                "tls": ListOf(Obj({"secretName": NAME, "hosts": ListOf(NAME)})),
            }
        ),
        "gateway": _service(),
        "agentRuntime": _service(),
        "authService": _service(),
        "llmProxy": _service({"config": LITELLM_CONFIG}),
        "postgresql": Obj(
            {
                "enabled": BOOL,
                "auth": Obj(
                    {
                        "username": NAME,
                        "password": SECRET_STR,
                        "database": NAME,
                        "existingSecret": NAME,
                    }
                ),
                "primary": Obj(
                    {"persistence": PERSISTENCE, "resources": RESOURCES_FULL},
                    required=("resources",),
                ),
                "readReplicas": Obj(
                    {"replicaCount": COUNT, "persistence": PERSISTENCE, "resources": RESOURCES}
                ),
            },
            required=("primary",),
        ),
        "redis": Obj(
            {
                "enabled": BOOL,
                "architecture": ARCHITECTURE,
                "auth": Obj({"enabled": BOOL, "password": SECRET_STR, "existingSecret": NAME}),
                "master": Obj(
                    {"persistence": PERSISTENCE, "resources": RESOURCES_FULL},
                    required=("resources",),
                ),
                "replica": Obj(
                    {"replicaCount": COUNT, "persistence": PERSISTENCE, "resources": RESOURCES}
                ),
            },
            required=("master",),
        ),
        "monitoring": Obj(
            {
                "enabled": BOOL,
                "prometheus": Obj({"enabled": BOOL}),
                "grafana": Obj({"enabled": BOOL, "adminPassword": SECRET_STR}),
            }
        ),
    },
    required=(
        "global",
        "gateway",
        "agentRuntime",
        "authService",
        "llmProxy",
        "postgresql",
        "redis",
    ),
)


def _semantic_errors(data: Mapping[str, Any], partial: bool) -> list[str]:
    """Cross-field checks on a well-typed document (of what a partial one states)."""
    errors: list[str] = []
    for svc in ("gateway", "agentRuntime", "authService", "llmProxy"):
        auto = data.get(svc, {}).get("autoscaling") or {}
        lo, hi = auto.get("minReplicas"), auto.get("maxReplicas")
        if lo is not None and hi is not None and lo > hi:
            errors.append(f"{svc}.autoscaling: minReplicas {lo} > maxReplicas {hi}")
        if not partial and auto.get("enabled") and (lo is None or hi is None):
            errors.append(f"{svc}.autoscaling: enabled needs minReplicas and maxReplicas")
    resource_paths = [
        (svc, data.get(svc, {}).get("resources"))
        for svc in ("gateway", "agentRuntime", "authService", "llmProxy")
    ] + [
        ("postgresql.primary", data.get("postgresql", {}).get("primary", {}).get("resources")),
        ("redis.master", data.get("redis", {}).get("master", {}).get("resources")),
    ]
    for path, res in resource_paths:
        if not res:
            continue
        for what in ("cpu", "memory"):
            req = (res.get("requests") or {}).get(what)
            lim = (res.get("limits") or {}).get(what)
            if req is not None and lim is not None and parse_quantity(req) > parse_quantity(lim):
                errors.append(
                    f"{path}.resources: requests.{what} {req} is above limits.{what} {lim}"
                )
    return errors


def validate(data: Any, *, source: str, partial: bool = False) -> None:
    """Raise ValuesError (one line, first problem + count) unless ``data`` fits the schema."""
    errors: list[str] = []
    problems(SCHEMA, data, "", partial, errors)
    if not errors:
        errors = _semantic_errors(data, partial)
    if errors:
        more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
        raise ValuesError(f"{source}: {errors[0]}{more if len(errors) > 1 else ''}")
