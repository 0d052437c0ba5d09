"""On a real cluster: pointed with ``--codelab-namespace`` at a CodeLab that already runs,
the suites run their non-disruptive checks and skip the disruptive ones with the reason,
unless ``--codelab-allow-disruptive`` is given; nothing is deployed or deleted.

The deployment under test is the outer run's stack; an inner gate run (pytester, in a
subprocess) is pointed at its namespace as it would be at staging.
"""

from __future__ import annotations

import pytest
from kubernetes import client

from pytest_codelab.cluster import ClusterHandle
from pytest_codelab.resources import bundled_path
from pytest_codelab.stack import StackInfo

pytestmark = [pytest.mark.e2e, pytest.mark.cluster]

SAFE = "test_ingress.py::test_api_path_reaches_gateway"
DISRUPTIVE = "test_probes.py::test_deleted_pod_is_replaced"


def _inner(
    pytester: pytest.Pytester, handle: ClusterHandle, stack: StackInfo, *extra: str
) -> pytest.RunResult:
    suites = bundled_path("suites")
    args = [
        "-p",
        "no:cacheprovider",
        "-rA",
        "--codelab-cluster=existing",
        f"--codelab-kubeconfig={handle.kubeconfig}",
        f"--codelab-namespace={stack.namespace}",
        f"--codelab-report-dir={pytester.path / 'report'}",
        f"--rootdir={suites}",
        *extra,
        str(suites / SAFE),
        f"{suites / DISRUPTIVE}[gateway]",
    ]
    if handle.context:
        args.append(f"--codelab-context={handle.context}")
    if handle.ingress_url:
        args.append(f"--codelab-ingress-url={handle.ingress_url}")
    return pytester.runpytest_subprocess(*args, timeout=600)


def test_existing_namespace_runs_safe_checks_and_skips_disruptive_ones(
    pytester: pytest.Pytester,
    codelab_cluster: ClusterHandle,
    codelab_stack: StackInfo,
    core_v1: client.CoreV1Api,
) -> None:
    before = {p.metadata.name for p in core_v1.list_namespaced_pod(codelab_stack.namespace).items}
    result = _inner(pytester, codelab_cluster, codelab_stack)
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["PASSED *test_api_path_reaches_gateway*"])
    result.stdout.fnmatch_lines(["SKIPPED *--codelab-allow-disruptive*"])
    after = {p.metadata.name for p in core_v1.list_namespaced_pod(codelab_stack.namespace).items}
    assert after == before, "a skipped disruptive test still touched the pods"
    core_v1.read_namespace(codelab_stack.namespace)  # not deleted by the inner run
