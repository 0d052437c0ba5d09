"""Objects compared with the expectation: one :class:`Mismatch` per figure that differs.

Why pure functions over plain dicts: the same comparison judges the manifests offline (as
written, plus values), the live objects of a namespace (staging: drift), and a fitted stack
against the render it was deployed from. The expected side is always the expectation
(:mod:`pytest_codelab.deploy.expected`) or, for the fitted stack, the render the gate applied;
never the object under test.

Each figure is read from the object with Kubernetes' defaults for what the API fills in
(probe timings, a Service's targetPort, one replica), so a manifest and its live object read
alike. Quantities compare by value (``1000m`` equals ``1``). A workload an HPA scales has its
live replica count compared with the expected HPA bounds rather than with ``replicaCount``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pytest_codelab.deploy.expected import Expectation, Figure, FigureId
from pytest_codelab.deploy.manifests import containers, object_id, source_of, split_image
from pytest_codelab.deploy.quantity import parse_quantity

Obj = Mapping[str, Any]

#: The comparison areas, in report order, with what each compares.
AREAS: Mapping[str, str] = {
    "replicas": "replica counts",
    "autoscaling": "HPA bounds, metrics and targets",
    "resources": "requests and limits",
    "probes": "probe paths, ports and timings",
    "services": "Services and ports",
    "ingress": "Ingress paths, backends, TLS secret and annotations",
    "volumes": "volume sizes and access modes",
    "vpa": "VPA mode and target",
    "secrets": "Secrets and keys referenced (never their values)",
    "images": "image repositories",
}
#: What the API server fills in when a probe leaves a timing out.
PROBE_DEFAULTS = {
    "initialDelaySeconds": 0,
    "periodSeconds": 10,
    "timeoutSeconds": 1,
    "successThreshold": 1,
    "failureThreshold": 3,
}
#: The VPA's update mode when ``updatePolicy.updateMode`` is left out.
VPA_DEFAULT_MODE = "Auto"


class _Absent:
    def __repr__(self) -> str:
        return "absent"


ABSENT: Any = _Absent()


@dataclass(frozen=True)
class Bounds:
    """An expected range (a replica count an HPA keeps between its bounds)."""

    low: int
    high: int

    def __str__(self) -> str:
        return f"{self.low}..{self.high}"


@dataclass(frozen=True)
class Mismatch:
    """One figure that differs: the object, the field, what was expected (and the key that
    says so), what was found. ``str()`` is the line a person reads."""

    object: str
    field: str
    expected: str
    values_key: str
    found: str
    source: str | None = None

    def __str__(self) -> str:
        at = f" (from {self.source})" if self.source else ""
        return (
            f"{self.object} {self.field}: expected {self.expected} ({self.values_key}), "
            f"found {self.found}{at}"
        )


@dataclass(frozen=True)
class Check:
    """How to compare one expected figure: where the object is, which field, how to read it."""

    fid: FigureId
    figure: Figure
    label: str
    field: str
    locate: Callable[[Sequence[Obj]], Obj | None]
    read: Callable[[Obj], Any]
    same: Callable[[Any, Any], bool]
    show: Callable[[Any], str]


# --------------------------------------------------------------------------- entry points


def compare(
    objects: Sequence[Obj],
    expectation: Expectation,
    areas: Iterable[str] | None = None,
    *,
    live: bool = False,
) -> list[Mismatch]:
    """Every figure of ``expectation`` (in ``areas``) that ``objects`` do not have.

    ``live``: the objects are a running namespace, where an HPA owns the replica count of
    the workloads it scales (compared with the expected bounds instead).
    """
    out: list[Mismatch] = []
    absent: set[str] = set()
    for check in checks(expectation, areas):
        expected, key, same = check.figure.value, check.figure.key, check.same
        if live and check.fid.area == "replicas":
            bounds = _expected_bounds(expectation, check.fid)
            if bounds is not None:
                expected, key, same = bounds
        out += _judge(check, objects, expected, key, same, absent)
    return out


def compare_with_render(
    render: Sequence[Obj],
    observed: Sequence[Obj],
    expectation: Expectation,
    areas: Iterable[str] | None = None,
    *,
    render_name: str = "the fitted render",
) -> list[Mismatch]:
    """Every compared field where ``observed`` (live objects) differ from ``render`` (what
    the gate applied): the fields are the expectation's, the expected values the render's.
    Objects the render does not hold are not compared here (the expectation's own
    comparison reports them)."""
    out: list[Mismatch] = []
    absent: set[str] = set()
    for check in checks(expectation, areas):
        reference = check.locate(render)
        if reference is None:
            continue
        expected: Any = check.read(reference)
        key, same = f"{render_name}", check.same
        if check.fid.area == "replicas":
            hpa = _hpa_of(render, check.fid.kind, check.fid.name)
            if hpa is not None:
                expected, same = _bounds_of(hpa), _within
                key = f"{object_id(hpa)} in {render_name}"
        out += _judge(check, observed, expected, key, same, absent)
    return out


def checks(expectation: Expectation, areas: Iterable[str] | None = None) -> list[Check]:
    """The checks of the expectation's figures (per area, in :data:`AREAS` order)."""
    wanted = list(AREAS) if areas is None else list(areas)
    unknown = [a for a in wanted if a not in AREAS]
    if unknown:
        raise ValueError(f"unknown comparison areas {unknown}; known: {', '.join(AREAS)}")
    out: list[Check] = []
    for area in wanted:
        figures = sorted(expectation.area(area).items())
        out += [_BUILDERS[area](fid, figure) for fid, figure in figures]
        out += _extra_checks(area, figures)
    return out


