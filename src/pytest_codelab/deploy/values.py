"""Typed values: what a validated values document says about each workload and the ingress.

Secrets: values files carry secret *placeholders* (the seed's ``your-secret-key``). Only their
names are kept (they say which env vars a service reads from a Secret); every secret value and
password is dropped while loading and never printed, even in error messages. Real secrets are
generated at deploy time (:mod:`pytest_codelab.deploy.secrets`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pytest_codelab.deploy.valueschema import validate


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
    domain: str | None = None
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


def build_values(data: Mapping[str, Any], *, source: str, partial: bool = False) -> Values:
    """Typed values from a document (validates first).

    ``partial``: the document may leave out any key, like a file given to ``helm install -f``
    over a chart's defaults; what it leaves out is ``None`` (or an empty ``Workload``), which
    the renderer reads as 'keep what the manifests say'.
    """
    validate(data, source=source, partial=partial)
    g = data.get("global") or {}
    ing = data.get("ingress") or {}
    pg = data.get("postgresql") or {}
    redis = data.get("redis") or {}
    pg_on = pg.get("enabled", True)
    redis_on = redis.get("enabled", True)
    return Values(
        source=source,
        global_=GlobalValues(
            domain=g.get("domain"),
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
        gateway=_workload(data.get("gateway")),
        agent_runtime=_workload(data.get("agentRuntime")),
        auth_service=_workload(data.get("authService")),
        llm_proxy=_workload(data.get("llmProxy")),
        llm_proxy_config=(data.get("llmProxy") or {}).get("config"),
        postgres_primary=_workload(pg.get("primary"), enabled=pg_on),
        postgres_read_replicas=_workload(pg.get("readReplicas"), enabled=pg_on),
        postgres_username=(pg.get("auth") or {}).get("username", "codelab"),
        postgres_database=(pg.get("auth") or {}).get("database", "codelab"),
        redis_master=_workload(redis.get("master"), enabled=redis_on),
        redis_replica=_workload(redis.get("replica"), enabled=redis_on),
        redis_architecture=redis.get("architecture", "standalone"),
        redis_auth=(redis.get("auth") or {}).get("enabled", True),
        monitoring=(data.get("monitoring") or {}).get("enabled", False),
    )
