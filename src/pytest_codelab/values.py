"""Values files shaped like the seed's ``values-prod.yaml``, and the ``prod``/``small`` profiles.

Why: operators size CodeLab with a Helm values file; the gate takes the same file so that the
figures of their install (replicas, resources, autoscaling, persistence) drive what is deployed
and checked. The schema below is small and explicit so that a typo or a wrong type ends with one
line naming the full key path, never a traceback or a silently ignored key.

Merging: an operator's values file is deep-merged over the chosen profile (mappings merge key by
key, lists and scalars replace), like ``helm install -f`` over a chart's defaults. So a file may
hold only what differs. With ``profile=None`` the file stands alone and must be complete.

Secrets: values files carry secret *placeholders* (the seed's ``your-secret-key``). Only their
names are kept (they say which env vars a service reads from a Secret); every secret value and
password is dropped while loading and never printed, even in error messages. Real secrets are
generated at deploy time (:mod:`pytest_codelab.secrets`).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import yaml

from pytest_codelab.resources import bundled_path

DEFAULT_PROFILE = "small"

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


class ValuesError(ValueError):
    """A values file or profile is unusable; ``str()`` is one line naming the key."""


# --------------------------------------------------------------------------- quantities

_QUANTITY_RE = re.compile(
    r"^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))"
    r"(?:([eE][+-]?[0-9]+)|(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E))?$"
)
_SUFFIX: Mapping[str, Decimal] = {
    "": Decimal(1),
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
    "Ki": Decimal(2**10),
    "Mi": Decimal(2**20),
    "Gi": Decimal(2**30),
    "Ti": Decimal(2**40),
    "Pi": Decimal(2**50),
    "Ei": Decimal(2**60),
}


def parse_quantity(value: str | int | float) -> Decimal:
    """A Kubernetes quantity ('500m', '1Gi', 2) as a number; ValueError if malformed."""
    if isinstance(value, bool):
        raise ValueError(f"not a quantity: {value!r}")
    if isinstance(value, int | float):
        return Decimal(str(value))
    m = _QUANTITY_RE.match(value.strip()) if isinstance(value, str) else None
    if m is None:
        raise ValueError(f"not a quantity: {value!r}")
    number, exponent, suffix = m.groups()
    if exponent:
        return Decimal(number) * (Decimal(10) ** int(exponent[1:]))
    return Decimal(number) * _SUFFIX[suffix or ""]


# --------------------------------------------------------------------------- schema nodes


@dataclass(frozen=True)
class Scalar:
    """A leaf: accepted Python types, how to name it in errors, and an optional extra check."""

    kinds: tuple[type, ...]
    label: str
    check: Callable[[Any], str | None] | None = None
    sensitive: bool = False


@dataclass(frozen=True)
class Obj:
    """A mapping with a fixed set of keys; ``required`` is enforced only on complete values."""

    fields: Mapping[str, Spec]
    required: tuple[str, ...] = ()


@dataclass(frozen=True)
class MapOf:
    """A mapping with free-form keys (annotations, secrets); ``keys`` restricts them if set."""

    value: Spec
    keys: tuple[str, ...] | None = None
    what: str = "key"


@dataclass(frozen=True)
class ListOf:
    item: Spec


@dataclass(frozen=True)
class Anything:
    """Free-form content passed through (LiteLLM settings, valueFrom)."""


Spec = Scalar | Obj | MapOf | ListOf | Anything


def _int_range(lo: int | None = None, hi: int | None = None) -> Callable[[Any], str | None]:
    def check(v: Any) -> str | None:
        if lo is not None and v < lo:
            return f"must be >= {lo}, got {v}"
        if hi is not None and v > hi:
            return f"must be <= {hi}, got {v}"
        return None

    return check


def _one_of(*choices: str) -> Callable[[Any], str | None]:
    def check(v: Any) -> str | None:
        return None if v in choices else f"expected one of {', '.join(choices)}, got {v!r}"

    return check


def _quantity_check(v: Any) -> str | None:
    try:
        parse_quantity(v)
    except ValueError:
        return f"expected a quantity such as '500m' or '1Gi', got {v!r}"
    return None


def _nonempty(v: Any) -> str | None:
    return None if str(v).strip() else "must not be empty"


STR = Scalar((str,), "a string")
SECRET_STR = Scalar((str,), "a string", sensitive=True)
NAME = Scalar((str,), "a string", _nonempty)
BOOL = Scalar((bool,), "true or false")
COUNT = Scalar((int,), "an integer", _int_range(0))
REPLICAS_MIN = Scalar((int,), "an integer", _int_range(1))
PERCENT = Scalar((int,), "an integer", _int_range(1, 100))
QUANTITY = Scalar((str, int, float), "a quantity such as '500m' or '1Gi'", _quantity_check)
PULL_POLICY = Scalar((str,), "a string", _one_of("Always", "IfNotPresent", "Never"))
PATH_TYPE = Scalar((str,), "a string", _one_of("Prefix", "Exact", "ImplementationSpecific"))
ARCHITECTURE = Scalar((str,), "a string", _one_of("standalone", "replication"))

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
)
ENV = ListOf(Obj({"name": NAME, "value": STR, "valueFrom": Anything()}, required=("name",)))
IMAGE = Obj({"repository": NAME, "tag": NAME}, required=("repository", "tag"))
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


# --------------------------------------------------------------------------- validation


def _describe(value: Any, sensitive: bool) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return "true" if value else "false"
    if sensitive:
        return f"a value of type {type(value).__name__}"
    if isinstance(value, float):
        return f'{value!r} (quote it: "{value}")'
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "...'"


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _suggest(key: str, known: Sequence[str]) -> str:
    lowered = {k.lower(): k for k in known}
    close = difflib.get_close_matches(key.lower(), list(lowered), n=1, cutoff=0.6)
    return f" (did you mean {lowered[close[0]]}?)" if close else ""


def _validate(spec: Spec, value: Any, path: str, partial: bool, errors: list[str]) -> None:
    """Append one message per problem; stops descending where the shape is already wrong."""
    if isinstance(spec, Anything):
        return
    if isinstance(spec, Scalar):
        ok = isinstance(value, spec.kinds) and not (
            isinstance(value, bool) and bool not in spec.kinds
        )
        if not ok:
            errors.append(f"{path}: expected {spec.label}, got {_describe(value, spec.sensitive)}")
        elif spec.check is not None:
            problem = spec.check(value)
            if problem:
                errors.append(f"{path}: {problem if not spec.sensitive else 'invalid value'}")
        return
    if isinstance(spec, ListOf):
        if not isinstance(value, list):
            errors.append(f"{path}: expected a list, got {_describe(value, False)}")
            return
        # A list replaces the profile's whole list when merged, so its items must be complete.
        for i, item in enumerate(value):
            _validate(spec.item, item, f"{path}[{i}]", False, errors)
        return
    if not isinstance(value, Mapping):
        errors.append(f"{path or 'top level'}: expected a mapping, got {_describe(value, False)}")
        return
    if isinstance(spec, MapOf):
        for key, item in value.items():
            key_s = str(key)
            if spec.keys is not None and key_s not in spec.keys:
                errors.append(
                    f"unknown {spec.what} {_join(path, key_s)}{_suggest(key_s, spec.keys)}"
                    f" (known: {', '.join(spec.keys)})"
                )
                continue
            _validate(spec.value, item, _join(path, key_s), partial, errors)
        return
    if not partial:  # the shallowest problem first: it explains the ones below it
        for key in spec.required:
            if key not in value:
                errors.append(f"missing key {_join(path, key)}")
    for key, item in value.items():
        key_s = str(key)
        if key_s not in spec.fields:
            errors.append(f"unknown key {_join(path, key_s)}{_suggest(key_s, list(spec.fields))}")
            continue
        _validate(spec.fields[key_s], item, _join(path, key_s), partial, errors)


def _semantic_errors(data: Mapping[str, Any]) -> list[str]:
    """Cross-field checks on a complete, well-typed document."""
    errors: list[str] = []
    for svc in ("gateway", "agentRuntime", "authService", "llmProxy"):
        auto = data.get(svc, {}).get("autoscaling") or {}
        lo, hi = auto.get("minReplicas"), auto.get("maxReplicas")
        if lo is not None and hi is not None and lo > hi:
            errors.append(f"{svc}.autoscaling: minReplicas {lo} > maxReplicas {hi}")
        if auto.get("enabled") and (lo is None or hi is None):
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
    _validate(SCHEMA, data, "", partial, errors)
    if not errors and not partial:
        errors = _semantic_errors(data)
    if errors:
        more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
        raise ValuesError(f"{source}: {errors[0]}{more if len(errors) > 1 else ''}")


# --------------------------------------------------------------------------- typed values


@dataclass(frozen=True)
class Figures:
    cpu: str | None = None
    memory: str | None = None


@dataclass(frozen=True)
class Resources:
    requests: Figures = Figures()
    limits: Figures = Figures()


@dataclass(frozen=True)
class Image:
    repository: str
    tag: str

    @property
    def ref(self) -> str:
        return f"{self.repository}:{self.tag}"


@dataclass(frozen=True)
class Autoscaling:
    enabled: bool
    min_replicas: int | None = None
    max_replicas: int | None = None
    target_cpu: int | None = None
    target_memory: int | None = None


@dataclass(frozen=True)
class Persistence:
    enabled: bool = True
    size: str | None = None
    storage_class: str | None = None


@dataclass(frozen=True)
class EnvVar:
    name: str
    value: str | None = None
    value_from: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Workload:
    """What values say about one workload; ``None`` means 'keep what the manifest says'."""

    enabled: bool = True
    replicas: int | None = None
    image: Image | None = None
    image_pull_policy: str | None = None
    resources: Resources | None = None
    autoscaling: Autoscaling | None = None
    persistence: Persistence | None = None
    env: tuple[EnvVar, ...] = ()
    secret_env: tuple[str, ...] = ()


@dataclass(frozen=True)
class IngressHost:
    host: str
    paths: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class IngressTLS:
    secret_name: str | None
    hosts: tuple[str, ...] = ()


@dataclass(frozen=True)
class IngressValues:
    enabled: bool = True
    class_name: str | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)
    hosts: tuple[IngressHost, ...] = ()
    tls: tuple[IngressTLS, ...] = ()


@dataclass(frozen=True)
class GlobalValues:
    domain: str
    environment: str | None = None
    image_registry: str | None = None
    image_pull_policy: str | None = None


@dataclass(frozen=True)
class Values:
    """A validated values document (secret values already dropped)."""

    source: str
    global_: GlobalValues
    ingress: IngressValues
    gateway: Workload
    agent_runtime: Workload
    auth_service: Workload
    llm_proxy: Workload
    #: The LiteLLM proxy config (model_list...) or None to keep the manifest's ConfigMap.
    llm_proxy_config: Mapping[str, Any] | None
    postgres_primary: Workload
    postgres_read_replicas: Workload
    postgres_username: str
    postgres_database: str
    redis_master: Workload
    redis_replica: Workload
    redis_architecture: str
    redis_auth: bool
    monitoring: bool

    #: values path -> attribute, the names the renderer's binding table uses.
    PATHS: ClassVar[Mapping[str, str]] = {
        "gateway": "gateway",
        "agentRuntime": "agent_runtime",
        "authService": "auth_service",
        "llmProxy": "llm_proxy",
        "postgresql.primary": "postgres_primary",
        "postgresql.readReplicas": "postgres_read_replicas",
        "redis.master": "redis_master",
        "redis.replica": "redis_replica",
    }

    def workload(self, path: str) -> Workload:
        """The workload values at a values path such as 'agentRuntime' or 'redis.master'."""
        try:
            attr = self.PATHS[path]
        except KeyError:
            raise KeyError(f"no workload at values path {path!r}") from None
        result: Workload = getattr(self, attr)
        return result


def _figures(raw: Mapping[str, Any] | None) -> Figures:
    raw = raw or {}
    return Figures(
        cpu=None if raw.get("cpu") is None else str(raw["cpu"]),
        memory=None if raw.get("memory") is None else str(raw["memory"]),
    )


def _resources(raw: Mapping[str, Any] | None) -> Resources | None:
    if not raw:
        return None
    return Resources(_figures(raw.get("requests")), _figures(raw.get("limits")))


def _persistence(raw: Mapping[str, Any] | None) -> Persistence | None:
    if raw is None:
        return None
    size = raw.get("size")
    return Persistence(
        enabled=raw.get("enabled", True),
        size=None if size is None else str(size),
        storage_class=raw.get("storageClass"),
    )


def _workload(raw: Mapping[str, Any] | None, *, enabled: bool | None = None) -> Workload:
    raw = raw or {}
    auto = raw.get("autoscaling")
    image = raw.get("image")
    return Workload(
        enabled=raw.get("enabled", True) if enabled is None else enabled,
        replicas=raw.get("replicaCount"),
        image=Image(image["repository"], image["tag"]) if image else None,
        image_pull_policy=raw.get("imagePullPolicy"),
        resources=_resources(raw.get("resources")),
        autoscaling=None
        if auto is None
        else Autoscaling(
            enabled=auto["enabled"],
            min_replicas=auto.get("minReplicas"),
            max_replicas=auto.get("maxReplicas"),
            target_cpu=auto.get("targetCPUUtilizationPercentage"),
            target_memory=auto.get("targetMemoryUtilizationPercentage"),
        ),
        persistence=_persistence(raw.get("persistence")),
        env=tuple(
            EnvVar(e["name"], e.get("value"), e.get("valueFrom")) for e in raw.get("env") or ()
        ),
        secret_env=tuple(raw.get("secrets") or ()),  # names only: the values are dropped
    )


def build_values(data: Mapping[str, Any], *, source: str) -> Values:
    """Typed values from a complete document (validates first)."""
    validate(data, source=source)
    g = data["global"]
    ing = data.get("ingress") or {}
    pg = data["postgresql"]
    redis = data["redis"]
    pg_on = pg.get("enabled", True)
    redis_on = redis.get("enabled", True)
    return Values(
        source=source,
        global_=GlobalValues(
            domain=g["domain"],
            environment=g.get("environment"),
            image_registry=g.get("imageRegistry"),
            image_pull_policy=g.get("imagePullPolicy"),
        ),
        ingress=IngressValues(
            enabled=ing.get("enabled", True),
            class_name=ing.get("className"),
            annotations=dict(ing.get("annotations") or {}),
            hosts=tuple(
                IngressHost(
                    h["host"],
                    tuple(
                        (p.get("path", "/"), p.get("pathType", "Prefix"))
                        for p in h.get("paths") or ()
                    ),
                )
                for h in ing.get("hosts") or ()
            ),
            tls=tuple(
                IngressTLS(t.get("secretName"), tuple(t.get("hosts") or ()))
                for t in ing.get("tls") or ()
            ),
        ),
        gateway=_workload(data["gateway"]),
        agent_runtime=_workload(data["agentRuntime"]),
        auth_service=_workload(data["authService"]),
        llm_proxy=_workload(data["llmProxy"]),
        llm_proxy_config=data["llmProxy"].get("config"),
        postgres_primary=_workload(pg["primary"], enabled=pg_on),
        postgres_read_replicas=_workload(pg.get("readReplicas"), enabled=pg_on),
        postgres_username=(pg.get("auth") or {}).get("username", "codelab"),
        postgres_database=(pg.get("auth") or {}).get("database", "codelab"),
        redis_master=_workload(redis["master"], enabled=redis_on),
        redis_replica=_workload(redis.get("replica"), enabled=redis_on),
        redis_architecture=redis.get("architecture", "standalone"),
        redis_auth=(redis.get("auth") or {}).get("enabled", True),
        monitoring=(data.get("monitoring") or {}).get("enabled", False),
    )


# --------------------------------------------------------------------------- loading


def _read_yaml(path: Path, source: str) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValuesError(f"{source}: file not found") from None
    except OSError as exc:
        raise ValuesError(f"{source}: cannot read ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ValuesError(f"{source}: invalid YAML{where}: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ValuesError(f"{source}: top level: expected a mapping, got {_describe(data, False)}")
    return data


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """Helm-like merge: mappings merge recursively, anything else in ``over`` replaces."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def available_profiles() -> list[str]:
    """Names of the bundled profiles (``prod``, ``small``)."""
    return sorted(p.stem for p in bundled_path("profiles").glob("*.yaml"))


def profile_path(name: str) -> Path:
    path = bundled_path("profiles") / f"{name}.yaml"
    if not path.is_file():
        raise ValuesError(f"unknown profile {name!r}; available: {', '.join(available_profiles())}")
    return path


def load_values(profile: str | None, values_file: Path | None) -> Values:
    """Values for a run: the profile, with the operator's file deep-merged over it.

    ``profile=None`` and no file -> the default profile; ``profile=None`` with a file -> the
    file alone, which must then be complete.
    """
    if profile is None and values_file is None:
        profile = DEFAULT_PROFILE
    base: Mapping[str, Any] = {}
    source = ""
    if profile is not None:
        source = f"profile {profile}"
        base = _read_yaml(profile_path(profile), source)
        validate(base, source=source)
    if values_file is None:
        return build_values(base, source=source)
    file_source = f"values file {values_file}"
    data = _read_yaml(Path(values_file), file_source)
    # Types and unknown keys first, against the file alone, so errors name the file's keys.
    validate(data, source=file_source, partial=True)
    merged = deep_merge(base, data)
    source = f"{file_source} over {source}" if profile is not None else file_source
    return build_values(merged, source=source)
