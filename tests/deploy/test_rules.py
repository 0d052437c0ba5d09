"""Rules and schema: bundled manifests pass; a broken folder fails each rule, naming the object."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_codelab.deploy.fit import apply_fit, fit_for
from pytest_codelab.deploy.manifests import load_manifests, render
from pytest_codelab.deploy.profiles import load_profile
from pytest_codelab.deploy.rules.base import Violation
from pytest_codelab.deploy.rules.containers import image_problem
from pytest_codelab.deploy.rules.registry import (
    RULES,
    RULES_BY_ID,
    SET_RULES,
    SET_RULES_BY_ID,
    check_objects,
)
from pytest_codelab.deploy.schema import (
    KUBERNETES_VERSION,
    bundled_schema,
    supported_kinds,
    validate_object,
)
from pytest_codelab.resources import bundled_path

Obj = dict[str, Any]


def good_deployment(name: str = "web") -> Obj:
    """A Deployment that passes every rule; tests break one thing at a time."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [
                        {
                            "name": name,
                            "image": "ghcr.io/codelab/web:1.0.0",
                            "ports": [{"containerPort": 8000}],
                            "env": [{"name": "MODE", "value": "prod"}],
                            "resources": {
                                "requests": {"cpu": "100m", "memory": "128Mi"},
                                "limits": {"cpu": "500m", "memory": "256Mi"},
                            },
                            "livenessProbe": {"httpGet": {"path": "/health", "port": 8000}},
                            "readinessProbe": {"httpGet": {"path": "/health", "port": 8000}},
                        }
                    ]
                },
            },
        },
    }


def main(obj: Obj) -> dict[str, Any]:
    c: dict[str, Any] = obj["spec"]["template"]["spec"]["containers"][0]
    return c


def write_folder(tmp_path: Path, objects: list[Obj]) -> list[Obj]:
    """Write objects as a manifests folder and load it back (as the suite would)."""
    folder = tmp_path / "manifests"
    folder.mkdir()
    (folder / "app.yaml").write_text(yaml.safe_dump_all(objects, sort_keys=False))
    return load_manifests(folder)


def only(violations: list[Violation], rule: str) -> list[Violation]:
    return [v for v in violations if v.rule == rule]


# --------------------------------------------------------------------------- bundled


VARIANTS = ("as-written", "prod-values", "fitted-small")


def bundled_variant(variant: str) -> list[Obj]:
    """The bundled manifests as written, with the guide's values-prod.yaml rendered over
    them, or as written and then fitted for one node (what the local cluster gets)."""
    raw = load_manifests(bundled_path("manifests"))
    if variant == "prod-values":
        return render(raw, namespace="n", values=load_profile("prod"))
    intent = render(raw, namespace="n", values=None)
    if variant == "fitted-small":
        fit = fit_for("small")
        assert fit is not None
        return apply_fit(intent, fit)[0]
    return intent


@pytest.mark.parametrize("variant", VARIANTS)
def test_bundled_manifests_pass_every_rule(variant: str) -> None:
    objects = bundled_variant(variant)
    assert check_objects(objects) == []
    assert {o["kind"] for o in objects} >= {"Deployment", "StatefulSet", "NetworkPolicy"}


def test_bundled_manifests_as_written_pass_every_rule() -> None:
    raw = load_manifests(bundled_path("manifests"))
    assert check_objects(raw) == []


@pytest.mark.parametrize("variant", VARIANTS)
def test_bundled_manifests_validate_against_the_schema(variant: str) -> None:
    objects = bundled_variant(variant)
    results = [validate_object(o) for o in objects]
    assert [r.message() for r in results if not r.ok] == []
    shape_only = [r for r in results if not r.validated]
    # Only the VPA (a CRD) goes without a full schema check, and it says so.
    assert [r.obj for r in shape_only] == ["VerticalPodAutoscaler/agent-runtime-vpa"]
    assert "no OpenAPI schema bundled" in shape_only[0].note
    assert sum(r.validated for r in results) == len(results) - 1


def test_good_deployment_is_clean(tmp_path: Path) -> None:
    objs = write_folder(tmp_path, [good_deployment()])
    assert [v for v in check_objects(objs, set_rules=()) if v.rule != "networkpolicies"] == []


