"""Load a manifests folder and render its objects for one target namespace.

Why: the gate deploys the same raw YAML an operator would apply, but into an ephemeral
namespace, with the operator's values file (``helm install -f``) and the image/ingress overrides
of the run.
All of that happens here, in one pass over deep copies, so a suite never patches objects itself.
How values reach objects is one table (:data:`BINDINGS`) plus a few named constants: read it
to know exactly which values are honoured (the rest are validated but not rendered; see
manifests/README.md).
"""

from __future__ import annotations

import copy
import re
import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pytest_codelab.deploy.objectshapes import shape_problems
from pytest_codelab.deploy.shapes import plain_problem, too_large
from pytest_codelab.deploy.values import Values, Workload
from pytest_codelab.deploy.valueschema import SECRET_ENV, ValuesError
from pytest_codelab.errors import GateError

Obj = dict[str, Any]

SOURCE_ANNOTATION = "codelab.dev/source"
DEFAULT_CODELAB_REGISTRY = "ghcr.io/codelab"
#: The namespace the bundled NetworkPolicies name for the ingress controller.
DEFAULT_INGRESS_NAMESPACE = "ingress-nginx"
NAMESPACE_LABEL = "kubernetes.io/metadata.name"
NAME_LABEL = "app.kubernetes.io/name"
WORKLOAD_KINDS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"})


@dataclass(frozen=True)
class Binding:
    """Which object a workload's values drive.

    ``values_path`` names a workload in the values schema (see ``Values.workload``); the
    values' replicas, image, pull policy, resources, env, secrets go to ``container`` of
    ``kind/name``; autoscaling goes to the HPA whose scaleTargetRef is that workload (created if
    values enable autoscaling and none exists); persistence goes to the volumeClaimTemplate
    ``volume_claim``. ``enabled: false`` drops every object labelled ``app.kubernetes.io/name:
    <name>``.
    """

    values_path: str
    kind: str
    name: str
    container: str
    volume_claim: str | None = None


#: THE mapping from values to objects.
BINDINGS: tuple[Binding, ...] = (
    Binding("gateway", "Deployment", "gateway", "gateway"),
    Binding("agentRuntime", "Deployment", "agent-runtime", "agent-runtime"),
    Binding("authService", "Deployment", "auth-service", "auth-service"),
    Binding("llmProxy", "Deployment", "llm-proxy", "llm-proxy"),
    Binding("postgresql.primary", "StatefulSet", "postgres", "postgres", "postgres-data"),
    Binding("redis.master", "StatefulSet", "redis", "redis", "redis-data"),
)
#: llmProxy.config -> this ConfigMap key, as YAML.
LLM_PROXY_CONFIG = ("llm-proxy-config", "config.yaml")
#: ingress.* and the ingress overrides -> this Ingress.
INGRESS_NAME = "codelab-ingress"
#: The workload whose container must be told that Redis auth cannot be switched off.
REDIS_WORKLOAD = ("StatefulSet", "redis")

CLUSTER_SCOPED_KINDS = frozenset(
    {
        "Namespace",
        "Node",
        "PersistentVolume",
        "StorageClass",
        "IngressClass",
        "PriorityClass",
        "RuntimeClass",
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "APIService",
        "ValidatingWebhookConfiguration",
        "MutatingWebhookConfiguration",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
        "CSIDriver",
        "VolumeSnapshotClass",
    }
)

#: kind -> apply rank: configuration first, then Services, stateful backends, apps, and the
#: objects that refer to them.
_APPLY_RANK: Mapping[str, int] = {
    "Namespace": 0,
    "CustomResourceDefinition": 1,
    "ServiceAccount": 2,
    "ConfigMap": 2,
    "Secret": 2,
    "PersistentVolumeClaim": 2,
    "LimitRange": 2,
    "ResourceQuota": 2,
    "Role": 3,
    "ClusterRole": 3,
    "RoleBinding": 4,
    "ClusterRoleBinding": 4,
    "Service": 5,
    "StatefulSet": 6,
    "Deployment": 7,
    "DaemonSet": 7,
    "Job": 7,
    "CronJob": 7,
    "Ingress": 8,
    "HorizontalPodAutoscaler": 9,
    "VerticalPodAutoscaler": 10,
    "PodDisruptionBudget": 11,
    "NetworkPolicy": 12,
}
_UNKNOWN_RANK = 13


