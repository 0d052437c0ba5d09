"""Helpers of the e2e tests that run an inner gate session against the cluster under test."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from pytest_codelab.cluster import ClusterHandle
from pytest_codelab.resources import bundled_path

InnerGate = Callable[..., pytest.RunResult]


@pytest.fixture
def inner_gate(pytester: pytest.Pytester, codelab_cluster: ClusterHandle) -> InnerGate:
    """``inner_gate(*args, tests=[...])``: a gate run in a subprocess against the outer run's
    cluster (as ``existing``, the way staging is reached), on bundled suite node ids, with
    its own report folder and the ``-rA`` summary."""
    suites = bundled_path("suites")

    def run(*extra: str, tests: list[str], timeout: float = 900) -> pytest.RunResult:
        args = [
            "-p",
            "no:cacheprovider",
            "-rA",
            "--codelab-cluster=existing",
            f"--codelab-kubeconfig={codelab_cluster.kubeconfig}",
            f"--codelab-report-dir={pytester.path / 'report'}",
            f"--rootdir={suites}",
            *extra,
            *(str(suites / t) for t in tests),
        ]
        if codelab_cluster.context:
            args.append(f"--codelab-context={codelab_cluster.context}")
        if codelab_cluster.ingress_url:
            args.append(f"--codelab-ingress-url={codelab_cluster.ingress_url}")
        return pytester.runpytest_subprocess(*args, timeout=timeout)

    return run
