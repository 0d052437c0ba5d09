"""The expectation: the guide's figures (values-prod.yaml + expected/guide.yaml) or the
operator's file, every figure with the key that states it; one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pytest_codelab.deploy.expected import (
    Expectation,
    Figure,
    FigureId,
    guide_section,
    load_expectation,
)
from pytest_codelab.deploy.valueschema import ValuesError
from pytest_codelab.resources import bundled_path


@pytest.fixture(scope="module")
def guide() -> Expectation:
    return load_expectation(None)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "expect.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_default_is_the_guide(guide: Expectation) -> None:
    assert guide.source == "the guide (profile prod + expected/guide.yaml)"
    hpa = guide.hpa("gateway")
    assert hpa is not None and hpa.name == "gateway-hpa"
    assert hpa.min_replicas == Figure(3, "gateway.autoscaling.minReplicas")
    assert hpa.max_replicas == Figure(10, "gateway.autoscaling.maxReplicas")
    assert hpa.targets == {
        "cpu": Figure(70, "gateway.autoscaling.targetCPUUtilizationPercentage"),
        "memory": Figure(80, "gateway.autoscaling.targetMemoryUtilizationPercentage"),
    }
    agent = guide.hpa("agent-runtime")
    assert agent is not None and agent.max_replicas == Figure(
        20, "agentRuntime.autoscaling.maxReplicas"
    )
    # values-prod.yaml names no memory target; the guide's HPA manifest does, with a reason.
    memory = agent.targets["memory"]
    assert (memory.value, memory.key) == (80, "expect.autoscaling.agent-runtime.targets.memory")
    assert "values-prod.yaml names no memory target" in memory.deviation
    auth = guide.hpa("auth-service")
    assert auth is not None and set(auth.targets) == {"cpu"}
    assert guide.hpa("llm-proxy") is None
    assert guide.ingress_annotations() == {
        "cert-manager.io/cluster-issuer": Figure(
            "letsencrypt-prod", "ingress.annotations.cert-manager.io/cluster-issuer"
        ),
        "nginx.ingress.kubernetes.io/proxy-body-size": Figure(
            "50m", "ingress.annotations.nginx.ingress.kubernetes.io/proxy-body-size"
        ),
        "nginx.ingress.kubernetes.io/proxy-read-timeout": Figure(
            "600", "ingress.annotations.nginx.ingress.kubernetes.io/proxy-read-timeout"
        ),
    }


def test_the_guide_figures_of_the_manual_install(guide: Expectation) -> None:
    figures = guide.figures
    probe = FigureId(
        "probes", "Deployment", "agent-runtime", "agent-runtime", "readinessProbe.path"
    )
    assert figures[probe] == Figure(
        "/health",
        "expect.probes.agent-runtime.readinessProbe.path",
        figures[probe].deviation,
    )
    ports = FigureId("services", "Service", "postgres", "", "ports")
    assert figures[ports].value == ((5432, 5432),)
    assert figures[FigureId("services", "Service", "postgres", "", "headless")].value is True
    paths = figures[FigureId("ingress", "Ingress", "codelab-ingress", "", "paths")].value
    assert paths == (
        ("/api/v1", "Prefix", "gateway", 8000),
        ("/oauth", "Prefix", "auth-service", 8003),
    )
    modes = FigureId("volumes", "StatefulSet", "postgres", "postgres-data", "accessModes")
    assert figures[modes].value == ("ReadWriteOnce",)
    size = figures[FigureId("volumes", "StatefulSet", "postgres", "postgres-data", "size")]
    assert size == Figure("50Gi", "postgresql.primary.persistence.size")
    vpa = FigureId("vpa", "VerticalPodAutoscaler", "agent-runtime-vpa", "", "updateMode")
    assert figures[vpa].value == "Auto"
    ref = FigureId("secrets", "Deployment", "gateway", "gateway", "env.INTERNAL_API_KEY")
    assert figures[ref] == Figure("api-keys/internal-api-key", "gateway.secrets.INTERNAL_API_KEY")
    image = FigureId("images", "Deployment", "llm-proxy", "llm-proxy", "repository")
    assert figures[image] == Figure("ghcr.io/berriai/litellm", "llmProxy.image.repository")


def test_every_guide_entry_cites_the_guide() -> None:
    raw = yaml.safe_load((bundled_path("expected") / "guide.yaml").read_text("utf-8"))
    entries = [
        (area, name, e) for area, group in raw["expect"].items() for name, e in group.items()
    ]
    assert len(entries) >= 20
    for area, name, entry in entries:
        assert entry.get("guide"), f"expect.{area}.{name} cites no section of the guide"
    assert guide_section() == raw["expect"]


def test_values_win_over_the_expect_section(tmp_path: Path) -> None:
    f = write(
        tmp_path,
        "agentRuntime:\n  env:\n    - name: DATABASE_URL\n      valueFrom:\n"
        "        secretKeyRef: {name: db, key: url}\n",
    )
    figure = load_expectation(f).figures[
        FigureId("secrets", "Deployment", "agent-runtime", "agent-runtime", "env.DATABASE_URL")
    ]
    assert figure == Figure("db/url", "agentRuntime.env.DATABASE_URL")


def test_an_operator_file_replaces_the_values_and_merges_its_expect(tmp_path: Path) -> None:
    f = write(
        tmp_path,
        "gateway:\n  autoscaling:\n    enabled: true\n    minReplicas: 4\n    maxReplicas: 12\n"
        "expect:\n"
        "  probes:\n    gateway:\n      readinessProbe: {path: /ready}\n"
        "  vpas: null\n",
    )
    own = load_expectation(f)
    assert own.source == f"expected-values file {f}"
    hpa = own.hpa("gateway")
    assert hpa is not None and hpa.max_replicas == Figure(12, "gateway.autoscaling.maxReplicas")
    assert hpa.targets == {}  # the file states no target: none is compared
    # Only what the file states: no figure of values-prod.yaml is left.
    assert own.hpa("auth-service") is None and own.area("resources") == {}
    probes = own.area("probes")
    path = FigureId("probes", "Deployment", "gateway", "gateway", "readinessProbe.path")
    assert probes[path] == Figure(
        "/ready", "expect.probes.gateway.readinessProbe.path", probes[path].deviation
    )
    port = FigureId("probes", "Deployment", "gateway", "gateway", "readinessProbe.port")
    assert probes[port].value == 8000  # the guide's section, merged under the file's
    assert own.area("vpa") == {}  # a null removes the guide's entries


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("expect:\n  probe: {}\n", "unknown key expect.probe (did you mean probes?)"),
        (
            "expect:\n  services:\n    web: {ports: [{port: 80}]}\n",
            "missing key expect.services.web.guide",
        ),
        (
            "expect:\n  secretRefs:\n    web: {guide: x, env: {A: no-key}}\n",
            "expect.secretRefs.web.env.A: expected '<secret>/<key>'",
        ),
        (
            "expect:\n  vpas:\n    v: {guide: x, target: Deployment/a, updateMode: Sometimes}\n",
            "expect.vpas.v.updateMode: expected one of Off, Initial",
        ),
        ("gateway:\n  replicas: 3\n", "unknown key gateway.replicas (did you mean replicaCount?)"),
        ("expect: [1]\n", "expect: expected a mapping"),
    ],
)
def test_a_bad_file_is_one_line_naming_the_key(tmp_path: Path, text: str, problem: str) -> None:
    f = write(tmp_path, text)
    with pytest.raises(ValuesError) as exc:
        load_expectation(f)
    message = str(exc.value)
    assert message.startswith(f"expected-values file {f}: ") and "\n" not in message
    assert problem in message


def test_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ValuesError, match=r"nope\.yaml: file not found"):
        load_expectation(tmp_path / "nope.yaml")


def test_repositories_follow_the_image_registry_override(guide: Expectation) -> None:
    moved = guide.with_registry("mirror.local:5000/lab")
    gateway = FigureId("images", "Deployment", "gateway", "gateway", "repository")
    llm = FigureId("images", "Deployment", "llm-proxy", "llm-proxy", "repository")
    assert moved.figures[gateway] == Figure(
        "mirror.local:5000/lab/gateway", "gateway.image.repository"
    )
    assert moved.figures[llm] == guide.figures[llm]  # not a CodeLab image: not moved
    assert guide.with_registry(None) is guide


def test_the_node_figures_are_checked_like_the_others(tmp_path: Path) -> None:
    """expect.nodes (suites/test_nodes.py): an operator may state their own bounds; a bad one
    is one line naming its key."""
    own = load_expectation(write(tmp_path, "expect:\n  nodes:\n    loss: {maxFailedPercent: 5}\n"))
    share = FigureId("nodes", "Cluster", "loss", "", "maxFailedPercent")
    assert own.figures[share].value == 5
    assert own.figures[share._replace(field="recoverySeconds")].value == 240  # the guide's
    f = write(tmp_path, "expect:\n  nodes:\n    loss: {maxFailedPercent: 150}\n")
    with pytest.raises(ValuesError, match=r"expect\.nodes\.loss\.maxFailedPercent"):
        load_expectation(f)
