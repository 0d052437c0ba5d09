"""The autoscaling scenario's offline part: HPAs that can never add a pod."""

from __future__ import annotations

from pytest_codelab.scenarios.autoscaling import unscalable


def hpa(name: str, lo: int | None, hi: int) -> dict[str, object]:
    spec: dict[str, object] = {"maxReplicas": hi, "scaleTargetRef": {"name": "web"}}
    if lo is not None:
        spec["minReplicas"] = lo
    return {"kind": "HorizontalPodAutoscaler", "metadata": {"name": name}, "spec": spec}


def test_an_hpa_whose_max_is_not_above_its_min_cannot_scale() -> None:
    found = unscalable([hpa("ok", 1, 3), hpa("stuck", 2, 2), hpa("default-min", None, 1)], "here")
    assert len(found) == 2
    assert found[0].startswith("HPA stuck (no source, here) cannot scale web")
    assert "minReplicas 1, maxReplicas 1" in found[1]
