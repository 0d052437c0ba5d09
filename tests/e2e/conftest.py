"""Helpers of the e2e tests that run an inner gate session against the cluster under test."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_codelab.k8s import kube
from pytest_codelab.providers.base import ClusterHandle
from pytest_codelab.resources import bundled_path
from pytest_codelab.scenarios.certificates import published_root

InnerGate = Callable[..., pytest.RunResult]
Fault = Callable[[dict[str, Any]], None]


@pytest.fixture
def faulty_manifests(pytester: pytest.Pytester) -> Callable[..., Path]:
    """``faulty_manifests(name, *faults)``: a copy of the bundled manifests in a ``name``
    folder of the test's directory, every object passed through each fault (a function that
    changes, in place, the objects it is about), one file per source file."""

    def make(name: str, *faults: Fault) -> Path:
        dest = pytester.path / name
        dest.mkdir()
        for source in sorted(bundled_path("manifests").glob("*.yaml")):
            docs = [d for d in yaml.safe_load_all(source.read_text()) if d]
            for doc in docs:
                for fault in faults:
                    fault(doc)
            (dest / source.name).write_text(yaml.safe_dump_all(docs, sort_keys=False))
        return dest

    return make


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
        root = _published_root(codelab_cluster)
        if root and not any(a.startswith("--codelab-ca-file") for a in extra):
            # reached as "existing", the inner run trusts the ACME server's root as staging
            # users trust a private issuer's: through --codelab-ca-file
            (pytester.path / "issuer-root.pem").write_text(root)
            args.append(f"--codelab-ca-file={pytester.path / 'issuer-root.pem'}")
        return pytester.runpytest_subprocess(*args, timeout=timeout)

    return run


def _published_root(handle: ClusterHandle) -> str:
    """The root the cluster's ACME test server issues from ("" when it has none)."""
    if handle.issuer_root_proxy is None:
        return ""
    api = kube.new_client(handle.kubeconfig, handle.context)
    return published_root(api, handle.issuer_root_proxy)
