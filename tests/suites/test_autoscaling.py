"""The autoscaling suite's expected side (suites/test_autoscaling.py ``expected_bounds``): the
guide's HPA bounds through the fit, never the live HPA's; every HPA of the guide is driven."""

from __future__ import annotations

import importlib.util
from types import ModuleType

import pytest

from pytest_codelab.deploy.expected import load_expectation
from pytest_codelab.deploy.fit import fit_for
from pytest_codelab.report.promises import GUIDE_HPAS
from pytest_codelab.resources import bundled_path


@pytest.fixture(scope="module")
def suite() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "codelab_suite_autoscaling", bundled_path("suites") / "test_autoscaling.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_hpa_of_the_guide_is_driven_by_the_load(suite: ModuleType) -> None:
    assert set(suite.SCALED) == set(GUIDE_HPAS)
    assert "auth=" in suite.LOAD_ENV["CODELAB_LOAD_MIX"]  # auth-service gets CPU work


def test_bounds_are_the_guides_fitted_like_the_deployed_stack(suite: ModuleType) -> None:
    guide = load_expectation(None)
    fitted, missing = suite.expected_bounds(guide, fit_for("small"), sorted(suite.SCALED))
    assert not missing
    assert {h: (b.min, b.max) for h, b in fitted.items()} == {
        "gateway-hpa": (3, 6),
        "agent-runtime-hpa": (3, 6),
        "auth-service-hpa": (2, 4),
    }
    assert "authService.autoscaling.maxReplicas 5" in fitted["auth-service-hpa"].source
    assert {b.cpu_target for b in fitted.values()} == {70}
    staging, _ = suite.expected_bounds(guide, None, sorted(suite.SCALED))
    assert (staging["agent-runtime-hpa"].min, staging["agent-runtime-hpa"].max) == (3, 20)
