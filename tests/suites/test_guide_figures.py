"""The live suite (suites/test_guide_figures.py) against a pretend cluster (the fake API
server for the preflight, the live objects given directly): staging drift fails naming the
object, field, expected value with its key and what runs; a gate-deployed stack is judged on
its unfitted intent, and its live objects must equal the fitted render it applied."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_codelab.deploy.fit import apply_fit, fit_for
from pytest_codelab.deploy.manifests import load_manifests, render
from pytest_codelab.k8s import snapshot
from pytest_codelab.resources import bundled_path

if TYPE_CHECKING:
    from conftest import FakeApiServer

Obj = dict[str, Any]
SUITE = bundled_path("suites") / "test_guide_figures.py"
STACK = """
import pytest
from pytest_codelab.k8s.stack import StackInfo

@pytest.fixture(scope="session")
def codelab_stack(codelab_settings):
    return StackInfo({namespace!r}, deployed={deployed}, ingress_url=None,
                     ingress_host={host!r}, objects=tuple({objects!r}))
"""


def find(objects: list[Obj], kind: str, name: str) -> Obj:
    (obj,) = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    return obj


def run_live(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    kubeconfig: Path,
    live: list[Obj],
    *args: str,
    deployed: Obj | None = None,
) -> pytest.RunResult:
    """The live suite (copied under another module name) with ``live`` as what the
    namespace holds; ``deployed`` (namespace, host, objects) makes it a gate-made stack."""
    shutil.copy(SUITE, pytester.path / "test_live_copy.py")
    namespace = deployed["namespace"] if deployed else "staging"
    pytester.makeconftest(
        STACK.format(
            namespace=namespace,
            deployed=deployed is not None,
            host=deployed["host"] if deployed else "codelab.example.com",
            objects=deployed["objects"] if deployed else [],
        )
    )
    served = snapshot.Snapshot(namespace, live, ["autoscaling.k8s.io/v1 VerticalPodAutoscaler"])
    monkeypatch.setattr(snapshot, "read_namespace", lambda *a, **k: served)
    return pytester.runpytest(
        "test_live_copy.py",
        "-p",
        "no:cacheprovider",
        "-rfEs",
        "--codelab-cluster=existing",
        f"--codelab-kubeconfig={kubeconfig}",
        f"--codelab-report-dir={pytester.path / 'report'}",
        *([] if deployed else [f"--codelab-namespace={namespace}"]),
        *args,
    )


def failed(result: pytest.RunResult) -> list[str]:
    return sorted(
        line.split("::", 1)[1].split(" ")[0]
        for line in result.stdout.lines
        if line.startswith("FAILED ")
    )


def says(result: pytest.RunResult, *texts: str) -> None:
    out = result.stdout.str()
    assert not [t for t in texts if t not in out], out


@pytest.fixture
def kubeconfig(pytester: pytest.Pytester, fake_apiserver: FakeApiServer) -> Path:
    path: Path = fake_apiserver.kubeconfig(pytester.path / "kc")
    return path


@pytest.fixture
def intent() -> list[Obj]:
    return render(load_manifests(bundled_path("manifests")), namespace="staging", values=None)


def test_staging_drift_fails_naming_the_figure(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    kubeconfig: Path,
    intent: list[Obj],
) -> None:
    live = copy.deepcopy(intent)
    live.remove(find(live, "VerticalPodAutoscaler", "agent-runtime-vpa"))  # not served
    find(live, "HorizontalPodAutoscaler", "gateway-hpa")["spec"]["maxReplicas"] = 8
    find(live, "Deployment", "gateway")["spec"]["replicas"] = 7  # the HPA's: within 3..10
    result = run_live(pytester, monkeypatch, kubeconfig, live)
    assert failed(result) == [
        "test_deployment_has_the_guide_figures[autoscaling]",
        "test_deployment_has_the_guide_figures[vpa]",
    ]
    says(
        result,
        "1 live figure(s) in staging drift from the guide (profile prod + expected/guide.yaml):\n"
        "HorizontalPodAutoscaler/gateway-hpa spec.maxReplicas: expected 10 "
        "(gateway.autoscaling.maxReplicas), found 8",
        "VerticalPodAutoscaler/agent-runtime-vpa (the object): expected present "
        "(expect.vpas.agent-runtime-vpa.target), found absent\n"
        "not served by this cluster (so absent): autoscaling.k8s.io/v1 VerticalPodAutoscaler",
        "staging was not deployed by the gate: there is no applied render to compare with",
    )
    result.assert_outcomes(failed=2, passed=8, skipped=10)


def _deployed() -> tuple[list[Obj], Obj]:
    fit = fit_for("small")
    assert fit is not None
    ns, host = "codelab-abc123-main", "codelab-abc123-main.codelab.example.com"
    rendered = render(
        load_manifests(bundled_path("manifests")),
        namespace=ns,
        values=None,
        ingress_host=host,
        ingress_class="nginx",
    )
    fitted, _ = apply_fit(rendered, fit)
    return fitted, {"namespace": ns, "host": host, "objects": fitted}


def test_a_deployed_stack_is_judged_unfitted_and_must_run_as_applied(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    kubeconfig: Path,
) -> None:
    fitted, deployed = _deployed()
    live = copy.deepcopy(fitted)
    live.remove(find(live, "VerticalPodAutoscaler", "agent-runtime-vpa"))  # not served
    c = find(live, "Deployment", "agent-runtime")["spec"]["template"]["spec"]["containers"][0]
    c["resources"]["limits"]["memory"] = "2Gi"
    result = run_live(pytester, monkeypatch, kubeconfig, live, deployed=deployed)
    # The fitted stack's maxReplicas 6 is no mismatch: the intent (10) is what is judged.
    assert failed(result) == ["test_live_objects_are_what_was_applied[resources]"]
    says(
        result,
        "Deployment/agent-runtime container agent-runtime resources.limits.memory: expected "
        "384Mi (the fitted render), found 2Gi",
    )
    result.assert_outcomes(failed=1, passed=19)


def test_a_deployed_stack_of_broken_manifests_fails_on_its_intent(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    kubeconfig: Path,
) -> None:
    manifests = pytester.path / "manifests"
    shutil.copytree(bundled_path("manifests"), manifests, ignore=shutil.ignore_patterns("*.md"))
    hpa = manifests / "50-hpa.yaml"
    hpa.write_text(hpa.read_text().replace("maxReplicas: 10", "maxReplicas: 6"))
    _, deployed = _deployed()
    live: list[Obj] = [o for o in deployed["objects"] if o["kind"] != "VerticalPodAutoscaler"]
    result = run_live(
        pytester,
        monkeypatch,
        kubeconfig,
        live,
        f"--codelab-manifests={manifests}",
        deployed=deployed,
    )
    # Live equals the fitted render (6 either way), yet the operator's intent differs.
    assert failed(result) == ["test_deployment_has_the_guide_figures[autoscaling]"]
    says(
        result,
        "1 figure(s) of the deployed intent differ from the guide (profile prod + "
        "expected/guide.yaml):\nHorizontalPodAutoscaler/gateway-hpa spec.maxReplicas: "
        "expected 10 (gateway.autoscaling.maxReplicas), found 6",
    )