def _judge(
    check: Check,
    objects: Sequence[Obj],
    expected: Any,
    key: str,
    same: Callable[[Any, Any], bool],
    absent: set[str],
) -> list[Mismatch]:
    obj = check.locate(objects)
    if obj is None:
        if check.label in absent:
            return []  # one line per missing object, not one per figure
        absent.add(check.label)
        return [Mismatch(check.label, "(the object)", "present", key, "absent")]
    found = check.read(obj)
    try:
        equal = same(expected, found)
    except (TypeError, ValueError):
        equal = False
    if equal:
        return []
    return [
        Mismatch(
            object_id(obj),
            check.field,
            _show(check, expected),
            key,
            _show(check, found),
            source_of(obj),
        )
    ]


def _show(check: Check, value: Any) -> str:
    if value is ABSENT:
        return "absent"
    if isinstance(value, Bounds):
        return str(value)
    return check.show(value)


# --------------------------------------------------------------------------- locating


def _by_name(kind: str, name: str) -> Callable[[Sequence[Obj]], Obj | None]:
    def locate(objects: Sequence[Obj]) -> Obj | None:
        return next(
            (
                o
                for o in objects
                if o.get("kind") == kind and (o.get("metadata") or {}).get("name") == name
            ),
            None,
        )

    return locate


def _hpa_of(objects: Sequence[Obj], kind: str, name: str) -> Obj | None:
    for o in objects:
        ref = (o.get("spec") or {}).get("scaleTargetRef") or {}
        if o.get("kind") == "HorizontalPodAutoscaler" and (ref.get("kind"), ref.get("name")) == (
            kind,
            name,
        ):
            return o
    return None


def _container(obj: Obj, name: str) -> Mapping[str, Any] | None:
    return next((c for c in containers(obj, init=False) if c.get("name") == name), None)


# --------------------------------------------------------------------------- comparing


def _eq(a: Any, b: Any) -> bool:
    return bool(a == b)


def _same_quantity(a: Any, b: Any) -> bool:
    return b is not ABSENT and parse_quantity(a) == parse_quantity(b)


def _within(bounds: Bounds, found: Any) -> bool:
    return isinstance(found, int) and bounds.low <= found <= bounds.high


def _none_beyond(expected: Any, found: Any) -> bool:
    return not found


def _text(value: Any) -> str:
    if isinstance(value, (tuple, frozenset, list)):
        return ", ".join(_text(v) for v in value) or "none"
    return str(value)


def _bounds_of(hpa: Obj) -> Bounds:
    spec = hpa.get("spec") or {}
    return Bounds(int(spec.get("minReplicas", 1)), int(spec.get("maxReplicas", 1)))


def _expected_bounds(
    expectation: Expectation, fid: FigureId
) -> tuple[Bounds, str, Callable[[Any, Any], bool]] | None:
    hpa = expectation.hpa(fid.name, fid.kind)
    if hpa is None or hpa.min_replicas is None or hpa.max_replicas is None:
        return None
    bounds = Bounds(hpa.min_replicas.value, hpa.max_replicas.value)
    key = f"{hpa.min_replicas.key}, {hpa.max_replicas.key}: {hpa.name} scales it"
    return bounds, key, _within


