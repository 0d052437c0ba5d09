"""On a real cluster with the cert-manager and vpa add-ons: the TLS-issuance and VPA checks
fail on deliberately broken manifests.

Two inner gate runs (pytester, in a subprocess), each on a copy of the bundled manifests
with one fault: the Ingress sends cert-manager's HTTP-01 solver to an ingress class no
controller serves (``acme.cert-manager.io/http01-ingress-class``: the challenge can never be
answered, so the Certificate never becomes Ready and the ingress keeps its default
certificate); agent-runtime's VPA in updateMode ``Off`` where the guide says ``Auto`` (no
pod is ever updated, and the VPA/HPA finding refuses a live object that is not the guide's).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from pytest_codelab.fixtures.handles import skip_if_missing_kind

InnerGate = Callable[..., pytest.RunResult]

pytestmark = [pytest.mark.e2e, pytest.mark.cluster, pytest.mark.slow]


def _solver_on_a_dead_class(obj: dict[str, Any]) -> None:
    if obj["kind"] == "Ingress":
        obj["metadata"]["annotations"]["acme.cert-manager.io/http01-ingress-class"] = "nobody"


def _vpa_off(obj: dict[str, Any]) -> None:
    if obj["kind"] == "VerticalPodAutoscaler":
        obj["spec"]["updatePolicy"]["updateMode"] = "Off"


def test_issuance_checks_fail_when_the_challenge_cannot_be_answered(
    inner_gate: InnerGate,
    faulty_manifests: Callable[..., Path],
    k8s_client: client.ApiClient,
) -> None:
    skip_if_missing_kind(k8s_client, "cert-manager.io/v1", "ClusterIssuer")
    manifests = faulty_manifests("dead-solver", _solver_on_a_dead_class)
    result = inner_gate(
        f"--codelab-manifests={manifests}",
        tests=[
            "test_tls.py::test_certificate_is_ready_from_the_annotated_issuer",
            "test_tls.py::test_served_chain_verifies_against_the_issuer_root",
        ],
        timeout=1500,
    )
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "*certificate/codelab-tls in * not Ready within *",
            "*TLS verification of * failed*",
        ],
        consecutive=False,
    )


def test_vpa_checks_fail_when_the_vpa_is_off(
    inner_gate: InnerGate,
    faulty_manifests: Callable[..., Path],
    k8s_client: client.ApiClient,
) -> None:
    skip_if_missing_kind(k8s_client, "autoscaling.k8s.io/v1", "VerticalPodAutoscaler")
    manifests = faulty_manifests("vpa-off", _vpa_off)
    result = inner_gate(
        f"--codelab-manifests={manifests}",
        tests=[
            "test_autoscaling.py::test_vpa_and_hpa_on_the_same_resource_is_a_finding",
            "test_autoscaling.py::test_vpa_auto_mode_recreates_pods_with_the_recommendation",
        ],
        timeout=1500,
    )
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "*agent-runtime-vpa runs updateMode Off, the expectation says Auto*",
            "*no agent-runtime pod was evicted by the VPA updater*",
        ],
        consecutive=False,
    )
