"""On a real cluster: checks whose expected side is the guide's fail when the deployed objects
differ from it, however the objects themselves are set up.

One inner gate run (pytester, in a subprocess) deploys a copy of the bundled manifests with
three faults: every NetworkPolicy admits everything (an ingress rule ``- {}``), the Ingress's
proxy-body-size is 1m instead of the guide's 50m, and auth-service-hpa cannot scale
(maxReplicas 2 == minReplicas, where the guide says 5, fitted to 4). Each check takes its
expectation from the guide (the architecture graph in manifests/README.md, the expected
annotation, the expected HPA bounds), so each fails; a check that read the live objects
would have found nothing to refuse, a 1m limit to honour and a maximum of 2 to stay under.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

#: The ``inner_gate`` fixture (tests/e2e/conftest.py).
InnerGate = Callable[..., pytest.RunResult]

pytestmark = [pytest.mark.e2e, pytest.mark.cluster, pytest.mark.slow]


def _admit_everything(obj: dict[str, Any]) -> None:
    if obj["kind"] == "NetworkPolicy":
        obj["spec"]["ingress"] = [{}]


def _small_body_limit(obj: dict[str, Any]) -> None:
    if obj["kind"] == "Ingress":
        obj["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-body-size"] = "1m"


def _auth_hpa_stuck_at_two(obj: dict[str, Any]) -> None:
    if obj["kind"] == "HorizontalPodAutoscaler" and obj["metadata"]["name"] == "auth-service-hpa":
        obj["spec"]["minReplicas"] = 2
        obj["spec"]["maxReplicas"] = 2


SELECTED = (
    "test_connectivity.py::test_policies_admit_only_the_guide_paths",
    "test_ingress.py::test_body_size_limit",
    "test_autoscaling.py::test_hpa_scales_out_under_load[auth-service-hpa]",
    "test_autoscaling.py::test_hpa_scales_out_under_load[gateway-hpa]",
)


def test_checks_with_the_guide_as_expected_side_fail_on_drifted_objects(
    inner_gate: InnerGate, faulty_manifests: Callable[..., Path]
) -> None:
    manifests = faulty_manifests(
        "drifted", _admit_everything, _small_body_limit, _auth_hpa_stuck_at_two
    )
    result = inner_gate(f"--codelab-manifests={manifests}", tests=list(SELECTED), timeout=1200)
    result.assert_outcomes(failed=3, passed=1)
    for line in (
        "*forbidden path ingress-controller -> postgres:5432: admitted by a rule of *",
        "*forbidden path gateway -> redis:6379: admitted by a rule of *",
        "*-byte body (limit 52428800) was not passed to the gateway*",
        "*HPA auth-service-hpa did not scale out above the expected minReplicas 2*maxReplicas 2*",
        "FAILED *test_hpa_scales_out_under_load?auth-service-hpa?*",
        "PASSED *test_hpa_scales_out_under_load?gateway-hpa?*",
    ):
        result.stdout.fnmatch_lines([line])