class ManifestError(GateError, ValueError):
    """A manifests folder cannot be used; ``str()`` is one line naming file and line."""


class RenderWarning(UserWarning):
    """Values that could not be applied because the manifests lack the target object."""


def object_id(obj: Mapping[str, Any]) -> str:
    """``Kind/name``, the way every message names an object."""
    return f"{obj.get('kind', '?')}/{(obj.get('metadata') or {}).get('name', '?')}"


# --------------------------------------------------------------------------- loading


#: libyaml's parser where PyYAML has it (ten times faster on a stack's files), same results.
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _documents(text: str, label: str) -> Iterator[tuple[int, Any]]:
    """(1-based start line, data) for each YAML document; ManifestError on bad YAML."""
    loader = _LOADER(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            yield node.start_mark.line + 1, loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ManifestError(f"{label}{line}: invalid YAML: {problem}") from None
    except RecursionError:
        raise ManifestError(f"{label}: invalid YAML: nested too deeply") from None
    finally:
        loader.dispose()


def _check_object(data: Any, where: str) -> Obj:
    """``data`` as a Kubernetes object whose fields the gate reads have their types;
    ManifestError naming ``where`` (file:line) and the object otherwise."""
    if not isinstance(data, dict):
        got = "a list" if isinstance(data, list) else repr(data)[:40]
        raise ManifestError(f"{where}: expected a Kubernetes object (a mapping), got {got}")
    for key in ("apiVersion", "kind"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise ManifestError(f"{where}: object without {key}")
    meta = data.get("metadata")
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str) or not meta["name"]:
        raise ManifestError(f"{where}: {data['kind']} without metadata.name")
    errors = shape_problems(data)
    if errors:
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ManifestError(f"{where}: {object_id(data)}: {errors[0]}{more}")
    return data


def _read(path: Path) -> str:
    """The text of a manifests file; ManifestError if it is too large or unreadable."""
    try:
        problem = too_large(path.stat().st_size)
        if problem:
            raise ManifestError(f"{path}: {problem}")
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{path}: cannot read: {exc}") from None


def _items(data: Any, where: str) -> list[Any]:
    """The objects of one YAML document (``kind: List`` expanded), once it is known to be
    plain data (no alias loop, no dates, string keys)."""
    problem = plain_problem(data)
    if problem:
        raise ManifestError(f"{where}: {problem}")
    if isinstance(data, dict) and data.get("kind") == "List":
        items = data.get("items") or []
        if not isinstance(items, list):
            raise ManifestError(f"{where}: List: items: expected a list")
        return items
    return [data]


def load_manifests(directory: Path) -> list[Obj]:
    """Every object of the ``*.yaml``/``*.yml`` files directly in ``directory``, in file order.

    Subfolders (``profiles/``) are not read. ``kind: List`` is expanded. Each object gets a
    ``codelab.dev/source: <file>:<line>`` annotation so failures can point at the YAML.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise ManifestError(f"manifests folder {directory}: not found or not a folder")
    files = sorted(p for p in directory.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    if not files:
        raise ManifestError(f"manifests folder {directory}: no *.yaml files")
    objects: list[Obj] = []
    seen: dict[tuple[str, str, str], str] = {}
    for path in files:
        for line, data in _documents(_read(path), str(path)):
            if data is None:
                continue
            where = f"{path}:{line}"
            for item in _items(data, where):
                obj = _check_object(item, where)
                key = (obj["kind"], obj["metadata"].get("namespace") or "", obj["metadata"]["name"])
                if key in seen:
                    raise ManifestError(
                        f"{where}: duplicate {object_id(obj)} (first at {seen[key]})"
                    )
                seen[key] = where
                annotations = obj["metadata"].setdefault("annotations", {}) or {}
                obj["metadata"]["annotations"] = annotations
                annotations[SOURCE_ANNOTATION] = f"{path.name}:{line}"
                objects.append(obj)
    return objects


def source_of(obj: Mapping[str, Any]) -> str | None:
    """``file:line`` the object was loaded from, if known."""
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    value = annotations.get(SOURCE_ANNOTATION)
    return value if isinstance(value, str) else None


# --------------------------------------------------------------------------- helpers


def pod_spec(obj: Mapping[str, Any]) -> dict[str, Any] | None:
    """The pod spec of a workload (Deployment, StatefulSet, Job, CronJob...), else None."""
    spec = obj.get("spec") or {}
    if obj.get("kind") == "CronJob":
        spec = ((spec.get("jobTemplate") or {}).get("spec")) or {}
    if obj.get("kind") == "Pod":
        return spec if isinstance(spec, dict) else None
    template = spec.get("template") if isinstance(spec, dict) else None
    if isinstance(template, dict) and isinstance(template.get("spec"), dict):
        result: dict[str, Any] = template["spec"]
        return result
    return None


def containers(obj: Mapping[str, Any], *, init: bool = True) -> list[dict[str, Any]]:
    """The containers (and init containers) of a workload object."""
    spec = pod_spec(obj)
    if spec is None:
        return []
    out = list(spec.get("containers") or [])
    if init:
        out += list(spec.get("initContainers") or [])
    return [c for c in out if isinstance(c, dict)]


_IMAGE_RE = re.compile(r"^(?P<repo>[^@]+?)(?::(?P<tag>[\w][\w.-]{0,127}))?(?:@(?P<digest>.+))?$")


def split_image(ref: str) -> tuple[str, str | None, str | None]:
    """(repository, tag, digest) of an image reference; a registry port is not a tag."""
    m = _IMAGE_RE.match(ref)
    if m is None:
        return ref, None, None
    repo, tag, digest = m.group("repo"), m.group("tag"), m.group("digest")
    if tag is not None and "/" in tag:  # pragma: no cover - the regex excludes '/'
        return ref, None, None
    return repo, tag, digest


def join_image(repo: str, tag: str | None, digest: str | None = None) -> str:
    return repo + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")


def _find(objects: Iterable[Obj], kind: str, name: str) -> Obj | None:
    for obj in objects:
        if obj["kind"] == kind and obj["metadata"]["name"] == name:
            return obj
    return None


def _container(workload: Obj, name: str) -> dict[str, Any] | None:
    found = containers(workload, init=False)
    for c in found:
        if c.get("name") == name:
            return c
    return found[0] if found else None


# --------------------------------------------------------------------------- values


def _apply_resources(container: dict[str, Any], wl: Workload) -> None:
    if wl.resources is None:
        return
    res = container.setdefault("resources", {})
    for section, figures in (("requests", wl.resources.requests), ("limits", wl.resources.limits)):
        for what in ("cpu", "memory"):
            value = getattr(figures, what)
            if value is not None:
                res.setdefault(section, {})[what] = value


def _apply_env(container: dict[str, Any], wl: Workload) -> None:
    env: list[dict[str, Any]] = container.setdefault("env", [])
    index = {e.get("name"): i for i, e in enumerate(env)}

    def put(entry: dict[str, Any]) -> None:
        if entry["name"] in index:
            env[index[entry["name"]]] = entry
        else:
            index[entry["name"]] = len(env)
            env.append(entry)

    for var in wl.env:
        entry: dict[str, Any] = {"name": var.name}
        if var.value_from is not None:
            entry["valueFrom"] = copy.deepcopy(dict(var.value_from))
        else:
            entry["value"] = var.value if var.value is not None else ""
        put(entry)
    for name in wl.secret_env:
        if name in index:
            # Already set: from a Secret (maybe another one) is fine; a plain value stays
            # visible so that rule plain-secrets reports it rather than render hiding it.
            continue
        secret, key = SECRET_ENV[name]
        put({"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}})


def _apply_persistence(workload: Obj, claim: str, wl: Workload) -> None:
    p = wl.persistence
    if p is None:
        return
    templates: list[dict[str, Any]] = workload["spec"].get("volumeClaimTemplates") or []
    template = next((t for t in templates if (t.get("metadata") or {}).get("name") == claim), None)
    if template is None:
        return
    if not p.enabled:
        templates.remove(template)
        spec = pod_spec(workload)
        if spec is not None:
            spec.setdefault("volumes", []).append({"name": claim, "emptyDir": {}})
        return
    if p.size is not None:
        template["spec"].setdefault("resources", {}).setdefault("requests", {})["storage"] = p.size
    if p.storage_class is not None:
        template["spec"]["storageClassName"] = p.storage_class


def _hpas_for(objects: list[Obj], kind: str, name: str) -> list[Obj]:
    return [
        o
        for o in objects
        if o["kind"] == "HorizontalPodAutoscaler"
        and (o.get("spec") or {}).get("scaleTargetRef", {}).get("kind") == kind
        and (o.get("spec") or {}).get("scaleTargetRef", {}).get("name") == name
    ]


def _set_metric(hpa: Obj, resource: str, utilization: int) -> None:
    metrics: list[dict[str, Any]] = hpa["spec"].setdefault("metrics", [])
    target = {"type": "Utilization", "averageUtilization": utilization}
    for m in metrics:
        if m.get("type") == "Resource" and (m.get("resource") or {}).get("name") == resource:
            m["resource"]["target"] = target
            return
    metrics.append({"type": "Resource", "resource": {"name": resource, "target": target}})


def _apply_autoscaling(objects: list[Obj], workload: Obj, wl: Workload) -> None:
    auto = wl.autoscaling
    if auto is None:
        return
    kind, name = workload["kind"], workload["metadata"]["name"]
    hpas = _hpas_for(objects, kind, name)
    if not auto.enabled:
        for stale in hpas:
            objects.remove(stale)
        return
    if not hpas:
        labels = dict(workload["metadata"].get("labels") or {})
        created: Obj = {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": f"{name}-hpa", "labels": labels},
            "spec": {
                "scaleTargetRef": {
                    "apiVersion": workload["apiVersion"],
                    "kind": kind,
                    "name": name,
                },
                "minReplicas": auto.min_replicas or 1,
                "maxReplicas": auto.max_replicas or auto.min_replicas or 1,
                "metrics": [],
            },
        }
        objects.append(created)
        hpas = [created]
    for hpa in hpas:
        if auto.min_replicas is not None:
            hpa["spec"]["minReplicas"] = auto.min_replicas
        if auto.max_replicas is not None:
            hpa["spec"]["maxReplicas"] = auto.max_replicas
        if auto.target_cpu is not None:
            _set_metric(hpa, "cpu", auto.target_cpu)
        if auto.target_memory is not None:
            _set_metric(hpa, "memory", auto.target_memory)


def _apply_binding(objects: list[Obj], binding: Binding, values: Values) -> bool:
    """Apply one binding; False if the manifests lack its workload."""
    wl = values.workload(binding.values_path)
    workload = _find(objects, binding.kind, binding.name)
    if workload is None:
        return False
    if wl.replicas is not None and binding.kind == "Deployment":
        workload["spec"]["replicas"] = wl.replicas
    container = _container(workload, binding.container)
    if container is not None:
        if wl.image is not None:
            container["image"] = wl.image.ref
        if wl.image_pull_policy is not None:
            container["imagePullPolicy"] = wl.image_pull_policy
        _apply_resources(container, wl)
        _apply_env(container, wl)
    if binding.volume_claim is not None:
        _apply_persistence(workload, binding.volume_claim, wl)
    _apply_autoscaling(objects, workload, wl)
    return True


def _apply_ingress(
    objects: list[Obj], values: Values | None, host: str | None, ingress_class: str | None
) -> None:
    ingress = _find(objects, "Ingress", INGRESS_NAME)
    if ingress is None:
        if host or ingress_class:
            warnings.warn(
                f"ingress host/class not applied: the manifests have no Ingress/{INGRESS_NAME}",
                RenderWarning,
                stacklevel=3,
            )
        return
    if values is not None:
        host = host or (values.ingress.hosts[0].host if values.ingress.hosts else None)
        host = host or values.global_.domain
        ingress_class = ingress_class or values.ingress.class_name
        ingress["metadata"].setdefault("annotations", {}).update(values.ingress.annotations)
    spec = ingress.setdefault("spec", {})
    if ingress_class:
        spec["ingressClassName"] = ingress_class
    if host:
        for rule in spec.get("rules") or []:
            rule["host"] = host
        for tls in spec.get("tls") or []:
            tls["hosts"] = [host]
    if values is not None and values.ingress.tls and values.ingress.tls[0].secret_name:
        for tls in spec.get("tls") or []:
            tls["secretName"] = values.ingress.tls[0].secret_name


def _apply_values(objects: list[Obj], values: Values) -> list[Obj]:
    disabled = {b.name for b in BINDINGS if not values.workload(b.values_path).enabled}
    objects = [
        o for o in objects if (o["metadata"].get("labels") or {}).get(NAME_LABEL) not in disabled
    ]
    if not values.ingress.enabled:
        objects = [o for o in objects if o["kind"] != "Ingress"]
    if not values.redis_auth and _find(objects, *REDIS_WORKLOAD) is not None:
        raise ValuesError(
            f"{values.source}: redis.auth.enabled: false is not supported by these manifests "
            "(Redis always requires its generated password)"
        )
    if values.global_.image_pull_policy is not None:
        for obj in objects:
            for c in containers(obj):
                c["imagePullPolicy"] = values.global_.image_pull_policy
    # A binding the values say nothing about (a partial file) needs no target object.
    stated = [b for b in BINDINGS if values.workload(b.values_path) != Workload()]
    unbound = [
        f"{b.values_path}.* ({b.kind}/{b.name})"
        for b in stated
        if b.name not in disabled and not _apply_binding(objects, b, values)
    ]
    if unbound:
        warnings.warn(
            f"values not applied, the manifests lack their objects: {', '.join(unbound)}",
            RenderWarning,
            stacklevel=3,
        )
    if values.llm_proxy_config is not None:
        cm = _find(objects, "ConfigMap", LLM_PROXY_CONFIG[0])
        if cm is not None:
            cm.setdefault("data", {})[LLM_PROXY_CONFIG[1]] = yaml.safe_dump(
                copy.deepcopy(dict(values.llm_proxy_config)), sort_keys=False
            )
    return objects


# --------------------------------------------------------------------------- overrides


def _apply_image_overrides(
    objects: list[Obj], registry_prefix: str, image_registry: str | None, image_tag: str | None
) -> None:
    prefix = registry_prefix.rstrip("/") + "/"
    for obj in objects:
        for c in containers(obj):
            image = c.get("image")
            if not isinstance(image, str) or not image.startswith(prefix):
                continue
            repo, tag, digest = split_image(image)
            if image_tag:
                tag, digest = image_tag, None
            if image_registry:
                repo = image_registry.rstrip("/") + "/" + repo[len(prefix) :]
            c["image"] = join_image(repo, tag, digest)


def _rewrite_namespace_selector(selector: dict[str, Any], mapping: Mapping[str, str]) -> None:
    labels = selector.get("matchLabels") or {}
    if labels.get(NAMESPACE_LABEL) in mapping:
        labels[NAMESPACE_LABEL] = mapping[labels[NAMESPACE_LABEL]]
    for expr in selector.get("matchExpressions") or []:
        if expr.get("key") == NAMESPACE_LABEL and expr.get("values"):
            expr["values"] = [mapping.get(v, v) for v in expr["values"]]


def _apply_namespace(objects: list[Obj], namespace: str, ingress_namespace: str | None) -> None:
    sources = {
        o["metadata"]["namespace"]
        for o in objects
        if o["metadata"].get("namespace") and o["metadata"]["namespace"] != namespace
    }
    mapping = {ns: namespace for ns in sources}
    if ingress_namespace:
        mapping[DEFAULT_INGRESS_NAMESPACE] = ingress_namespace
    svc_re = (
        re.compile(r"\.(" + "|".join(re.escape(ns) for ns in sorted(sources)) + r")\.svc\b")
        if sources
        else None
    )
    for obj in objects:
        if obj["kind"] in CLUSTER_SCOPED_KINDS:
            obj["metadata"].pop("namespace", None)
        else:
            obj["metadata"]["namespace"] = namespace
        if obj["kind"] == "NetworkPolicy":
            spec = obj.get("spec") or {}
            for rule in (spec.get("ingress") or []) + (spec.get("egress") or []):
                for peer in (rule.get("from") or []) + (rule.get("to") or []):
                    if isinstance(peer.get("namespaceSelector"), dict):
                        _rewrite_namespace_selector(peer["namespaceSelector"], mapping)
        if obj["kind"] in ("RoleBinding", "ClusterRoleBinding"):
            for subject in obj.get("subjects") or []:
                if subject.get("namespace") in sources:
                    subject["namespace"] = namespace
        if svc_re is not None:
            for c in containers(obj):
                for e in c.get("env") or []:
                    if isinstance(e.get("value"), str):
                        e["value"] = svc_re.sub(f".{namespace}.svc", e["value"])


def render(
    objects: Iterable[Mapping[str, Any]],
    *,
    namespace: str,
    values: Values | None,
    image_registry: str | None = None,
    image_tag: str | None = None,
    ingress_host: str | None = None,
    ingress_class: str | None = None,
    ingress_namespace: str | None = None,
) -> list[Obj]:
    """The objects to apply in ``namespace``; the input objects are never modified.

    Order of application: values (drop disabled workloads; replicas, images, resources, env,
    secrets, HPA bounds/targets, PVC size/class, LiteLLM config, ingress host/TLS/class), then
    the run's overrides (``image_registry`` replaces the registry part — ``global.imageRegistry``
    or ghcr.io/codelab — of CodeLab images; ``image_tag`` replaces the tag of CodeLab images
    only; ``ingress_host``/``ingress_class`` win over values), then the namespace (set on every
    namespaced object; NetworkPolicy namespace selectors and ``*.<ns>.svc`` env URLs that named
    the manifests' own namespace follow it; ``ingress_namespace`` replaces the ingress
    controller namespace ``ingress-nginx`` in NetworkPolicies).
    """
    result: list[Obj] = [copy.deepcopy(dict(o)) for o in objects]
    if values is not None:
        result = _apply_values(result, values)
    _apply_ingress(result, values, ingress_host, ingress_class)
    registry_prefix = (
        values.global_.image_registry if values and values.global_.image_registry else None
    ) or DEFAULT_CODELAB_REGISTRY
    _apply_image_overrides(result, registry_prefix, image_registry, image_tag)
    _apply_namespace(result, namespace, ingress_namespace)
    return result


def apply_order(objects: Iterable[Mapping[str, Any]]) -> list[Obj]:
    """The objects sorted so that whatever an object refers to is applied before it (stable)."""
    return sorted(
        (dict(o) for o in objects), key=lambda o: _APPLY_RANK.get(o.get("kind", ""), _UNKNOWN_RANK)
    )