# --------------------------------------------------------------------------- broken folder


def test_missing_readiness_probe_message(tmp_path: Path) -> None:
    d = good_deployment("gateway")
    del main(d)["readinessProbe"]
    (v,) = only(check_objects(write_folder(tmp_path, [d]), set_rules=()), "probes")
    assert str(v) == (
        "Deployment/gateway container 'gateway': no readinessProbe [rule probes]; "
        "fix: add a readinessProbe (httpGet /health on port 8000, or an exec check for a "
        "server without HTTP) (from app.yaml:1)"
    )


def break_resources(d: Obj) -> None:
    del main(d)["resources"]["limits"]


def break_probes(d: Obj) -> None:
    del main(d)["livenessProbe"]


def break_probe_port(d: Obj) -> None:
    main(d)["readinessProbe"]["httpGet"]["port"] = 9999


def break_plain_secret(d: Obj) -> None:
    main(d)["env"].append({"name": "JWT_SECRET_KEY", "value": "s3cr3t"})


def break_credential_value(d: Obj) -> None:
    main(d)["env"].append({"name": "DATABASE_URL", "value": "postgresql://u:pw@db:5432/x"})


def break_secret_flag(d: Obj) -> None:
    main(d)["args"] = ["--requirepass", "hunter2"]


def break_latest(d: Obj) -> None:
    main(d)["image"] = "ghcr.io/berriai/litellm:main-latest"


def break_untagged(d: Obj) -> None:
    main(d)["image"] = "redis"


def break_request_above_limit(d: Obj) -> None:
    main(d)["resources"]["requests"]["memory"] = "1Gi"


@pytest.mark.parametrize(
    ("breaker", "rule", "problem"),
    [
        (break_resources, "resources", "no resources.limits.cpu, resources.limits.memory"),
        (
            break_request_above_limit,
            "resources",
            "requests.memory 1Gi is above limits.memory 256Mi",
        ),
        (break_probes, "probes", "no livenessProbe"),
        (break_probe_port, "probes", "readinessProbe targets port 9999"),
        (break_plain_secret, "plain-secrets", "env JWT_SECRET_KEY has a plain value"),
        (break_credential_value, "plain-secrets", "env DATABASE_URL holds a URL with a password"),
        (break_secret_flag, "plain-secrets", "command line passes a literal '--requirepass' value"),
        (break_latest, "pinned-images", "uses the floating tag 'main-latest'"),
        (break_untagged, "pinned-images", "image redis has no tag"),
    ],
)
def test_each_container_rule_fails_naming_the_object(
    tmp_path: Path, breaker: Any, rule: str, problem: str
) -> None:
    d = good_deployment("broken")
    breaker(d)
    found = only(check_objects(write_folder(tmp_path, [d]), set_rules=()), rule)
    assert found, f"rule {rule} did not fire"
    text = str(found[0])
    assert text.startswith("Deployment/broken container 'broken': ")
    assert problem in text
    assert f"[rule {rule}]; fix: " in text
    assert "s3cr3t" not in text and "hunter2" not in text and ":pw@" not in text


def test_hpa_rule(tmp_path: Path) -> None:
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web-hpa"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "missing"},
            "minReplicas": 5,
            "maxReplicas": 3,
            "metrics": [
                {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization"}}}
            ],
        },
    }
    objs = write_folder(tmp_path, [good_deployment(), hpa])
    texts = [str(v) for v in check_objects(objs) if v.rule == "hpa"]
    assert any(
        "HorizontalPodAutoscaler/web-hpa: minReplicas 5 > maxReplicas 3 [rule hpa]" in t
        for t in texts
    )
    assert any("metrics[0] has no target" in t for t in texts)
    assert any("scaleTargetRef Deployment/missing is not in the manifests" in t for t in texts)


def test_hpa_needs_requests_of_its_metric(tmp_path: Path) -> None:
    d = good_deployment()
    del main(d)["resources"]["requests"]["memory"]
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web-hpa"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": 1,
            "maxReplicas": 3,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "memory",
                        "target": {"type": "Utilization", "averageUtilization": 80},
                    },
                }
            ],
        },
    }
    found = SET_RULES_BY_ID["hpa"].check(write_folder(tmp_path, [d, hpa]))
    assert len(found) == 1 and "request no memory" in str(found[0])


