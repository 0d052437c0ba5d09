"""On a real cluster: a stack that cannot become Ready fails within minutes, naming why.

One inner gate run deploys a copy of the bundled manifests with two faults the pods never
recover from: the gateway's readiness probe asks for a path the service does not serve, and
auth-service's container exits at once (a crash loop). The stack must fail on the blocker
window (one minute), naming both workloads, the failed probe and the crash loop, not after
the ten-minute deploy deadline.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pytest_codelab.k8s.waiting import Timeouts

#: The ``inner_gate`` fixture (tests/e2e/conftest.py).
InnerGate = Callable[..., pytest.RunResult]

pytestmark = [pytest.mark.e2e, pytest.mark.cluster, pytest.mark.slow]


def _containers(obj: dict[str, Any], name: str) -> list[dict[str, Any]]:
    if obj["kind"] == "Deployment" and obj["metadata"]["name"] == name:
        return list(obj["spec"]["template"]["spec"]["containers"])
    return []


def _wrong_readiness_path(obj: dict[str, Any]) -> None:
    for container in _containers(obj, "gateway"):
        container["readinessProbe"]["httpGet"]["path"] = "/no-such-health"


def _crash_loop(obj: dict[str, Any]) -> None:
    for container in _containers(obj, "auth-service"):
        container["command"] = ["sh", "-c", "echo 'refusing to start' >&2; exit 3"]


def test_unready_stack_fails_fast_with_the_reason(
    inner_gate: InnerGate, faulty_manifests: Callable[..., Path]
) -> None:
    manifests = faulty_manifests("never-ready", _wrong_readiness_path, _crash_loop)
    started = time.monotonic()
    result = inner_gate(
        f"--codelab-manifests={manifests}", tests=["test_smoke.py::test_smoke_api_requires_a_token"]
    )
    elapsed = time.monotonic() - started
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*cannot become Ready (blocked for 60s or more*",
            "*deployment/auth-service pod/auth-service-*: container auth-service: "
            "CrashLoopBackOff*last exit 3*(for *s)",
        ]
    )
    result.stdout.fnmatch_lines(
        ["*deployment/gateway pod/gateway-*: container gateway: Readiness probe failed:*404*"]
    )
    print(f"stack failed {elapsed:.0f}s after the inner run started")
    # The point of the check: the run did not wait out the deploy deadline.
    assert elapsed < Timeouts().deploy, f"failed only after {elapsed:.0f}s"
