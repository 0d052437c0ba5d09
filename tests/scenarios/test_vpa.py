"""The VPA as the autoscaling suite reads it, without a cluster."""

from __future__ import annotations

from kubernetes import client

from pytest_codelab.deploy.expected import load_expectation
from pytest_codelab.scenarios import vpa


def _vpa(target: dict[str, str], lower: dict[str, str], upper: dict[str, str]) -> dict:
    rec = {"containerName": "c", "target": target, "lowerBound": lower, "upperBound": upper}
    return {"status": {"recommendation": {"containerRecommendations": [rec]}}}


def test_recommendation_and_its_bounds() -> None:
    obj = _vpa(
        {"cpu": "50m", "memory": "300Mi"},
        {"cpu": "25m", "memory": "250Mi"},
        {"cpu": "1", "memory": "1Gi"},
    )
    rec = vpa.recommendation(obj, "c")
    assert rec is not None and rec.outside_bounds() == []
    assert rec.within({"cpu": "100m", "memory": "256Mi"}) == []
    assert rec.within({"cpu": "10m", "memory": "256Mi"}) == ["cpu: request 10m outside [25m, 1]"]
    assert vpa.recommendation(obj, "other") is None
    assert vpa.recommendation(None, "c") is None


def test_a_target_outside_its_bounds_is_named() -> None:
    rec = vpa.recommendation(_vpa({"cpu": "2"}, {"cpu": "25m"}, {"cpu": "1"}), "c")
    assert rec is not None and rec.outside_bounds() == ["cpu: target 2 outside [25m, 1]"]


def test_updated_pods_are_those_the_admission_controller_annotated() -> None:
    def pod(name: str, annotated: bool) -> client.V1Pod:
        return client.V1Pod(
            metadata=client.V1ObjectMeta(
                name=name, annotations={vpa.UPDATED_ANNOTATION: "x"} if annotated else {}
            ),
            spec=client.V1PodSpec(
                containers=[
                    client.V1Container(
                        name="c", resources=client.V1ResourceRequirements(requests={"cpu": "50m"})
                    )
                ]
            ),
        )

    assert vpa.updated_pods([pod("a", True), pod("b", False)]) == {"a": {"cpu": "50m"}}


def test_the_guides_agent_runtime_overlap_is_found_with_its_figures() -> None:
    """The guide: VPA Auto on agent-runtime, its HPA on CPU 70 % and memory 80 %."""
    (overlap,) = vpa.overlaps(load_expectation(None))
    assert overlap.workload == "Deployment/agent-runtime"
    assert overlap.vpa == "agent-runtime-vpa" and overlap.hpa == "agent-runtime-hpa"
    assert overlap.resources == ("cpu", "memory")
    text = overlap.finding()
    assert "updateMode Auto" in text and "cpu averageUtilization 70%" in text
    assert "memory averageUtilization 80%" in text