# --------------------------------------------------------------------------- per area


def _check(
    fid: FigureId,
    figure: Figure,
    label: str,
    field: str,
    locate: Callable[[Sequence[Obj]], Obj | None],
    read: Callable[[Obj], Any],
    same: Callable[[Any, Any], bool] = _eq,
    show: Callable[[Any], str] = _text,
) -> Check:
    return Check(fid, figure, label, field, locate, read, same, show)


def _replicas(fid: FigureId, figure: Figure) -> Check:
    return _check(
        fid,
        figure,
        f"{fid.kind}/{fid.name}",
        "spec.replicas",
        _by_name(fid.kind, fid.name),
        lambda o: (o.get("spec") or {}).get("replicas", 1),
    )


def _image(fid: FigureId, figure: Figure) -> Check:
    def read(obj: Obj) -> Any:
        c = _container(obj, fid.part)
        if c is None or not isinstance(c.get("image"), str):
            return ABSENT
        return split_image(c["image"])[0]

    return _check(
        fid,
        figure,
        f"{fid.kind}/{fid.name}",
        f"container {fid.part} image repository",
        _by_name(fid.kind, fid.name),
        read,
    )


def _resources(fid: FigureId, figure: Figure) -> Check:
    section, what = fid.field.split(".")

    def read(obj: Obj) -> Any:
        c = _container(obj, fid.part)
        value = (((c or {}).get("resources") or {}).get(section) or {}).get(what)
        return ABSENT if value is None else value

    return _check(
        fid,
        figure,
        f"{fid.kind}/{fid.name}",
        f"container {fid.part} resources.{fid.field}",
        _by_name(fid.kind, fid.name),
        read,
        _same_quantity,
    )


def _probe_port(container: Mapping[str, Any], probe: Mapping[str, Any]) -> Any:
    for action in ("httpGet", "tcpSocket", "grpc"):
        port = (probe.get(action) or {}).get("port")
        if port is None:
            continue
        if isinstance(port, str):  # a named port: the number the container declares
            for p in container.get("ports") or []:
                if p.get("name") == port:
                    return p.get("containerPort", port)
        return port
    return ABSENT


def _probes(fid: FigureId, figure: Figure) -> Check:
    probe_name, what = fid.field.split(".")

    def read(obj: Obj) -> Any:
        c = _container(obj, fid.part)
        probe = (c or {}).get(probe_name)
        if c is None or not isinstance(probe, Mapping):
            return ABSENT
        if what == "path":
            return (probe.get("httpGet") or {}).get("path", ABSENT)
        if what == "port":
            return _probe_port(c, probe)
        return probe.get(what, PROBE_DEFAULTS.get(what, ABSENT))

    return _check(
        fid,
        figure,
        f"{fid.kind}/{fid.name}",
        f"container {fid.part} {fid.field}",
        _by_name(fid.kind, fid.name),
        read,
    )


def _secret_ref(entry: Mapping[str, Any]) -> str | None:
    ref = (entry.get("valueFrom") or {}).get("secretKeyRef") or {}
    return f"{ref.get('name')}/{ref.get('key')}" if ref else None


def _secrets(fid: FigureId, figure: Figure) -> Check:
    env_name = fid.field.split(".", 1)[1]

    def read(obj: Obj) -> Any:
        c = _container(obj, fid.part)
        entry = next((e for e in (c or {}).get("env") or [] if e.get("name") == env_name), None)
        if entry is None:
            return ABSENT
        # Never the value itself: a plain env var may hold a secret.
        return _secret_ref(entry) or "a value not from a Secret"

    return _check(
        fid,
        figure,
        f"{fid.kind}/{fid.name}",
        f"container {fid.part} env {env_name}",
        _by_name(fid.kind, fid.name),
        read,
    )


def _secret_uses(obj: Obj, container: str) -> dict[str, str]:
    """Everything of one container that reads a Secret: env vars, envFrom, volumes."""
    c = _container(obj, container) or {}
    uses = {e["name"]: ref for e in c.get("env") or [] if (ref := _secret_ref(e))}
    for source in c.get("envFrom") or []:
        name = (source.get("secretRef") or {}).get("name")
        if name:
            uses[f"envFrom {name}"] = f"{name}/*"
    mounted = {m.get("name") for m in c.get("volumeMounts") or []}
    pod = ((obj.get("spec") or {}).get("template") or {}).get("spec") or {}
    for volume in pod.get("volumes") or []:
        name = (volume.get("secret") or {}).get("secretName")
        if name and volume.get("name") in mounted:
            uses[f"volume {volume['name']}"] = f"{name}/*"
    return uses


