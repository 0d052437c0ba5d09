"""The offline suite (suites/test_static.py) on manifests folders that each break one best
practice or one figure of the guide: it fails, naming the object, the field and the expected
value; on the bundled manifests it passes. The fit of ``--codelab-profile`` hides nothing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_codelab.resources import bundled_path

SUITE = bundled_path("suites") / "test_static.py"
Fault = Callable[[dict[str, Any]], None]


def faulty_manifests(pytester: pytest.Pytester, *faults: Fault) -> Path:
    """A copy of the bundled manifests with every object passed through each fault."""
    dest = pytester.path / "manifests"
    dest.mkdir()
    for source in sorted(bundled_path("manifests").glob("*.yaml")):
        docs = [d for d in yaml.safe_load_all(source.read_text()) if d]
        for doc in docs:
            for fault in faults:
                fault(doc)
        (dest / source.name).write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return dest


def run_static(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest(
        str(SUITE),
        f"--rootdir={SUITE.parent}",
        "-p",
        "no:cacheprovider",
        f"--codelab-report-dir={pytester.path / 'report'}",
        *args,
    )


def failed_tests(result: pytest.RunResult) -> list[str]:
    return sorted(
        line.split(" ", 1)[1].split(" - ")[0].split("::", 1)[1]
        for line in result.stdout.lines
        if line.startswith("FAILED ")
    )


def assert_says(result: pytest.RunResult, *texts: str) -> None:
    """Each text is in the output (plain substrings: the messages hold brackets)."""
    out = result.stdout.str()
    missing = [t for t in texts if t not in out]
    assert not missing, f"not in the output: {missing}\n{out}"


def _main(obj: dict[str, Any]) -> dict[str, Any]:
    container: dict[str, Any] = obj["spec"]["template"]["spec"]["containers"][0]
    return container


def _is(obj: dict[str, Any], kind: str, name: str) -> bool:
    return bool(obj["kind"] == kind and obj["metadata"]["name"] == name)


def no_gateway_limits(obj: dict[str, Any]) -> None:
    if _is(obj, "Deployment", "gateway"):
        del _main(obj)["resources"]["limits"]


def floating_llm_proxy(obj: dict[str, Any]) -> None:
    if _is(obj, "Deployment", "llm-proxy"):
        _main(obj)["image"] = "ghcr.io/berriai/litellm:latest"


def gateway_hpa_max_8(obj: dict[str, Any]) -> None:
    if _is(obj, "HorizontalPodAutoscaler", "gateway-hpa"):
        obj["spec"]["maxReplicas"] = 8


def test_the_bundled_manifests_pass(pytester: pytest.Pytester) -> None:
    result = run_static(pytester, "-rs")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0 and outcomes["passed"] >= 70
    assert outcomes.get("skipped") == 1  # the VPA: a CRD, shape-checked only (said so)
    assert_says(
        result,
        "codelab: fit: small (scaled: requests/limits of 6 workloads, bounds of 3 HPAs, "
        "sizes of 2 volumes, mock responses for llm-proxy 1 model)",
        "no OpenAPI schema bundled for autoscaling.k8s.io/v1/VerticalPodAutoscaler",
    )


def test_a_missing_limit_fails_although_the_fit_has_one(pytester: pytest.Pytester) -> None:
    """The small fit has gateway limits; the manifests lack them: the suite sees the lack."""
    manifests = faulty_manifests(pytester, no_gateway_limits)
    result = run_static(pytester, f"--codelab-manifests={manifests}", "--codelab-profile=small")
    assert failed_tests(result) == [
        "test_guide_figures[resources]",
        "test_resources[Deployment/gateway]",
    ]
    assert_says(
        result,
        "Deployment/gateway container 'gateway': no resources.limits.cpu, "
        "resources.limits.memory [rule resources]; fix: ",
        "Deployment/gateway container gateway resources.limits.cpu: expected 1000m "
        "(gateway.resources.limits.cpu), found absent (from 32-gateway.yaml:",
        "Deployment/gateway container gateway resources.limits.memory: expected 1Gi "
        "(gateway.resources.limits.memory), found absent (from 32-gateway.yaml:",
    )


def test_an_unpinned_tag_fails(pytester: pytest.Pytester) -> None:
    manifests = faulty_manifests(pytester, floating_llm_proxy)
    result = run_static(pytester, f"--codelab-manifests={manifests}")
    assert failed_tests(result) == ["test_pinned_images[Deployment/llm-proxy]"]
    assert_says(
        result,
        "Deployment/llm-proxy container 'llm-proxy': image ghcr.io/berriai/litellm:latest "
        "uses the floating tag 'latest' [rule pinned-images]; fix: ",
    )


def test_a_bound_that_differs_from_the_guide_fails(pytester: pytest.Pytester) -> None:
    manifests = faulty_manifests(pytester, gateway_hpa_max_8)
    result = run_static(pytester, f"--codelab-manifests={manifests}")
    assert failed_tests(result) == ["test_guide_figures[autoscaling]"]
    assert_says(
        result,
        "1 figure(s) of HPA bounds, metrics and targets differ from the guide (profile prod "
        "+ expected/guide.yaml):\n"
        "HorizontalPodAutoscaler/gateway-hpa spec.maxReplicas: expected 10 "
        "(gateway.autoscaling.maxReplicas), found 8 (from 50-hpa.yaml:",
    )


@pytest.mark.parametrize(
    ("fault", "failed", "line"),
    [
        (
            lambda o: (
                o["metadata"].update(namespace="default") if _is(o, "Service", "redis") else 0
            ),
            ["test_namespaces"],
            "Service/redis: metadata.namespace is 'default'*expected the application's own "
            "namespace*[rule namespaces]*",
        ),
        (
            lambda o: (
                o["spec"].update(strategy={"type": "Recreate"})
                if _is(o, "Deployment", "auth-service")
                else 0
            ),
            ["test_rolling_updates"],
            "Deployment/auth-service: spec.strategy.type is Recreate*expected RollingUpdate*",
        ),
        (
            lambda o: (
                o["spec"].update(strategy={"rollingUpdate": {"maxUnavailable": "100%"}})
                if _is(o, "Deployment", "gateway")
                else 0
            ),
            ["test_rolling_updates"],
            "Deployment/gateway: spec.strategy.rollingUpdate.maxUnavailable 100% lets a rollout "
            "take all 3 replica(s) out of service; expected at most 2*",
        ),
        (
            lambda o: (
                o["spec"]["scaleTargetRef"].update(name="nothing")
                if _is(o, "HorizontalPodAutoscaler", "auth-service-hpa")
                else 0
            ),
            [
                "test_critical_services_autoscale",
                "test_guide_figures[autoscaling]",
                "test_hpa_targets",
            ],
            "Deployment/auth-service: no HorizontalPodAutoscaler has it as scaleTargetRef; "
            "expected an HPA*",
        ),
        (
            lambda o: (
                o["spec"]["template"]["metadata"].update(
                    annotations={"prometheus.io/scrape": "true", "prometheus.io/port": "9100"}
                )
                if _is(o, "Deployment", "agent-runtime")
                else 0
            ),
            ["test_monitoring_hooks"],
            "Deployment/agent-runtime: spec.template.metadata.annotations[prometheus.io/port] "
            "is '9100'; expected one of the pod's containerPorts [8001]*",
        ),
        (
            lambda o: (
                _main(o)["readinessProbe"]["httpGet"].update(path="/ready")
                if _is(o, "Deployment", "agent-runtime")
                else 0
            ),
            ["test_guide_figures[probes]"],
            "Deployment/agent-runtime container agent-runtime readinessProbe.path: expected "
            "/health (expect.probes.agent-runtime.readinessProbe.path), found /ready*",
        ),
        (
            lambda o: (
                o["spec"]["ports"][0].update(port=80) if _is(o, "Service", "auth-service") else 0
            ),
            ["test_guide_figures[services]", "test_references"],
            "Service/auth-service spec.ports (port->targetPort): expected 8003->8003 "
            "(expect.services.auth-service.ports), found 80->8003*",
        ),
    ],
    ids=["namespace", "recreate", "max-unavailable", "no-hpa", "monitoring", "probe", "port"],
)
def test_each_broken_practice_or_figure_fails(
    pytester: pytest.Pytester, fault: Fault, failed: list[str], line: str
) -> None:
    result = run_static(pytester, f"--codelab-manifests={faulty_manifests(pytester, fault)}")
    assert failed_tests(result) == failed
    assert_says(result, *line.split("*"))


def test_values_are_rendered_over_the_manifests(pytester: pytest.Pytester) -> None:
    """The Helm path: a values file fills in the limits it states, and its figures are
    what the guide comparison judges."""
    manifests = faulty_manifests(pytester, no_gateway_limits)
    values = pytester.path / "values.yaml"
    values.write_text(
        "gateway:\n  resources:\n    limits:\n      cpu: 1000m\n      memory: 1Gi\n"
        "  autoscaling:\n    enabled: true\n    maxReplicas: 12\n"
    )
    result = run_static(pytester, f"--codelab-manifests={manifests}", f"--codelab-values={values}")
    assert failed_tests(result) == ["test_guide_figures[autoscaling]"]
    assert_says(
        result,
        "HorizontalPodAutoscaler/gateway-hpa spec.maxReplicas: expected 10 "
        "(gateway.autoscaling.maxReplicas), found 12",
    )


def test_the_operators_expectation_replaces_the_guides(pytester: pytest.Pytester) -> None:
    manifests = faulty_manifests(pytester, gateway_hpa_max_8)
    expect = pytester.path / "expect.yaml"
    expect.write_text("gateway:\n  autoscaling:\n    enabled: true\n    maxReplicas: 8\n")
    result = run_static(pytester, f"--codelab-manifests={manifests}", f"--codelab-expect={expect}")
    assert failed_tests(result) == []
    assert result.ret == 0
    result = run_static(pytester, f"--codelab-expect={expect}")
    assert failed_tests(result) == ["test_guide_figures[autoscaling]"]
    assert_says(
        result,
        f"1 figure(s) of HPA bounds, metrics and targets differ from expected-values file "
        f"{expect}:\n"
        "HorizontalPodAutoscaler/gateway-hpa spec.maxReplicas: expected 8 "
        "(gateway.autoscaling.maxReplicas), found 10",
    )


def test_a_bad_expected_values_file_is_one_usage_line(pytester: pytest.Pytester) -> None:
    expect = pytester.path / "expect.yaml"
    expect.write_text("expect:\n  probe: {}\n")
    result = run_static(pytester, f"--codelab-expect={expect}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [f"ERROR: expected-values file {expect}: unknown key expect.probe (did you mean probes?)"]
    )
    missing = run_static(pytester, f"--codelab-expect={pytester.path / 'nope.yaml'}")
    assert missing.ret == pytest.ExitCode.USAGE_ERROR
    missing.stderr.fnmatch_lines(
        ["ERROR: --codelab-expect: expected-values file not found: *nope.yaml (from command line)"]
    )


def test_without_a_fit_the_header_says_so(pytester: pytest.Pytester) -> None:
    result = run_static(pytester, "--codelab-profile=prod", "--collect-only")
    assert_says(result, "codelab: fit: none (profile prod: the stack is deployed as rendered)")
