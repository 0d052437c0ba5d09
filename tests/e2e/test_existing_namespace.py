"""On a real cluster: pointed with ``--codelab-namespace`` at a CodeLab that already runs,
the suites run their non-disruptive checks and skip the disruptive ones with the reason,
unless ``--codelab-allow-disruptive`` is given; nothing is deployed or deleted.

The deployment under test is the outer run's stack; an inner gate run (pytester, in a
subprocess) is pointed at its namespace as it would be at staging.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from kubernetes import client

from pytest_codelab.k8s.stack import StackInfo

#: The ``inner_gate`` fixture (tests/e2e/conftest.py).
InnerGate = Callable[..., pytest.RunResult]

pytestmark = [pytest.mark.e2e, pytest.mark.cluster]

SAFE = "test_ingress.py::test_api_path_reaches_gateway"
DISRUPTIVE = "test_probes.py::test_deleted_pod_is_replaced"


def test_existing_namespace_runs_safe_checks_and_skips_disruptive_ones(
    inner_gate: InnerGate, codelab_stack: StackInfo, core_v1: client.CoreV1Api
) -> None:
    before = {p.metadata.name for p in core_v1.list_namespaced_pod(codelab_stack.namespace).items}
    result = inner_gate(
        f"--codelab-namespace={codelab_stack.namespace}",
        tests=[SAFE, f"{DISRUPTIVE}[gateway]"],
        timeout=600,
    )
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["PASSED *test_api_path_reaches_gateway*"])
    result.stdout.fnmatch_lines(["SKIPPED *--codelab-allow-disruptive*"])
    after = {p.metadata.name for p in core_v1.list_namespaced_pod(codelab_stack.namespace).items}
    assert after == before, "a skipped disruptive test still touched the pods"
    core_v1.read_namespace(codelab_stack.namespace)  # not deleted by the inner run