def _extra_secrets(
    kind: str, name: str, container: str, group: list[tuple[FigureId, Figure]]
) -> Check:
    expected = {fid.field.split(".", 1)[1] for fid, _ in group}
    keys = sorted({f.key.rsplit(".", 1)[0] for _, f in group})
    fid = FigureId("secrets", kind, name, container, "(others)")

    def read(obj: Obj) -> Any:
        uses = _secret_uses(obj, container)
        return tuple(f"{n} from {ref}" for n, ref in sorted(uses.items()) if n not in expected)

    return _check(
        fid,
        Figure((), ", ".join(keys)),
        f"{kind}/{name}",
        f"container {container} Secret references beyond the expected ones",
        _by_name(kind, name),
        read,
        _none_beyond,
    )


def _hpa_locate(fid: FigureId) -> Callable[[Sequence[Obj]], Obj | None]:
    return lambda objects: _hpa_of(objects, fid.kind, fid.name)


def _autoscaling(fid: FigureId, figure: Figure) -> Check:
    def read(obj: Obj) -> Any:
        spec = obj.get("spec") or {}
        if not fid.field.startswith("target."):
            return spec.get(fid.field, 1 if fid.field == "minReplicas" else ABSENT)
        resource = fid.field.split(".", 1)[1]
        for m in spec.get("metrics") or []:
            body = m.get("resource") or {}
            if m.get("type") == "Resource" and body.get("name") == resource:
                return (body.get("target") or {}).get("averageUtilization", ABSENT)
        return ABSENT

    field = (
        f"spec.metrics[{fid.field.split('.', 1)[1]}] averageUtilization"
        if fid.field.startswith("target.")
        else f"spec.{fid.field}"
    )
    return _check(
        fid,
        figure,
        f"HorizontalPodAutoscaler/{fid.name}-hpa (for {fid.kind}/{fid.name})",
        field,
        _hpa_locate(fid),
        read,
    )


def _metric_name(metric: Mapping[str, Any]) -> str:
    body = metric.get("resource") or metric.get("containerResource") or {}
    return str(body.get("name") or metric.get("type") or "?")


def _extra_metrics(kind: str, name: str, figures: list[Figure], targets: set[str]) -> Check:
    fid = FigureId("autoscaling", kind, name, "", "(metrics)")

    def read(obj: Obj) -> Any:
        metrics = (obj.get("spec") or {}).get("metrics") or []
        return tuple(sorted({_metric_name(m) for m in metrics} - targets))

    keys = sorted({f.key.rsplit(".", 1)[0] for f in figures})
    return _check(
        fid,
        Figure((), ", ".join(keys)),
        f"HorizontalPodAutoscaler/{name}-hpa (for {kind}/{name})",
        "spec.metrics beyond the expected targets",
        _hpa_locate(fid),
        read,
        _none_beyond,
    )


def _service(fid: FigureId, figure: Figure) -> Check:
    def read(obj: Obj) -> Any:
        spec = obj.get("spec") or {}
        if fid.field == "headless":
            return spec.get("clusterIP") == "None"
        return tuple(
            sorted(
                (p.get("port"), p.get("targetPort", p.get("port"))) for p in spec.get("ports") or []
            )
        )

    def show(value: Any) -> str:
        if fid.field == "headless":
            return "headless (clusterIP None)" if value else "not headless"
        return ", ".join(f"{p}->{t}" for p, t in value) or "no ports"

    field = "spec.clusterIP" if fid.field == "headless" else "spec.ports (port->targetPort)"
    return _check(
        fid, figure, f"Service/{fid.name}", field, _by_name("Service", fid.name), read, _eq, show
    )


def _ingress_paths(obj: Obj) -> tuple[tuple[Any, ...], ...]:
    found = []
    for rule in (obj.get("spec") or {}).get("rules") or []:
        for p in (rule.get("http") or {}).get("paths") or []:
            svc = (p.get("backend") or {}).get("service") or {}
            port = svc.get("port") or {}
            found.append(
                (
                    p.get("path"),
                    p.get("pathType"),
                    svc.get("name"),
                    port.get("number", port.get("name")),
                )
            )
    return tuple(sorted(found, key=str))


