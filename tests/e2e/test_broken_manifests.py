"""On a real cluster: the suites fail, naming the object and what was seen, when the
manifests under test (``--codelab-manifests``) break a requirement.

One inner gate run (pytester, in a subprocess) deploys a copy of the bundled manifests with
three faults into its own namespace: auth-service without a readiness probe, the gateway's
HPA unable to scale (maxReplicas == minReplicas) and ``/oauth`` routed to the gateway.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

#: The ``inner_gate`` fixture (tests/e2e/conftest.py).
InnerGate = Callable[..., pytest.RunResult]

pytestmark = [pytest.mark.e2e, pytest.mark.cluster, pytest.mark.slow]


def _no_readiness(obj: dict[str, Any]) -> None:
    if obj["kind"] == "Deployment" and obj["metadata"]["name"] == "auth-service":
        for container in obj["spec"]["template"]["spec"]["containers"]:
            container.pop("readinessProbe", None)


def _stuck_hpa(obj: dict[str, Any]) -> None:
    if obj["kind"] == "HorizontalPodAutoscaler" and obj["metadata"]["name"] == "gateway-hpa":
        obj["spec"]["maxReplicas"] = obj["spec"]["minReplicas"]


def _oauth_to_gateway(obj: dict[str, Any]) -> None:
    if obj["kind"] != "Ingress":
        return
    for rule in obj["spec"]["rules"]:
        for path in rule["http"]["paths"]:
            if path["path"].startswith("/oauth"):
                path["backend"]["service"] = {"name": "gateway", "port": {"number": 8000}}


FAULTS: tuple[Callable[[dict[str, Any]], None], ...] = (
    _no_readiness,
    _stuck_hpa,
    _oauth_to_gateway,
)


SELECTED = (
    "test_probes.py::test_serving_pods_have_passing_probes",
    "test_autoscaling.py::test_every_hpa_can_scale",
    "test_ingress.py::test_oauth_path_reaches_auth_service",
    "test_ingress.py::test_api_path_reaches_gateway",
)


def test_suites_fail_on_broken_manifests(
    inner_gate: InnerGate, faulty_manifests: Callable[..., Path]
) -> None:
    manifests = faulty_manifests("broken", *FAULTS)
    result = inner_gate(f"--codelab-manifests={manifests}", tests=list(SELECTED))
    result.assert_outcomes(failed=3, passed=1)
    for line in (
        "*deployment/auth-service container auth-service: no readiness_probe*",
        "*HPA gateway-hpa*cannot scale gateway: minReplicas 3, maxReplicas 3*",
        "FAILED *test_oauth_path_reaches_auth_service*",
        "PASSED *test_api_path_reaches_gateway*",
    ):
        result.stdout.fnmatch_lines([line])
