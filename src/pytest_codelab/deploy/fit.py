"""The fit: the rendered stack capped to fit a small machine, and nothing more.

Why a separate step: the offline suite and the guide comparison must judge what an operator
deploys (the manifests as written, plus their values file), while the local cluster has two
cores. So the stack the gate deploys is the operator's render passed through a fit that may
only *lower quantities that exist*: requests and limits, replica counts, HPA bounds, volume
sizes. A field the render lacks stays absent (no limit, probe, HPA or pin is ever added), a
quantity is never raised, and a pair whose relation a check looks at (requests vs limits,
minReplicas vs maxReplicas) keeps that relation or is left as it is; so no defect is hidden
from any check, offline or live. The caps are a profile's figures (``manifests/profiles/
small.yaml``) matched to objects through the renderer's :data:`BINDINGS`.

The one non-quantity: a profile's ``llmProxy.config`` models are merged into the models of the
same name that the llm-proxy ConfigMap already lists (a mock response, so the proxy answers
without internet access); no model is added.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from pytest_codelab.deploy.manifests import (
    BINDINGS,
    LLM_PROXY_CONFIG,
    Binding,
    Obj,
    containers,
    object_id,
)
from pytest_codelab.deploy.profiles import load_profile
from pytest_codelab.deploy.quantity import parse_quantity
from pytest_codelab.deploy.values import Figures, Values, Workload

#: The profile whose figures are the manifests' own: no fit, the stack is deployed as rendered.
NO_FIT = "prod"


@dataclass(frozen=True)
class Fit:
    """A named set of caps (a profile's figures)."""

    name: str
    caps: Values


@dataclass
class FitReport:
    """What a fit lowered, per kind of quantity (object ids), and what it had to leave."""

    name: str
    resources: set[str] = field(default_factory=set)
    replicas: set[str] = field(default_factory=set)
    hpa_bounds: set[str] = field(default_factory=set)
    volumes: set[str] = field(default_factory=set)
    models: set[str] = field(default_factory=set)
    kept: list[str] = field(default_factory=list)

    def line(self) -> str:
        """One line for the report header, e.g. ``fit: small (scaled: ...)``."""
        parts = [
            f"{label} {_count(len(found), noun)}"
            for label, found, noun in (
                ("requests/limits of", self.resources, "workload"),
                ("replicas of", self.replicas, "workload"),
                ("bounds of", self.hpa_bounds, "HPA"),
                ("sizes of", self.volumes, "volume"),
            )
            if found
        ]
        if self.models:
            parts.append(f"mock responses for llm-proxy {_count(len(self.models), 'model')}")
        text = f"scaled: {', '.join(parts)}" if parts else "nothing to scale"
        if self.kept:
            text += f"; left as written: {', '.join(self.kept)}"
        return f"fit: {self.name} ({text})"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def fit_for(profile: str) -> Fit | None:
    """The fit of a ``--codelab-profile``: None for ``prod`` (deployed as rendered)."""
    if profile == NO_FIT:
        return None
    return Fit(profile, load_profile(profile))


def describe_unfitted() -> str:
    """The header line of a run without a fit."""
    return f"fit: none (profile {NO_FIT}: the stack is deployed as rendered)"


def fitted(objects: Iterable[Mapping[str, Any]], profile: str) -> list[Obj]:
    """``objects`` as a stack of ``profile`` is deployed (copies; for scripts and benchmarks)."""
    fit = fit_for(profile)
    return [copy.deepcopy(dict(o)) for o in objects] if fit is None else apply_fit(objects, fit)[0]


def apply_fit(objects: Iterable[Mapping[str, Any]], fit: Fit) -> tuple[list[Obj], FitReport]:
    """The fitted copies of ``objects`` (which stay untouched) and what was lowered."""
    result: list[Obj] = [copy.deepcopy(dict(o)) for o in objects]
    report = FitReport(fit.name)
    for binding in BINDINGS:
        caps = fit.caps.workload(binding.values_path)
        workload = _find(result, binding.kind, binding.name)
        if workload is None or caps == Workload():
            continue
        _fit_replicas(workload, caps, report)
        _fit_resources(workload, binding, caps, report)
        _fit_volume(workload, binding, caps, report)
        for hpa in _hpas_for(result, workload):
            _fit_hpa(hpa, caps, report)
    _fit_models(result, fit.caps, report)
    return result, report


# --------------------------------------------------------------------------- helpers


def _find(objects: Sequence[Obj], kind: str, name: str) -> Obj | None:
    return next(
        (o for o in objects if o.get("kind") == kind and o["metadata"].get("name") == name), None
    )


def _hpas_for(objects: Sequence[Obj], workload: Obj) -> list[Obj]:
    kind, name = workload["kind"], workload["metadata"]["name"]
    return [
        o
        for o in objects
        if o.get("kind") == "HorizontalPodAutoscaler"
        and ((o.get("spec") or {}).get("scaleTargetRef") or {}).get("kind") == kind
        and ((o.get("spec") or {}).get("scaleTargetRef") or {}).get("name") == name
    ]


def _sign(a: Any, b: Any) -> int:
    return (a > b) - (a < b)


def _capped_pair(
    low: Any, high: Any, low_cap: Any, high_cap: Any, measure: Callable[[Any], Any]
) -> tuple[Any, Any] | None:
    """The two values capped (each only if it exists and its cap is lower), or None when
    capping would change how they compare (e.g. make a stuck HPA scalable): then both stay."""
    new_low = _capped(low, low_cap, measure)
    new_high = _capped(high, high_cap, measure)
    if low is not None and high is not None:
        try:
            before = _sign(measure(low), measure(high))
            after = _sign(measure(new_low), measure(new_high))
        except (TypeError, ValueError):
            return None
        if before != after:
            return None
    return new_low, new_high


def _capped(value: Any, cap: Any, measure: Callable[[Any], Any]) -> Any:
    """``cap`` if the value exists and the cap is lower, else the value unchanged."""
    if value is None or cap is None:
        return value
    try:
        return cap if measure(cap) < measure(value) else value
    except (TypeError, ValueError):
        return value  # a malformed figure is the schema check's to report


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"not a count: {value!r}")
    return value