def _ingress(fid: FigureId, figure: Figure) -> Check:
    def read(obj: Obj) -> Any:
        if fid.field == "paths":
            return _ingress_paths(obj)
        if fid.field == "tls.secretName":
            names = [t.get("secretName") for t in (obj.get("spec") or {}).get("tls") or []]
            return tuple(n for n in names if n) or ABSENT
        annotation = fid.field.split(".", 1)[1]
        return ((obj.get("metadata") or {}).get("annotations") or {}).get(annotation, ABSENT)

    def same(expected: Any, found: Any) -> bool:
        if fid.field == "tls.secretName" and isinstance(found, tuple):
            # One expected name is among the Ingress's; a render's list must equal it.
            return expected == found if isinstance(expected, tuple) else expected in found
        return bool(expected == found)

    def show(value: Any) -> str:
        if fid.field == "paths":
            return "; ".join(f"{p} ({t}) -> {s}:{n}" for p, t, s, n in value) or "no paths"
        return _text(value)

    field = "metadata." + fid.field if fid.field.startswith("annotations.") else "spec." + fid.field
    field = "spec.tls[].secretName" if fid.field == "tls.secretName" else field
    if fid.field == "paths":
        field = "spec.rules[].http.paths (path, pathType, backend)"
    return _check(
        fid, figure, f"Ingress/{fid.name}", field, _by_name("Ingress", fid.name), read, same, show
    )


def _volume(fid: FigureId, figure: Figure) -> Check:
    def read(obj: Obj) -> Any:
        templates = (obj.get("spec") or {}).get("volumeClaimTemplates") or []
        t = next((t for t in templates if (t.get("metadata") or {}).get("name") == fid.part), None)
        spec = (t or {}).get("spec") or {}
        if t is None:
            return ABSENT
        if fid.field == "size":
            return ((spec.get("resources") or {}).get("requests") or {}).get("storage", ABSENT)
        return tuple(sorted(spec.get("accessModes") or ())) or ABSENT

    field = f"volumeClaimTemplates[{fid.part}] " + (
        "resources.requests.storage" if fid.field == "size" else "accessModes"
    )
    same = _same_quantity if fid.field == "size" else _eq
    return _check(
        fid, figure, f"{fid.kind}/{fid.name}", field, _by_name(fid.kind, fid.name), read, same
    )


def _vpa(fid: FigureId, figure: Figure) -> Check:
    def read(obj: Obj) -> Any:
        spec = obj.get("spec") or {}
        if fid.field == "target":
            ref = spec.get("targetRef") or {}
            return f"{ref.get('kind')}/{ref.get('name')}" if ref else ABSENT
        return (spec.get("updatePolicy") or {}).get("updateMode", VPA_DEFAULT_MODE)

    field = "spec.targetRef" if fid.field == "target" else "spec.updatePolicy.updateMode"
    return _check(
        fid,
        figure,
        f"VerticalPodAutoscaler/{fid.name}",
        field,
        _by_name("VerticalPodAutoscaler", fid.name),
        read,
    )


_BUILDERS: Mapping[str, Callable[[FigureId, Figure], Check]] = {
    "replicas": _replicas,
    "autoscaling": _autoscaling,
    "resources": _resources,
    "probes": _probes,
    "services": _service,
    "ingress": _ingress,
    "volumes": _volume,
    "vpa": _vpa,
    "secrets": _secrets,
    "images": _image,
}


def _extra_checks(area: str, figures: list[tuple[FigureId, Figure]]) -> list[Check]:
    """Whole-set checks, where the expectation states a whole set: no Secret reference beyond
    those of a container the ``expect:`` section lists (``secretRefs``), no HPA metric beyond
    the targets when the values state targets (a chart renders exactly those)."""
    groups: dict[tuple[str, str, str], list[tuple[FigureId, Figure]]] = {}
    for fid, figure in figures:
        groups.setdefault((fid.kind, fid.name, fid.part), []).append((fid, figure))
    out: list[Check] = []
    for (kind, name, part), group in groups.items():
        keys = [f.key for _, f in group]
        if area == "secrets" and any(k.startswith("expect.secretRefs.") for k in keys):
            out.append(_extra_secrets(kind, name, part, group))
        targets = {i.field.split(".", 1)[1] for i, _ in group if i.field.startswith("target.")}
        stated = any(
            i.field.startswith("target.") and not f.key.startswith("expect.") for i, f in group
        )
        if area == "autoscaling" and stated:
            out.append(_extra_metrics(kind, name, [f for _, f in group], targets))
    return out
