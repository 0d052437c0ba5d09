"""The expectation: what the deployment must have, in the guide's figures or the operator's.

Why a file of its own and never the objects: a check that takes its expected side from the
object under test cannot fail. The expectation is a values file (the schema of the guide's
values-prod.yaml) plus an ``expect:`` section for what values cannot say (probes, Services,
Ingress paths, access modes, the VPA mode, secret references, the images and replica counts
of PostgreSQL and Redis). By default it is the guide's: ``manifests/profiles/prod.yaml`` (the
guide's values-prod.yaml) with ``manifests/expected/guide.yaml`` (the figures of its manual
install, each citing its section, deliberate deviations recorded with their reason);
``--codelab-expect FILE`` replaces the values and merges its ``expect:`` over the guide's.

Every figure keeps the key that states it (``gateway.autoscaling.maxReplicas``,
``expect.probes.gateway.readinessProbe.path``) so a mismatch can name it. Where values and the
``expect:`` section state the same figure, the values' figure wins.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from pytest_codelab.deploy.manifests import BINDINGS, DEFAULT_CODELAB_REGISTRY, INGRESS_NAME
from pytest_codelab.deploy.profiles import deep_merge, profile_document, read_document
from pytest_codelab.deploy.shapes import (
    ListOf,
    MapOf,
    Obj,
    Scalar,
    int_range,
    nonempty,
    one_of,
    problems,
)
from pytest_codelab.deploy.values import Values, Workload, build_values
from pytest_codelab.deploy.valueschema import (
    BOOL,
    NAME,
    PERCENT,
    QUANTITY,
    SECRET_ENV,
    ValuesError,
    validate,
)
from pytest_codelab.resources import bundled_path

#: The profile that is the guide's values-prod.yaml: the default expected values.
GUIDE_PROFILE = "prod"
GUIDE_FILE = "guide.yaml"
PROBES = ("startupProbe", "livenessProbe", "readinessProbe")
PROBE_FIELDS = (
    "path",
    "port",
    "initialDelaySeconds",
    "periodSeconds",
    "timeoutSeconds",
    "failureThreshold",
    "successThreshold",
)


# --------------------------------------------------------------------------- the model


class FigureId(NamedTuple):
    """Which figure: the comparison area, the object (kind/name), a part of it (a container,
    a volume claim) and the field."""

    area: str
    kind: str
    name: str
    part: str
    field: str


@dataclass(frozen=True)
class Figure:
    """One expected value and the key that states it (with the recorded deviation, if any)."""

    value: Any
    key: str
    deviation: str = ""


@dataclass(frozen=True)
class HpaFigures:
    """What the expectation says about the HPA of one workload (for suites: bounds, targets)."""

    workload: str
    name: str
    min_replicas: Figure | None
    max_replicas: Figure | None
    targets: Mapping[str, Figure]


@dataclass(frozen=True)
class Expectation:
    """Every expected figure by :class:`FigureId`; ``source`` says which file(s)."""

    source: str
    figures: Mapping[FigureId, Figure]
    image_registry: str = DEFAULT_CODELAB_REGISTRY

    def area(self, area: str) -> dict[FigureId, Figure]:
        return {i: f for i, f in self.figures.items() if i.area == area}

    def hpa(self, workload: str, kind: str = "Deployment") -> HpaFigures | None:
        """Bounds and utilization targets of the HPA of ``kind/workload`` (None: none stated)."""
        found = {
            i.field: f
            for i, f in self.figures.items()
            if i.area == "autoscaling" and (i.kind, i.name) == (kind, workload)
        }
        if not found:
            return None
        targets = {k.split(".", 1)[1]: f for k, f in found.items() if k.startswith("target.")}
        return HpaFigures(
            f"{kind}/{workload}",
            f"{workload}-hpa",
            found.get("minReplicas"),
            found.get("maxReplicas"),
            targets,
        )

    def ingress_annotations(self, name: str = INGRESS_NAME) -> dict[str, Figure]:
        """Annotation name -> expected value of the Ingress ``name`` (body size, timeouts...)."""
        prefix = "annotations."
        return {
            i.field[len(prefix) :]: f
            for i, f in self.figures.items()
            if i.area == "ingress" and i.name == name and i.field.startswith(prefix)
        }

    def with_registry(self, registry: str | None) -> Expectation:
        """The expectation as a run with ``--codelab-image-registry`` deploys it: expected
        repositories under the expectation's registry move to ``registry``."""
        if not registry:
            return self
        prefix = self.image_registry.rstrip("/") + "/"
        moved: dict[FigureId, Figure] = {}
        for i, f in self.figures.items():
            if i.area == "images" and str(f.value).startswith(prefix):
                repo = registry.rstrip("/") + "/" + str(f.value)[len(prefix) :]
                f = Figure(repo, f.key, f.deviation)
            moved[i] = f
        return Expectation(self.source, moved, registry)