def _fit_replicas(workload: Obj, caps: Workload, report: FitReport) -> None:
    spec = workload.get("spec") or {}
    if "replicas" not in spec or caps.replicas is None:
        return
    new = _capped(spec["replicas"], caps.replicas, _int)
    if new != spec["replicas"]:
        spec["replicas"] = new
        report.replicas.add(object_id(workload))


def _fit_resources(workload: Obj, binding: Binding, caps: Workload, report: FitReport) -> None:
    if caps.resources is None:
        return
    found = containers(workload, init=False)
    container = next((c for c in found if c.get("name") == binding.container), None)
    if container is None or not isinstance(container.get("resources"), dict):
        return
    res = container["resources"]
    requests, limits = res.get("requests") or {}, res.get("limits") or {}
    for what in ("cpu", "memory"):
        req, lim = requests.get(what), limits.get(what)
        pair = _capped_pair(
            req,
            lim,
            _figure(caps.resources.requests, what),
            _figure(caps.resources.limits, what),
            parse_quantity,
        )
        if pair is None:
            report.kept.append(f"{object_id(workload)} {what} requests/limits")
            continue
        for section, old, new in (("requests", req, pair[0]), ("limits", lim, pair[1])):
            if old is not None and new != old:
                res[section][what] = new
                report.resources.add(object_id(workload))


def _figure(figures: Figures, what: str) -> str | None:
    value: str | None = getattr(figures, what)
    return value


def _fit_volume(workload: Obj, binding: Binding, caps: Workload, report: FitReport) -> None:
    if binding.volume_claim is None or caps.persistence is None:
        return
    for template in (workload.get("spec") or {}).get("volumeClaimTemplates") or []:
        if (template.get("metadata") or {}).get("name") != binding.volume_claim:
            continue
        requests = ((template.get("spec") or {}).get("resources") or {}).get("requests") or {}
        if "storage" not in requests:
            continue
        new = _capped(requests["storage"], caps.persistence.size, parse_quantity)
        if new != requests["storage"]:
            requests["storage"] = new
            report.volumes.add(f"{object_id(workload)} {binding.volume_claim}")


def _fit_hpa(hpa: Obj, caps: Workload, report: FitReport) -> None:
    auto = caps.autoscaling
    spec = hpa.get("spec") or {}
    if auto is None:
        return
    low, high = spec.get("minReplicas"), spec.get("maxReplicas")
    pair = _capped_pair(low, high, auto.min_replicas, auto.max_replicas, _int)
    if pair is None:
        report.kept.append(f"{object_id(hpa)} minReplicas/maxReplicas")
        return
    for key, old, new in (("minReplicas", low, pair[0]), ("maxReplicas", high, pair[1])):
        if old is not None and new != old:
            spec[key] = new
            report.hpa_bounds.add(object_id(hpa))


def _fit_models(objects: Sequence[Obj], caps: Values, report: FitReport) -> None:
    """Merge the caps' model params into the models of the same name the config lists."""
    wanted = {
        m["model_name"]: dict(m.get("litellm_params") or {})
        for m in (caps.llm_proxy_config or {}).get("model_list") or []
    }
    config_map = _find(objects, "ConfigMap", LLM_PROXY_CONFIG[0])
    if not wanted or config_map is None:
        return
    data = config_map.get("data") or {}
    try:
        config = yaml.safe_load(data.get(LLM_PROXY_CONFIG[1]) or "")
    except yaml.YAMLError:
        return
    if not isinstance(config, dict) or not isinstance(config.get("model_list"), list):
        return
    for model in config["model_list"]:
        name = model.get("model_name") if isinstance(model, dict) else None
        params = model.get("litellm_params") if isinstance(model, dict) else None
        if name in wanted and isinstance(params, dict):
            params.update(wanted[name])
            report.models.add(str(name))
    if report.models:
        data[LLM_PROXY_CONFIG[1]] = yaml.safe_dump(config, sort_keys=False)


def fitted_hpa_bounds(
    fit: Fit | None, kind: str, workload: str, low: int | None, high: int | None
) -> tuple[int | None, int | None]:
    """The (minReplicas, maxReplicas) a stack deployed with ``fit`` has for an HPA of
    ``kind/workload`` whose bounds are ``low``/``high``: the same pure function the gate
    applies to the stack, applied to expected figures (e.g. the guide's 10 -> 6), so a
    suite's expected side is the guide's, fitted, never read from the live HPA. None: no
    fit (staging, ``prod``), the bounds as given."""
    if fit is None:
        return low, high
    binding = next((b for b in BINDINGS if (b.kind, b.name) == (kind, workload)), None)
    if binding is None:
        return low, high
    spec = {k: v for k, v in (("minReplicas", low), ("maxReplicas", high)) if v is not None}
    hpa: Obj = {
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": f"{workload}-hpa"},
        "spec": spec,
    }
    _fit_hpa(hpa, fit.caps.workload(binding.values_path), FitReport(fit.name))
    return spec.get("minReplicas"), spec.get("maxReplicas")