def test_networkpolicies_rule(tmp_path: Path) -> None:
    objs = write_folder(tmp_path, [good_deployment()])
    (v,) = SET_RULES_BY_ID["networkpolicies"].check(objs)
    assert str(v).startswith("(manifests): no NetworkPolicy at all [rule networkpolicies]; fix: ")


def test_networkpolicy_gaps(tmp_path: Path) -> None:
    deny = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "deny"},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
    }
    stale = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "allow-api"},
        "spec": {
            "podSelector": {"matchLabels": {"app": "api"}},
            "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "old-name"}}}]}],
        },
    }
    texts = [
        str(v)
        for v in SET_RULES_BY_ID["networkpolicies"].check(
            write_folder(tmp_path, [good_deployment("web"), good_deployment("api"), deny, stale])
        )
    ]
    assert any(
        t.startswith("Deployment/web: serves ports but no NetworkPolicy allows") for t in texts
    )
    assert not any(t.startswith("Deployment/api:") for t in texts)
    assert any(t.startswith("NetworkPolicy/allow-api: peer podSelector") for t in texts)


def test_no_default_deny(tmp_path: Path) -> None:
    allow = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "allow-web"},
        "spec": {"podSelector": {"matchLabels": {"app": "web"}}, "ingress": [{}]},
    }
    texts = [
        str(v)
        for v in SET_RULES_BY_ID["networkpolicies"].check(
            write_folder(tmp_path, [good_deployment(), allow])
        )
    ]
    assert texts == [
        "(manifests): no default-deny ingress NetworkPolicy [rule networkpolicies]; fix: add one "
        "with podSelector: {} and policyTypes: [Ingress] and no ingress rules"
    ]


def test_references_rule(tmp_path: Path) -> None:
    d = good_deployment()
    d["spec"]["template"]["spec"]["volumes"] = [{"name": "c", "configMap": {"name": "nope"}}]
    svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "wbe"}, "ports": [{"port": 80}]},
    }
    ing = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": "i"},
        "spec": {
            "rules": [
                {
                    "http": {
                        "paths": [
                            {
                                "path": "/",
                                "pathType": "Prefix",
                                "backend": {"service": {"name": "web", "port": {"number": 8080}}},
                            },
                            {
                                "path": "/x",
                                "pathType": "Prefix",
                                "backend": {"service": {"name": "ghost", "port": {"number": 1}}},
                            },
                        ]
                    }
                }
            ]
        },
    }
    texts = [
        str(v) for v in SET_RULES_BY_ID["references"].check(write_folder(tmp_path, [d, svc, ing]))
    ]
    assert any(
        t.startswith("Service/web: selector {'app': 'wbe'} matches no pod template") for t in texts
    )
    assert any(t.startswith("Ingress/i path '/': backend port {'number': 8080}") for t in texts)
    assert any(t.startswith("Ingress/i path '/x': backend Service 'ghost'") for t in texts)
    assert any(t.startswith("Deployment/web: uses ConfigMap 'nope'") for t in texts)


def test_plain_secret_in_configmap_and_opt_out(tmp_path: Path) -> None:
    cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "llm"},
        "data": {
            "config.yaml": "model_list:\n  - litellm_params:\n      api_key: abc123\n"
            "      other_key: os.environ/X\n"
        },
    }
    d = good_deployment()
    main(d)["env"].append({"name": "CACHE_KEY_PREFIX", "value": "codelab:"})
    d["metadata"]["annotations"] = {"codelab.dev/allow-plain-env": "CACHE_KEY_PREFIX"}
    objs = write_folder(tmp_path, [cm, d])
    rule = RULES_BY_ID["plain-secrets"]
    (v,) = rule.check(objs[0])
    assert str(v).startswith("ConfigMap/llm: data['config.yaml'] sets 'api_key' to a literal value")
    assert "abc123" not in str(v)
    assert rule.check(objs[1]) == []