# --------------------------------------------------------------------------- the schema

TEXT = Scalar((str,), "a string", nonempty)
COUNT = Scalar((int,), "an integer", int_range(0))
PORT = Scalar((int,), "a port number", int_range(1, 65535))
PORT_OR_NAME = Scalar((int, str), "a port number or name")
KIND = Scalar((str,), "a string", one_of("Deployment", "StatefulSet"))
SECRET_REF = Scalar(
    (str,),
    "'<secret>/<key>'",
    lambda v: None if v.count("/") == 1 and all(v.split("/")) else "expected '<secret>/<key>'",
)
UPDATE_MODE = Scalar(
    (str,), "a string", one_of("Off", "Initial", "Recreate", "InPlaceOrRecreate", "Auto")
)
ACCESS_MODE = Scalar(
    (str,),
    "a string",
    one_of("ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod"),
)
CITED = {"guide": TEXT, "deviation": TEXT}
PROBE = Obj(
    {
        "path": NAME,
        "port": PORT_OR_NAME,
        **{k: COUNT for k in PROBE_FIELDS[2:]},
    }
)


def _entry(fields: Mapping[str, Any], required: tuple[str, ...] = ()) -> Obj:
    """An entry about one workload's container: cited, ``kind``/``container`` optional."""
    return Obj({**CITED, "kind": KIND, "container": NAME, **fields}, required=("guide", *required))


EXPECT = Obj(
    {
        "replicas": MapOf(_entry({"replicas": COUNT}, ("replicas",))),
        "images": MapOf(_entry({"repository": NAME}, ("repository",))),
        "probes": MapOf(_entry({p: PROBE for p in PROBES})),
        "secretRefs": MapOf(_entry({"env": MapOf(SECRET_REF, what="env var")}, ("env",))),
        "autoscaling": MapOf(
            _entry(
                {
                    "minReplicas": COUNT,
                    "maxReplicas": COUNT,
                    "targets": MapOf(PERCENT, keys=("cpu", "memory"), what="target"),
                }
            )
        ),
        "volumeClaims": MapOf(
            Obj(
                {
                    **CITED,
                    "kind": KIND,
                    "workload": NAME,
                    "size": QUANTITY,
                    "accessModes": ListOf(ACCESS_MODE),
                },
                required=("guide", "workload"),
            )
        ),
        "services": MapOf(
            Obj(
                {
                    **CITED,
                    "ports": ListOf(
                        Obj({"port": PORT, "targetPort": PORT_OR_NAME}, required=("port",))
                    ),
                    "headless": BOOL,
                },
                required=("guide", "ports"),
            )
        ),
        "ingresses": MapOf(
            Obj(
                {
                    **CITED,
                    "paths": ListOf(
                        Obj(
                            {"path": NAME, "pathType": NAME, "service": NAME, "port": PORT},
                            required=("path", "pathType", "service", "port"),
                        )
                    ),
                },
                required=("guide", "paths"),
            )
        ),
        "vpas": MapOf(
            Obj(
                {**CITED, "target": NAME, "updateMode": UPDATE_MODE},
                required=("guide", "target", "updateMode"),
            )
        ),
        # The cluster's workers and what losing one may cost (suites/test_nodes.py).
        "nodes": Obj(
            {
                "workers": Obj({**CITED, "count": COUNT}, required=("guide", "count")),
                "loss": Obj(
                    {
                        **CITED,
                        "basis": TEXT,
                        "maxFailedPercent": Scalar((int,), "an integer", int_range(0, 100)),
                        "recoverySeconds": COUNT,
                    },
                    required=("guide", "basis", "maxFailedPercent", "recoverySeconds"),
                ),
            }
        ),
    }
)


# --------------------------------------------------------------------------- loading


def guide_section() -> Mapping[str, Any]:
    """The bundled ``expect:`` section (manifests/expected/guide.yaml)."""
    path = bundled_path("expected") / GUIDE_FILE
    return _section(read_document(path, f"guide expectation {path}"), str(path))


def _section(doc: Mapping[str, Any], source: str) -> dict[str, Any]:
    section = doc.get("expect")
    if section is None:
        return {}
    if not isinstance(section, Mapping):
        raise ValuesError(f"{source}: expect: expected a mapping")
    return dict(section)


