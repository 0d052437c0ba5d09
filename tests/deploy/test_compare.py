"""The comparison: the bundled manifests have the guide's figures; each broken figure is one
mismatch naming the object, the field, the expected value with its key, and what was found."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from pytest_codelab.deploy.compare import AREAS, checks, compare, compare_with_render
from pytest_codelab.deploy.expected import Expectation, load_expectation
from pytest_codelab.deploy.fit import apply_fit, fit_for
from pytest_codelab.deploy.manifests import load_manifests, render
from pytest_codelab.deploy.profiles import load_profile
from pytest_codelab.resources import bundled_path

Obj = dict[str, Any]


@pytest.fixture(scope="module")
def guide() -> Expectation:
    return load_expectation(None)


@pytest.fixture(scope="module")
def raw() -> list[Obj]:
    return load_manifests(bundled_path("manifests"))


@pytest.fixture
def intent(raw: list[Obj]) -> list[Obj]:
    return render(raw, namespace="codelab", values=None)


def find(objects: list[Obj], kind: str, name: str) -> Obj:
    (obj,) = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    return obj


def container(objects: list[Obj], kind: str, name: str) -> dict[str, Any]:
    result: dict[str, Any] = find(objects, kind, name)["spec"]["template"]["spec"]["containers"][0]
    return result


def env(objects: list[Obj], name: str, var: str) -> dict[str, Any]:
    entries = container(objects, "Deployment", name)["env"]
    result: dict[str, Any] = next(e for e in entries if e["name"] == var)
    return result


def test_the_bundled_manifests_have_the_guide_figures(
    raw: list[Obj], intent: list[Obj], guide: Expectation
) -> None:
    assert len(checks(guide)) > 100
    assert compare(intent, guide) == []
    assert compare(render(raw, namespace="n", values=load_profile("prod")), guide) == []
    assert compare(raw, guide) == []  # as written: the namespace plays no part


def test_unknown_area(guide: Expectation) -> None:
    with pytest.raises(ValueError, match="unknown comparison areas"):
        checks(guide, ["colours"])


def _set(path: tuple[Any, ...], value: Any) -> Callable[[list[Obj]], None]:
    kind, name, *keys = path

    def apply(objects: list[Obj]) -> None:
        node: Any = find(objects, kind, name)
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = value

    return apply


_CONTAINER = ("spec", "template", "spec", "containers", 0)


@pytest.mark.parametrize(
    ("area", "breaker", "line"),
    [
        (
            "replicas",
            _set(("Deployment", "gateway", "spec", "replicas"), 2),
            "Deployment/gateway spec.replicas: expected 3 (gateway.replicaCount), found 2 "
            "(from 32-gateway.yaml:28)",
        ),
        (
            "replicas",
            _set(("StatefulSet", "postgres", "spec", "replicas"), 2),
            "StatefulSet/postgres spec.replicas: expected 1 (expect.replicas.postgres.replicas), "
            "found 2",
        ),
        (
            "autoscaling",
            _set(("HorizontalPodAutoscaler", "gateway-hpa", "spec", "maxReplicas"), 8),
            "HorizontalPodAutoscaler/gateway-hpa spec.maxReplicas: expected 10 "
            "(gateway.autoscaling.maxReplicas), found 8",
        ),
        (
            "autoscaling",
            _set(
                ("HorizontalPodAutoscaler", "auth-service-hpa", "spec", "metrics", 0, "resource"),
                {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}},
            ),
            "HorizontalPodAutoscaler/auth-service-hpa spec.metrics[cpu] averageUtilization: "
            "expected 70 (authService.autoscaling.targetCPUUtilizationPercentage), found 50",
        ),
        (
            "resources",
            _set(("Deployment", "gateway", *_CONTAINER, "resources", "limits", "cpu"), "900m"),
            "Deployment/gateway container gateway resources.limits.cpu: expected 1000m "
            "(gateway.resources.limits.cpu), found 900m",
        ),
        (
            "probes",
            _set(
                ("Deployment", "gateway", *_CONTAINER, "readinessProbe", "httpGet", "path"),
                "/ready",
            ),
            "Deployment/gateway container gateway readinessProbe.path: expected /health "
            "(expect.probes.gateway.readinessProbe.path), found /ready",
        ),
        (
            "probes",
            _set(
                ("Deployment", "agent-runtime", *_CONTAINER, "livenessProbe", "periodSeconds"), 60
            ),
            "Deployment/agent-runtime container agent-runtime livenessProbe.periodSeconds: "
            "expected 10 (expect.probes.agent-runtime.livenessProbe.periodSeconds), found 60",
        ),
        (
            "services",
            _set(("Service", "gateway", "spec", "ports"), [{"port": 80, "targetPort": 8000}]),
            "Service/gateway spec.ports (port->targetPort): expected 8000->8000 "
            "(expect.services.gateway.ports), found 80->8000",
        ),
        (
            "services",
            _set(("Service", "redis", "spec", "clusterIP"), "10.0.0.9"),
            "Service/redis spec.clusterIP: expected headless (clusterIP None) "
            "(expect.services.redis.headless), found not headless",
        ),
        (
            "ingress",
            _set(
                (
                    "Ingress",
                    "codelab-ingress",
                    "metadata",
                    "annotations",
                    "nginx.ingress.kubernetes.io/proxy-body-size",
                ),
                "10m",
            ),
            "Ingress/codelab-ingress metadata.annotations.nginx.ingress.kubernetes.io/"
            "proxy-body-size: expected 50m (ingress.annotations.nginx.ingress.kubernetes.io/"
            "proxy-body-size), found 10m",
        ),
        (
            "ingress",
            _set(("Ingress", "codelab-ingress", "spec", "tls", 0, "secretName"), "other-tls"),
            "Ingress/codelab-ingress spec.tls[].secretName: expected codelab-tls "
            "(ingress.tls[0].secretName), found other-tls",
        ),
        (
            "ingress",
            _set(
                ("Ingress", "codelab-ingress", "spec", "rules", 0, "http", "paths", 1, "backend"),
                {"service": {"name": "gateway", "port": {"number": 8000}}},
            ),
            "found /api/v1 (Prefix) -> gateway:8000; /oauth (Prefix) -> gateway:8000",
        ),
        (
            "volumes",
            _set(
                (
                    "StatefulSet",
                    "postgres",
                    "spec",
                    "volumeClaimTemplates",
                    0,
                    "spec",
                    "resources",
                    "requests",
                    "storage",
                ),
                "20Gi",
            ),
            "StatefulSet/postgres volumeClaimTemplates[postgres-data] resources.requests.storage: "
            "expected 50Gi (postgresql.primary.persistence.size), found 20Gi",
        ),
        (
            "volumes",
            _set(
                ("StatefulSet", "redis", "spec", "volumeClaimTemplates", 0, "spec", "accessModes"),
                ["ReadWriteMany"],
            ),
            "StatefulSet/redis volumeClaimTemplates[redis-data] accessModes: expected "
            "ReadWriteOnce (expect.volumeClaims.redis-data.accessModes), found ReadWriteMany",
        ),
        (
            "vpa",
            _set(("VerticalPodAutoscaler", "agent-runtime-vpa", "spec", "updatePolicy"), {}),
            None,  # left out, the VPA's mode is Auto: no mismatch
        ),
        (
            "vpa",
            _set(
                ("VerticalPodAutoscaler", "agent-runtime-vpa", "spec", "updatePolicy"),
                {"updateMode": "Off"},
            ),
            "VerticalPodAutoscaler/agent-runtime-vpa spec.updatePolicy.updateMode: expected Auto "
            "(expect.vpas.agent-runtime-vpa.updateMode), found Off",
        ),
        (
            "images",
            _set(("Deployment", "gateway", *_CONTAINER, "image"), "docker.io/acme/gateway:1.0.0"),
            "Deployment/gateway container gateway image repository: expected "
            "ghcr.io/codelab/gateway (gateway.image.repository), found docker.io/acme/gateway",
        ),
        (
            "images",
            _set(("Deployment", "gateway", *_CONTAINER, "image"), "ghcr.io/codelab/gateway:2.0"),
            None,  # tags are not compared (rollouts change them)
        ),
    ],
)
def test_each_broken_figure_is_one_mismatch(
    intent: list[Obj],
    guide: Expectation,
    area: str,
    breaker: Callable[[list[Obj]], None],
    line: str | None,
) -> None:
    breaker(intent)
    found = compare(intent, guide, [area])
    if line is None:
        assert found == []
        return
    assert len(found) == 1, found
    assert line in str(found[0])
    assert compare(intent, guide, [a for a in AREAS if a != area]) == []


def test_equal_quantities_are_equal(intent: list[Obj], guide: Expectation) -> None:
    res = container(intent, "Deployment", "gateway")["resources"]
    res["limits"]["cpu"], res["requests"]["memory"] = "1", "0.5Gi"
    assert compare(intent, guide, ["resources"]) == []


def test_a_named_probe_port_reads_as_its_number(intent: list[Obj], guide: Expectation) -> None:
    c = container(intent, "Deployment", "gateway")
    c["readinessProbe"]["httpGet"]["port"] = "http"
    assert compare(intent, guide, ["probes"]) == []
    c["ports"][0]["containerPort"] = 8080
    (m,) = compare(intent, guide, ["probes"])
    assert "readinessProbe.port: expected 8000" in str(m) and str(m).endswith(
        "found 8080 (from 32-gateway.yaml:28)"
    )


def test_a_missing_object_is_one_line(intent: list[Obj], guide: Expectation) -> None:
    intent.remove(find(intent, "HorizontalPodAutoscaler", "gateway-hpa"))
    (m,) = compare(intent, guide, ["autoscaling"])
    assert str(m) == (
        "HorizontalPodAutoscaler/gateway-hpa (for Deployment/gateway) (the object): expected "
        "present (gateway.autoscaling.maxReplicas), found absent"
    )


def test_secret_references_never_show_a_value(intent: list[Obj], guide: Expectation) -> None:
    entry = env(intent, "gateway", "DATABASE_URL")
    entry.pop("valueFrom")
    entry["value"] = "postgresql://u:hunter2@db/x"
    container(intent, "Deployment", "gateway")["env"].append(
        {"name": "SENTRY_DSN", "valueFrom": {"secretKeyRef": {"name": "sentry", "key": "dsn"}}}
    )
    found = [str(m) for m in compare(intent, guide, ["secrets"])]
    assert found == [
        "Deployment/gateway container gateway env DATABASE_URL: expected "
        "postgres-secret/connection-string (expect.secretRefs.gateway.env.DATABASE_URL), "
        "found a value not from a Secret (from 32-gateway.yaml:28)",
        "Deployment/gateway container gateway Secret references beyond the expected ones: "
        "expected none (expect.secretRefs.gateway.env, gateway.secrets), found SENTRY_DSN from "
        "sentry/dsn (from 32-gateway.yaml:28)",
    ]
    assert "hunter2" not in "".join(found)


def test_an_extra_hpa_metric_is_a_mismatch(intent: list[Obj], guide: Expectation) -> None:
    hpa = find(intent, "HorizontalPodAutoscaler", "auth-service-hpa")
    hpa["spec"]["metrics"].append(
        {
            "type": "Resource",
            "resource": {
                "name": "memory",
                "target": {"type": "Utilization", "averageUtilization": 90},
            },
        }
    )
    (m,) = compare(intent, guide, ["autoscaling"])
    assert str(m).startswith(
        "HorizontalPodAutoscaler/auth-service-hpa spec.metrics beyond the expected targets: "
        "expected none (authService.autoscaling), found memory"
    )


def test_live_replicas_of_a_scaled_workload_are_judged_by_the_bounds(
    intent: list[Obj], guide: Expectation
) -> None:
    find(intent, "Deployment", "gateway")["spec"]["replicas"] = 7
    assert compare(intent, guide, ["replicas"], live=True) == []
    assert len(compare(intent, guide, ["replicas"])) == 1  # offline: replicaCount itself
    find(intent, "Deployment", "gateway")["spec"]["replicas"] = 11
    (m,) = compare(intent, guide, ["replicas"], live=True)
    assert str(m).startswith(
        "Deployment/gateway spec.replicas: expected 3..10 (gateway.autoscaling.minReplicas, "
        "gateway.autoscaling.maxReplicas: gateway-hpa scales it), found 11"
    )
    # Not scaled by an HPA: the replica count itself.
    find(intent, "StatefulSet", "postgres")["spec"]["replicas"] = 3
    assert any("StatefulSet/postgres" in str(m) for m in compare(intent, guide, live=True))


def test_live_objects_against_the_applied_render(intent: list[Obj], guide: Expectation) -> None:
    fit = fit_for("small")
    assert fit is not None
    fitted, _ = apply_fit(intent, fit)
    live = copy.deepcopy(fitted)
    assert compare_with_render(fitted, live, guide) == []
    # The fitted stack differs from the guide (that is what the intent comparison is for)...
    assert compare(fitted, guide, ["autoscaling"]) != []
    # ...but what runs must be what was applied.
    find(live, "HorizontalPodAutoscaler", "gateway-hpa")["spec"]["maxReplicas"] = 10
    find(live, "Deployment", "gateway")["spec"]["replicas"] = 5  # the HPA scaled it: fine
    container(live, "Deployment", "agent-runtime")["resources"]["limits"]["memory"] = "2Gi"
    found = [str(m) for m in compare_with_render(fitted, live, guide)]
    assert found == [
        "HorizontalPodAutoscaler/gateway-hpa spec.maxReplicas: expected 6 (the fitted render), "
        "found 10 (from 50-hpa.yaml:3)",
        "Deployment/agent-runtime container agent-runtime resources.limits.memory: expected "
        "384Mi (the fitted render), found 2Gi (from 31-agent-runtime.yaml:28)",
    ]
    find(live, "Deployment", "gateway")["spec"]["replicas"] = 7
    (m,) = compare_with_render(fitted, live, guide, ["replicas"])
    assert str(m).startswith(
        "Deployment/gateway spec.replicas: expected 3..6 (HorizontalPodAutoscaler/gateway-hpa in "
        "the fitted render), found 7"
    )


def test_objects_the_render_lacks_are_left_to_the_expectation(
    intent: list[Obj], guide: Expectation
) -> None:
    intent.remove(find(intent, "VerticalPodAutoscaler", "agent-runtime-vpa"))
    assert compare_with_render(intent, intent, guide, ["vpa"]) == []
    assert len(compare(intent, guide, ["vpa"])) == 1


def test_the_registry_override_moves_the_expected_repositories(
    raw: list[Obj], guide: Expectation
) -> None:
    moved = render(raw, namespace="n", values=None, image_registry="mirror.local/lab")
    assert len(compare(moved, guide, ["images"])) == 3
    assert compare(moved, guide.with_registry("mirror.local/lab"), ["images"]) == []