@pytest.mark.parametrize(
    ("image", "pinned"),
    [
        ("ghcr.io/codelab/gateway:1.0.0", True),
        ("postgres:15-alpine", True),
        ("ghcr.io/berriai/litellm:v1.80.11-stable.1", True),
        ("redis@sha256:" + "a" * 64, True),
        ("redis:latest", False),
        ("ghcr.io/berriai/litellm:main-latest", False),
        ("ghcr.io/berriai/litellm:main-stable", False),
        ("localhost:5000/redis", False),
        ("x:nightly-2024", False),
    ],
)
def test_image_pinning(image: str, pinned: bool) -> None:
    assert (image_problem(image) is None) is pinned


# --------------------------------------------------------------------------- schema


def test_schema_catches_typos_types_and_required(tmp_path: Path) -> None:
    # Wrong types in fields the gate reads stop the load (tests/deploy/test_hostile.py);
    # the schema judges the others.
    d = good_deployment()
    d["spec"]["replica"] = 3
    main(d)["stdin"] = "yes"
    main(d)["resources"]["limits"]["cpu"] = "lots"
    del d["spec"]["selector"]
    result = validate_object(write_folder(tmp_path, [d])[0])
    assert result.status == "invalid" and not result.ok
    text = result.message()
    assert (
        "Deployment/web (apps/v1/Deployment): spec: "
        "unknown field 'replica' (did you mean 'replicas'?)" in text
    )
    assert "spec: 'selector' is a required property" in text
    assert "containers[0].stdin: 'yes' is not of type 'boolean'" in text
    assert "limits.cpu: 'lots' is not a quantity" in text


def test_schema_volume_claim_templates_need_no_kind() -> None:
    sts = next(o for o in load_manifests(bundled_path("manifests")) if o["kind"] == "StatefulSet")
    assert validate_object(sts).validated
    bad = copy.deepcopy(sts)
    bad["spec"]["volumeClaimTemplates"][0]["spec"]["accesModes"] = ["ReadWriteOnce"]
    assert (
        "unknown field 'accesModes' (did you mean 'accessModes'?)" in validate_object(bad).message()
    )


def test_schema_never_echoes_secret_content() -> None:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s"},
        "data": {"password": 1234567},
    }
    result = validate_object(secret)
    assert not result.ok and "1234567" not in result.message()


def test_crds_and_unknown_kinds_are_shape_checked_only() -> None:
    vpa: Obj = {
        "apiVersion": "autoscaling.k8s.io/v1",
        "kind": "VerticalPodAutoscaler",
        "metadata": {"name": "v"},
        "spec": {
            "targetRef": {"kind": "Deployment", "name": "x"},
            "updatePolicy": {"updateMode": "Sometimes"},
        },
    }
    result = validate_object(vpa)
    assert result.status == "shape-invalid" and not result.validated
    vpa["spec"]["updatePolicy"]["updateMode"] = "Auto"
    ok = validate_object(vpa)
    assert ok.status == "shape-only" and ok.ok and not ok.validated
    widget = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    assert validate_object(widget).status == "shape-only"
    assert "checked apiVersion/kind/metadata only" in validate_object(widget).note


def test_bundled_schema_is_pinned_and_covers_the_kinds() -> None:
    doc = bundled_schema()
    assert doc["kubernetesVersion"] == KUBERNETES_VERSION == "1.37.2"
    wanted = {
        "apps/v1/Deployment",
        "apps/v1/StatefulSet",
        "v1/Service",
        "v1/ConfigMap",
        "v1/Secret",
        "v1/PersistentVolumeClaim",
        "v1/ServiceAccount",
        "networking.k8s.io/v1/Ingress",
        "networking.k8s.io/v1/NetworkPolicy",
        "autoscaling/v2/HorizontalPodAutoscaler",
        "policy/v1/PodDisruptionBudget",
    }
    assert wanted <= supported_kinds()
    size = (
        (Path(__file__).parents[2] / "src" / "pytest_codelab" / "data" / "k8s-1.37.2-schema.json")
        .stat()
        .st_size
    )
    assert size < 1024 * 1024


