"""On a real cluster: the rollout and liveness checks fail, naming the Deployment and what
was seen, when the manifests under test make them unsafe.

One inner gate run (pytest in a subprocess, its own namespace) deploys a copy of the bundled
manifests where every serving Deployment has an unsafe rolling update (maxSurge 0,
maxUnavailable 100%: every old pod stops before a new one is Ready) and agent-runtime's
liveness probe asks /livez, which answers 200 whatever /health says, so a failing /health
can never get the container restarted. Each Deployment's rollout check must fail on failed
requests through the Ingress; the liveness check of agent-runtime must fail for want of a
restart.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

#: The ``inner_gate`` fixture (tests/e2e/conftest.py).
InnerGate = Callable[..., pytest.RunResult]

pytestmark = [pytest.mark.e2e, pytest.mark.cluster, pytest.mark.slow]

#: The serving Deployments and the Ingress path the rollout check sends through each one.
ROLLED = {
    "gateway": "/api/v1/whoami",
    "agent-runtime": "/api/v1/whoami",
    "auth-service": "/oauth/verify",
    "llm-proxy": "/api/v1/sessions",
}


def _unsafe_rolling_update(obj: dict[str, Any]) -> None:
    if obj["kind"] == "Deployment" and obj["metadata"]["name"] in ROLLED:
        obj["spec"]["strategy"] = {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": 0, "maxUnavailable": "100%"},
        }


def _liveness_that_cannot_fail(obj: dict[str, Any]) -> None:
    if obj["kind"] == "Deployment" and obj["metadata"]["name"] == "agent-runtime":
        for container in obj["spec"]["template"]["spec"]["containers"]:
            probe = container.get("livenessProbe") or {}
            if "httpGet" in probe:
                probe["httpGet"]["path"] = "/livez"


SELECTED = [
    *(f"test_rollout.py::test_set_image_history_and_undo_without_downtime[{n}]" for n in ROLLED),
    "test_probes.py::test_failing_liveness_probe_restarts_container[agent-runtime]",
]


def test_rollout_and_liveness_checks_fail_on_unsafe_manifests(
    inner_gate: InnerGate, faulty_manifests: Callable[..., Path]
) -> None:
    manifests = faulty_manifests("unsafe", _unsafe_rolling_update, _liveness_that_cannot_fail)
    result = inner_gate(f"--codelab-manifests={manifests}", tests=SELECTED, timeout=1800)
    result.assert_outcomes(failed=len(SELECTED))
    for name, path in ROLLED.items():
        result.stdout.fnmatch_lines(
            [f"*deployment/{name}: requests {path} (*) failed during *rollout undo*"]
        )
    result.stdout.fnmatch_lines(
        [
            "*WaitTimeout: timed out after * waiting for pod/agent-runtime-* container "
            "agent-runtime restarted by its failing liveness probe*; last seen: restartCount 0 "
            "-> 0*",
        ]
    )
    result.stdout.fnmatch_lines(
        ["FAILED *test_failing_liveness_probe_restarts_container?agent-runtime?*"]
    )