def load_expectation(path: Path | None) -> Expectation:
    """The expectation of a run: the guide's, or ``path`` (``--codelab-expect``) with its
    ``expect:`` merged over the guide's. ValuesError (one line naming the key) when unusable."""
    guide = guide_section()
    if path is None:
        source = f"the guide (profile {GUIDE_PROFILE} + expected/{GUIDE_FILE})"
        values_doc: Mapping[str, Any] = profile_document(GUIDE_PROFILE)
        section: Mapping[str, Any] = guide
    else:
        source = f"expected-values file {path}"
        doc = read_document(Path(path), source)
        values_doc = {k: v for k, v in doc.items() if k != "expect"}
        validate(values_doc, source=source, partial=True)
        section = deep_merge(guide, _section(doc, source))
    errors: list[str] = []
    problems(EXPECT, section, "expect", False, errors)
    if errors:
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ValuesError(f"{source}: {errors[0]}{more}")
    values = build_values(values_doc, source=source, partial=True)
    return build_expectation(values, section, source)


def build_expectation(values: Values, section: Mapping[str, Any], source: str) -> Expectation:
    """Figures from the values first, then from the ``expect:`` section where values are
    silent."""
    figures: dict[FigureId, Figure] = {}
    for fid, figure in _from_values(values):
        figures.setdefault(fid, figure)
    for fid, figure in _from_section(section):
        figures.setdefault(fid, figure)
    registry = values.global_.image_registry or DEFAULT_CODELAB_REGISTRY
    return Expectation(source, figures, registry)


# --------------------------------------------------------------------------- from values

Found = Iterator[tuple[FigureId, Figure]]


def _from_values(values: Values) -> Found:
    for b in BINDINGS:
        wl = values.workload(b.values_path)
        if not wl.enabled:
            continue
        yield from _workload_figures(b.values_path, b.kind, b.name, b.container, wl)
        if b.volume_claim and wl.persistence and wl.persistence.enabled and wl.persistence.size:
            fid = FigureId("volumes", b.kind, b.name, b.volume_claim, "size")
            yield fid, Figure(wl.persistence.size, f"{b.values_path}.persistence.size")
    if values.ingress.enabled:
        yield from _ingress_figures(values)


def _workload_figures(path: str, kind: str, name: str, container: str, wl: Workload) -> Found:
    if wl.replicas is not None and kind == "Deployment":
        yield (
            FigureId("replicas", kind, name, "", "replicas"),
            Figure(wl.replicas, f"{path}.replicaCount"),
        )
    if wl.image is not None:
        yield (
            FigureId("images", kind, name, container, "repository"),
            Figure(wl.image.repository, f"{path}.image.repository"),
        )
    if wl.resources is not None:
        for section, figures in (
            ("requests", wl.resources.requests),
            ("limits", wl.resources.limits),
        ):
            for what in ("cpu", "memory"):
                value = getattr(figures, what)
                if value is not None:
                    fid = FigureId("resources", kind, name, container, f"{section}.{what}")
                    yield fid, Figure(value, f"{path}.resources.{section}.{what}")
    for var in wl.env:
        ref = (var.value_from or {}).get("secretKeyRef") or {}
        if ref.get("name") and ref.get("key"):
            fid = FigureId("secrets", kind, name, container, f"env.{var.name}")
            yield fid, Figure(f"{ref['name']}/{ref['key']}", f"{path}.env.{var.name}")
    for env_name in wl.secret_env:
        secret, key = SECRET_ENV[env_name]
        fid = FigureId("secrets", kind, name, container, f"env.{env_name}")
        yield fid, Figure(f"{secret}/{key}", f"{path}.secrets.{env_name}")
    yield from _autoscaling_figures(path, kind, name, wl)


def _autoscaling_figures(path: str, kind: str, name: str, wl: Workload) -> Found:
    auto = wl.autoscaling
    if auto is None or not auto.enabled:
        return
    key = f"{path}.autoscaling"
    for fname, value, vkey in (
        ("minReplicas", auto.min_replicas, "minReplicas"),
        ("maxReplicas", auto.max_replicas, "maxReplicas"),
        ("target.cpu", auto.target_cpu, "targetCPUUtilizationPercentage"),
        ("target.memory", auto.target_memory, "targetMemoryUtilizationPercentage"),
    ):
        if value is not None:
            yield FigureId("autoscaling", kind, name, "", fname), Figure(value, f"{key}.{vkey}")


def _ingress_figures(values: Values) -> Found:
    for annotation, value in values.ingress.annotations.items():
        fid = FigureId("ingress", "Ingress", INGRESS_NAME, "", f"annotations.{annotation}")
        yield fid, Figure(value, f"ingress.annotations.{annotation}")
    if values.ingress.tls and values.ingress.tls[0].secret_name:
        fid = FigureId("ingress", "Ingress", INGRESS_NAME, "", "tls.secretName")
        yield fid, Figure(values.ingress.tls[0].secret_name, "ingress.tls[0].secretName")