def test_rule_registry_is_complete() -> None:
    assert {r.id for r in RULES} == {"resources", "probes", "plain-secrets", "pinned-images", "hpa"}
    assert {r.id for r in SET_RULES} == {
        "networkpolicies",
        "hpa",
        "references",
        "namespaces",
        "autoscaling",
        "monitoring",
        "rolling-updates",
    }
    for r in RULES:
        assert r.requirement.startswith("2.8/") and r.description
    for s in SET_RULES:
        assert s.requirement.startswith("2.8/") and s.description


# ------------------------------------------------------------------- best practices 1, 4, 5, 9


def hpa_for(name: str, low: int = 2, high: int = 4) -> Obj:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": f"{name}-hpa"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": low,
            "maxReplicas": high,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": 70},
                    },
                }
            ],
        },
    }


def service(name: str, labels: dict[str, str] | None = None, port: int = 8000) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "labels": labels or {"app": name}},
        "spec": {"selector": {"app": name}, "ports": [{"name": "http", "port": port}]},
    }


def test_namespaces_rule_names_pinned_objects(tmp_path: Path) -> None:
    pinned = good_deployment("gateway")
    pinned["metadata"]["namespace"] = "default"
    own = good_deployment("web")
    own["metadata"]["namespace"] = "codelab"
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": "reader", "namespace": "default"},
        "rules": [],
    }
    found = SET_RULES_BY_ID["namespaces"].check(write_folder(tmp_path, [pinned, own, role]))
    assert [str(v).split(" [rule")[0] for v in found] == [
        "Deployment/gateway: metadata.namespace is 'default', a namespace shared with the rest "
        "of the cluster; expected the application's own namespace (the guide: codelab)"
    ]
    assert "(from app.yaml:1)" in str(found[0])


def test_autoscaling_rule_needs_an_hpa_per_critical_service(tmp_path: Path) -> None:
    objs = [good_deployment(n) for n in ("gateway", "agent-runtime", "auth-service", "web")]
    objs += [hpa_for("gateway"), hpa_for("auth-service"), hpa_for("web")]
    found = SET_RULES_BY_ID["autoscaling"].check(write_folder(tmp_path, objs))
    assert [v.obj for v in found] == ["Deployment/agent-runtime"]
    assert "no HorizontalPodAutoscaler has it as scaleTargetRef; expected an HPA" in str(found[0])
    assert "scaleTargetRef Deployment/agent-runtime" in str(found[0])


def test_autoscaling_rule_is_clean_with_every_hpa(tmp_path: Path) -> None:
    names = ("gateway", "agent-runtime", "auth-service")
    objs = [good_deployment(n) for n in names] + [hpa_for(n) for n in names]
    assert SET_RULES_BY_ID["autoscaling"].check(write_folder(tmp_path, objs)) == []


@pytest.mark.parametrize(
    ("replicas", "strategy", "hpa_min", "problem"),
    [
        (3, {"type": "Recreate"}, None, "spec.strategy.type is Recreate"),
        (2, {"rollingUpdate": {"maxUnavailable": 2}}, None, "maxUnavailable 2 lets a rollout"),
        (4, {"rollingUpdate": {"maxUnavailable": "100%"}}, None, "take all 4 replica(s)"),
        (1, {}, None, None),  # 25 % of 1 rounds down to 0: one pod always serves
        (1, {"rollingUpdate": {"maxUnavailable": 1}}, None, "expected at most 0"),
        (1, {"rollingUpdate": {"maxUnavailable": 0, "maxSurge": 0}}, None, "take all 1"),
        (3, {"rollingUpdate": {"maxUnavailable": 2}}, None, None),
        # The HPA keeps 3 pods: maxUnavailable 2 leaves one serving.
        (1, {"rollingUpdate": {"maxUnavailable": 2}}, 3, None),
        (1, {"rollingUpdate": {"maxUnavailable": 3}}, 3, "take all 3 replica(s)"),
    ],
)
def test_rolling_updates_rule(
    tmp_path: Path,
    replicas: int,
    strategy: dict[str, Any],
    hpa_min: int | None,
    problem: str | None,
) -> None:
    d = good_deployment("web")
    d["spec"]["replicas"] = replicas
    if strategy:
        d["spec"]["strategy"] = strategy
    objs = [d] + ([hpa_for("web", hpa_min, hpa_min + 2)] if hpa_min else [])
    found = SET_RULES_BY_ID["rolling-updates"].check(write_folder(tmp_path, objs))
    if problem is None:
        assert found == []
    else:
        (v,) = found
        assert str(v).startswith("Deployment/web: spec.strategy")
        assert problem in str(v) and "[rule rolling-updates]" in str(v)


