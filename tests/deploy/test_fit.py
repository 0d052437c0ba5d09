"""The fit: it only lowers quantities the render has, keeps their relations, adds nothing."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import pytest
import yaml

from pytest_codelab.deploy.fit import (
    Fit,
    apply_fit,
    describe_unfitted,
    fit_for,
    fitted,
    fitted_hpa_bounds,
)
from pytest_codelab.deploy.manifests import load_manifests, object_id, render
from pytest_codelab.deploy.quantity import parse_quantity
from pytest_codelab.deploy.rules.registry import check_objects
from pytest_codelab.resources import bundled_path

Obj = dict[str, Any]


@pytest.fixture(scope="module")
def small() -> Fit:
    fit = fit_for("small")
    assert fit is not None
    return fit


@pytest.fixture
def intent() -> list[Obj]:
    return render(load_manifests(bundled_path("manifests")), namespace="n", values=None)


def find(objects: list[Obj], kind: str, name: str) -> Obj:
    (obj,) = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    return obj


def resources(objects: list[Obj], kind: str, name: str) -> dict[str, Any]:
    result: dict[str, Any] = find(objects, kind, name)["spec"]["template"]["spec"]["containers"][0][
        "resources"
    ]
    return result


def test_prod_is_no_fit() -> None:
    assert fit_for("prod") is None
    assert describe_unfitted() == "fit: none (profile prod: the stack is deployed as rendered)"


def test_small_fit_of_the_bundled_manifests(intent: list[Obj], small: Fit) -> None:
    before = copy.deepcopy(intent)
    fitted, report = apply_fit(intent, small)
    assert intent == before, "the fit must not modify its input"
    assert resources(fitted, "Deployment", "gateway") == {
        "requests": {"memory": "128Mi", "cpu": "25m"},
        "limits": {"memory": "256Mi", "cpu": "500m"},
    }
    bounds = {
        name: (
            find(fitted, "HorizontalPodAutoscaler", f"{name}-hpa")["spec"]["minReplicas"],
            find(fitted, "HorizontalPodAutoscaler", f"{name}-hpa")["spec"]["maxReplicas"],
        )
        for name in ("gateway", "agent-runtime", "auth-service")
    }
    assert bounds == {"gateway": (3, 6), "agent-runtime": (3, 6), "auth-service": (2, 4)}
    for name, replicas in (("gateway", 3), ("agent-runtime", 3), ("auth-service", 2)):
        assert find(fitted, "Deployment", name)["spec"]["replicas"] == replicas
    claim = find(fitted, "StatefulSet", "postgres")["spec"]["volumeClaimTemplates"][0]["spec"]
    assert claim["resources"]["requests"]["storage"] == "1Gi"
    assert "storageClassName" not in claim  # not a quantity: the cluster's default class
    config = yaml.safe_load(find(fitted, "ConfigMap", "llm-proxy-config")["data"]["config.yaml"])
    assert config["model_list"][0]["litellm_params"]["mock_response"]
    assert config["model_list"][0]["litellm_params"]["api_key"] == "os.environ/OPENAI_API_KEY"
    assert report.line() == (
        "fit: small (scaled: requests/limits of 6 workloads, bounds of 3 HPAs, sizes of 2 "
        "volumes, mock responses for llm-proxy 1 model)"
    )
    assert check_objects(fitted) == []


def test_small_fit_requests_fit_two_cores(intent: list[Obj], small: Fit) -> None:
    """CPU requests of every pod at the fitted HPAs' maxima fit in one core (the other runs
    the control plane and add-ons)."""
    fitted, _ = apply_fit(intent, small)
    total = Decimal(0)
    for obj in fitted:
        if obj["kind"] not in ("Deployment", "StatefulSet"):
            continue
        pods = obj["spec"].get("replicas", 1)
        for hpa in (o for o in fitted if o["kind"] == "HorizontalPodAutoscaler"):
            if hpa["spec"]["scaleTargetRef"]["name"] == obj["metadata"]["name"]:
                pods = hpa["spec"]["maxReplicas"]
        cpu = obj["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"]
        total += pods * parse_quantity(cpu)
    assert total <= Decimal(1), f"the fitted stack requests {total} CPU at HPA max"


def _strip(objects: list[Obj], kind: str, name: str, *path: str) -> None:
    node: Any = find(objects, kind, name)
    for key in path[:-1]:
        node = node[key] if not isinstance(node, list) else node[int(key)]
    del node[path[-1]]


def test_the_fit_never_adds_a_missing_field(intent: list[Obj], small: Fit) -> None:
    """A missing limit, replica count, volume size or HPA stays missing, so every check
    still sees the defect after the fit."""
    container = ("spec", "template", "spec", "containers", "0")
    _strip(intent, "Deployment", "gateway", *container, "resources", "limits")
    _strip(intent, "Deployment", "agent-runtime", *container, "resources", "requests", "cpu")
    _strip(intent, "Deployment", "llm-proxy", "spec", "replicas")
    _strip(
        intent,
        "StatefulSet",
        "redis",
        "spec",
        "volumeClaimTemplates",
        "0",
        "spec",
        "resources",
        "requests",
        "storage",
    )
    intent.remove(find(intent, "HorizontalPodAutoscaler", "auth-service-hpa"))
    find(intent, "ConfigMap", "llm-proxy-config")["data"]["config.yaml"] = (
        "model_list:\n- model_name: claude\n  litellm_params: {model: claude}\n"
    )
    fitted, report = apply_fit(intent, small)
    assert "limits" not in resources(fitted, "Deployment", "gateway")
    assert "cpu" not in resources(fitted, "Deployment", "agent-runtime")["requests"]
    assert "replicas" not in find(fitted, "Deployment", "llm-proxy")["spec"]
    redis_claim = find(fitted, "StatefulSet", "redis")["spec"]["volumeClaimTemplates"][0]
    assert "storage" not in redis_claim["spec"]["resources"]["requests"]
    assert not [o for o in fitted if object_id(o) == "HorizontalPodAutoscaler/auth-service-hpa"]
    config = find(fitted, "ConfigMap", "llm-proxy-config")["data"]["config.yaml"]
    assert "mock_response" not in config and report.models == set()
    rules = {v.rule for v in check_objects(fitted)}
    assert {"resources", "autoscaling"} <= rules
    assert len(fitted) == len(intent)


def test_the_fit_never_raises_a_quantity(intent: list[Obj], small: Fit) -> None:
    res = resources(intent, "Deployment", "gateway")
    res["requests"] = {"cpu": "10m", "memory": "32Mi"}
    res["limits"] = {"cpu": "100m", "memory": "64Mi"}
    find(intent, "HorizontalPodAutoscaler", "gateway-hpa")["spec"]["maxReplicas"] = 4
    fitted, report = apply_fit(intent, small)
    assert resources(fitted, "Deployment", "gateway") == res
    assert find(fitted, "HorizontalPodAutoscaler", "gateway-hpa")["spec"]["maxReplicas"] == 4
    assert "Deployment/gateway" not in report.resources


def test_the_fit_keeps_a_stuck_hpa_stuck(intent: list[Obj], small: Fit) -> None:
    """Capping 8..8 to 3..6 would make an HPA that cannot scale look scalable on the cluster:
    the pair is left as written, and the header says so."""
    spec = find(intent, "HorizontalPodAutoscaler", "gateway-hpa")["spec"]
    spec["minReplicas"] = spec["maxReplicas"] = 8
    fitted, report = apply_fit(intent, small)
    fitted_spec = find(fitted, "HorizontalPodAutoscaler", "gateway-hpa")["spec"]
    assert (fitted_spec["minReplicas"], fitted_spec["maxReplicas"]) == (8, 8)
    assert "left as written: HorizontalPodAutoscaler/gateway-hpa minReplicas/maxReplicas" in (
        report.line()
    )


def test_the_fit_keeps_requests_above_limits_visible(intent: list[Obj], small: Fit) -> None:
    res = resources(intent, "Deployment", "gateway")
    res["requests"]["cpu"], res["limits"]["cpu"] = "2", "1"
    fitted, report = apply_fit(intent, small)
    fitted_res = resources(fitted, "Deployment", "gateway")
    assert (fitted_res["requests"]["cpu"], fitted_res["limits"]["cpu"]) == ("2", "1")
    assert fitted_res["requests"]["memory"] == "128Mi"  # the sound pair is still fitted
    assert "Deployment/gateway cpu requests/limits" in report.kept
    assert any(v.rule == "resources" for v in check_objects(fitted))


def test_the_report_lists_what_was_lowered(intent: list[Obj], small: Fit) -> None:
    _, report = apply_fit(intent, small)
    assert report.kept == [] and "left as written" not in report.line()
    assert sorted(report.hpa_bounds) == [
        "HorizontalPodAutoscaler/agent-runtime-hpa",
        "HorizontalPodAutoscaler/auth-service-hpa",
        "HorizontalPodAutoscaler/gateway-hpa",
    ]
    assert report.replicas == set()  # the small fit keeps the guide's replica counts
    assert sorted(report.volumes) == [
        "StatefulSet/postgres postgres-data",
        "StatefulSet/redis redis-data",
    ]


def test_nothing_to_scale() -> None:
    fit = fit_for("small")
    assert fit is not None
    fitted, report = apply_fit([], fit)
    assert fitted == [] and report.line() == "fit: small (nothing to scale)"


def test_fitted_for_scripts(intent: list[Obj], small: Fit) -> None:
    assert fitted(intent, "prod") == intent
    assert fitted(intent, "small") == apply_fit(intent, small)[0]


def test_fitted_hpa_bounds_are_what_the_fit_gives_the_rendered_hpas(
    small: Fit, intent: list[Obj]
) -> None:
    """The expected side of the autoscaling suite: the guide's bounds through the same fit."""
    deployed, _ = apply_fit(intent, small)
    for hpa in (o for o in intent if o["kind"] == "HorizontalPodAutoscaler"):
        spec, ref = hpa["spec"], hpa["spec"]["scaleTargetRef"]
        live = find(deployed, "HorizontalPodAutoscaler", hpa["metadata"]["name"])["spec"]
        bounds = fitted_hpa_bounds(
            small, ref["kind"], ref["name"], spec.get("minReplicas"), spec["maxReplicas"]
        )
        assert bounds == (live.get("minReplicas"), live["maxReplicas"])
    assert fitted_hpa_bounds(small, "Deployment", "gateway", 3, 10) == (3, 6)
    assert fitted_hpa_bounds(small, "Deployment", "auth-service", 2, 2) == (2, 2)  # kept stuck
    assert fitted_hpa_bounds(None, "Deployment", "gateway", 3, 10) == (3, 10)