# --------------------------------------------------------------------------- from expect:


def _from_section(section: Mapping[str, Any]) -> Found:
    for area, entries in section.items():
        for name, entry in (entries or {}).items():
            yield from _SECTION_READERS[area](str(name), entry, f"expect.{area}.{name}")


def _cited(entry: Mapping[str, Any], value: Any, key: str) -> Figure:
    return Figure(value, key, str(entry.get("deviation") or ""))


def _target(name: str, entry: Mapping[str, Any]) -> tuple[str, str, str]:
    """(kind, workload name, container) of a per-workload entry."""
    return entry.get("kind", "Deployment"), name, entry.get("container", name)


def _replicas(name: str, entry: Mapping[str, Any], key: str) -> Found:
    kind, _, _ = _target(name, entry)
    yield (
        FigureId("replicas", kind, name, "", "replicas"),
        _cited(entry, entry["replicas"], f"{key}.replicas"),
    )


def _images(name: str, entry: Mapping[str, Any], key: str) -> Found:
    kind, _, container = _target(name, entry)
    yield (
        FigureId("images", kind, name, container, "repository"),
        _cited(entry, entry["repository"], f"{key}.repository"),
    )


def _probes(name: str, entry: Mapping[str, Any], key: str) -> Found:
    kind, _, container = _target(name, entry)
    for probe in PROBES:
        for fname, value in (entry.get(probe) or {}).items():
            fid = FigureId("probes", kind, name, container, f"{probe}.{fname}")
            yield fid, _cited(entry, value, f"{key}.{probe}.{fname}")


def _secret_refs(name: str, entry: Mapping[str, Any], key: str) -> Found:
    kind, _, container = _target(name, entry)
    for env_name, ref in entry["env"].items():
        fid = FigureId("secrets", kind, name, container, f"env.{env_name}")
        yield fid, _cited(entry, ref, f"{key}.env.{env_name}")


def _autoscaling(name: str, entry: Mapping[str, Any], key: str) -> Found:
    kind, _, _ = _target(name, entry)
    for fname in ("minReplicas", "maxReplicas"):
        if fname in entry:
            fid = FigureId("autoscaling", kind, name, "", fname)
            yield fid, _cited(entry, entry[fname], f"{key}.{fname}")
    for resource, value in (entry.get("targets") or {}).items():
        fid = FigureId("autoscaling", kind, name, "", f"target.{resource}")
        yield fid, _cited(entry, value, f"{key}.targets.{resource}")


def _volume_claims(name: str, entry: Mapping[str, Any], key: str) -> Found:
    kind = entry.get("kind", "StatefulSet")
    for fname in ("size", "accessModes"):
        if fname in entry:
            value = entry[fname]
            value = tuple(sorted(value)) if isinstance(value, list) else value
            fid = FigureId("volumes", kind, entry["workload"], name, fname)
            yield fid, _cited(entry, value, f"{key}.{fname}")


def _services(name: str, entry: Mapping[str, Any], key: str) -> Found:
    ports = tuple(sorted((p["port"], p.get("targetPort", p["port"])) for p in entry["ports"]))
    yield FigureId("services", "Service", name, "", "ports"), _cited(entry, ports, f"{key}.ports")
    if "headless" in entry:
        yield (
            FigureId("services", "Service", name, "", "headless"),
            _cited(entry, entry["headless"], f"{key}.headless"),
        )


def _ingresses(name: str, entry: Mapping[str, Any], key: str) -> Found:
    paths = tuple(
        sorted((p["path"], p["pathType"], p["service"], p["port"]) for p in entry["paths"])
    )
    yield FigureId("ingress", "Ingress", name, "", "paths"), _cited(entry, paths, f"{key}.paths")


def _vpas(name: str, entry: Mapping[str, Any], key: str) -> Found:
    for fname in ("target", "updateMode"):
        yield (
            FigureId("vpa", "VerticalPodAutoscaler", name, "", fname),
            _cited(entry, entry[fname], f"{key}.{fname}"),
        )


def _nodes(name: str, entry: Mapping[str, Any], key: str) -> Found:
    for fname, value in entry.items():
        if isinstance(value, int) and not isinstance(value, bool):
            yield (
                FigureId("nodes", "Cluster", name, "", fname),
                _cited(entry, value, f"{key}.{fname}"),
            )


_SECTION_READERS = {
    "replicas": _replicas,
    "images": _images,
    "probes": _probes,
    "secretRefs": _secret_refs,
    "autoscaling": _autoscaling,
    "volumeClaims": _volume_claims,
    "services": _services,
    "ingresses": _ingresses,
    "vpas": _vpas,
    "nodes": _nodes,
}