def test_rolling_updates_rule_ignores_workers_without_ports(tmp_path: Path) -> None:
    d = good_deployment("worker")
    del main(d)["ports"]
    d["spec"]["strategy"] = {"type": "Recreate"}
    assert SET_RULES_BY_ID["rolling-updates"].check(write_folder(tmp_path, [d])) == []


def test_monitoring_rule_without_hooks_is_clean(tmp_path: Path) -> None:
    objs = write_folder(tmp_path, [good_deployment("web"), service("web")])
    assert SET_RULES_BY_ID["monitoring"].check(objs) == []


def test_monitoring_annotations_must_name_existing_ports(tmp_path: Path) -> None:
    d = good_deployment("web")
    d["spec"]["template"]["metadata"]["annotations"] = {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": "9090",
    }
    svc = service("web")
    svc["metadata"]["annotations"] = {"prometheus.io/port": "9091"}
    texts = [str(v) for v in SET_RULES_BY_ID["monitoring"].check(write_folder(tmp_path, [d, svc]))]
    assert texts[0].startswith(
        "Deployment/web: spec.template.metadata.annotations[prometheus.io/port] is '9090'; "
        "expected one of the pod's containerPorts [8000]"
    )
    assert texts[1].startswith(
        "Service/web: metadata.annotations[prometheus.io/port] is '9091'; expected one of the "
        "Service's ports [8000]"
    )
    fixed = good_deployment("web")
    fixed["spec"]["template"]["metadata"]["annotations"] = {"prometheus.io/port": "8000"}
    assert SET_RULES_BY_ID["monitoring"].check([fixed]) == []


def test_service_and_pod_monitors_must_hit_ports(tmp_path: Path) -> None:
    d = good_deployment("web")
    main(d)["ports"] = [{"name": "metrics", "containerPort": 9100}]
    svc = service("web")
    svc["spec"]["ports"] = [{"name": "metrics", "port": 9100, "targetPort": 9100}]

    def monitor(kind: str, spec: dict[str, Any]) -> Obj:
        return {
            "apiVersion": "monitoring.coreos.com/v1",
            "kind": kind,
            "metadata": {"name": kind.lower()},
            "spec": spec,
        }

    good = [
        monitor(
            "ServiceMonitor",
            {"selector": {"matchLabels": {"app": "web"}}, "endpoints": [{"port": "metrics"}]},
        ),
        monitor(
            "PodMonitor",
            {
                "selector": {"matchLabels": {"app": "web"}},
                "podMetricsEndpoints": [{"port": "metrics"}],
            },
        ),
    ]
    folder = tmp_path / "good"
    folder.mkdir()
    assert SET_RULES_BY_ID["monitoring"].check(write_folder(folder, [d, svc, *good])) == []
    bad = [
        monitor(
            "ServiceMonitor",
            {
                "selector": {"matchLabels": {"app": "web"}},
                "endpoints": [{"port": "prom"}, {"targetPort": 9999}],
            },
        ),
        monitor("PodMonitor", {"selector": {"matchLabels": {"app": "gone"}}}),
    ]
    texts = [
        str(v) for v in SET_RULES_BY_ID["monitoring"].check(write_folder(tmp_path, [d, svc, *bad]))
    ]
    assert texts[0].startswith(
        "ServiceMonitor/servicemonitor: spec.endpoints[0].port is 'prom'; expected a named port "
        "of Service/web: ['metrics']"
    )
    assert texts[1].startswith(
        "ServiceMonitor/servicemonitor: spec.endpoints[1].targetPort is 9999; expected a "
        "containerPort"
    )
    assert texts[2].startswith("PodMonitor/podmonitor: spec.selector selects no pod")
    assert all("[rule monitoring]" in t for t in texts)
