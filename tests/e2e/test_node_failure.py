"""On a real cluster: the node-failure checks (suites/test_nodes.py) fail, naming what they
saw, when the manifests under test would not survive a node failure.

- Spread and drain, in one inner gate run reaching the cluster as ``existing`` (the way
  staging is reached): every gateway replica is pinned next to the others by a required pod
  affinity on the host name (all on one node), and every PodDisruptionBudget allows no
  disruption (``maxUnavailable: 0``), so no serving pod can be evicted. The spread check must
  fail naming the gateway's single node; the drain must fail for want of an eviction the
  budgets refused; the node-loss check skips, saying an existing cluster cannot lose a node.

The node-loss check's failing side (pods that keep Kubernetes' default 300 s tolerations
stay bound to a lost worker past the recovery bound) is shown by its unit tests on the
recovery figures (tests/scenarios/test_nodes.py); an inner run on the local cluster that
loses a node costs about ten minutes more and is not part of this file.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

#: The ``inner_gate`` fixture (tests/e2e/conftest.py).
InnerGate = Callable[..., pytest.RunResult]

pytestmark = [pytest.mark.e2e, pytest.mark.cluster, pytest.mark.slow]

SPREAD = "test_nodes.py::test_multi_replica_deployments_span_two_nodes"
DRAIN = "test_nodes.py::test_draining_a_worker_keeps_budgets_and_loses_no_request"
LOSS = "test_nodes.py::test_a_lost_worker_is_recovered_from"


def _gateway_on_one_node(obj: dict[str, Any]) -> None:
    if obj["kind"] == "Deployment" and obj["metadata"]["name"] == "gateway":
        obj["spec"]["template"]["spec"]["affinity"] = {
            "podAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "labelSelector": {"matchLabels": {"app": "gateway"}},
                        "topologyKey": "kubernetes.io/hostname",
                    }
                ]
            }
        }


def _budgets_allow_nothing(obj: dict[str, Any]) -> None:
    if obj["kind"] == "PodDisruptionBudget":
        obj["spec"].pop("minAvailable", None)
        obj["spec"]["maxUnavailable"] = 0


def test_spread_and_drain_checks_fail_on_manifests_that_cannot_lose_a_node(
    inner_gate: InnerGate, faulty_manifests: Callable[..., Path]
) -> None:
    manifests = faulty_manifests("unspread", _gateway_on_one_node, _budgets_allow_nothing)
    result = inner_gate(f"--codelab-manifests={manifests}", tests=[SPREAD, DRAIN, LOSS])
    result.assert_outcomes(failed=2, skipped=1)
    result.stdout.fnmatch_lines(
        [
            "*deployment/gateway (3 replicas, gateway.replicaCount): its Ready pods run on 1 "
            "node(s) (*: 3); losing that node loses it*"
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*drain of node * did not complete within *s: pod/* not evicted, refused * times: "
            "Cannot evict pod as it would violate the pod's disruption budget*"
        ]
    )
    result.stdout.fnmatch_lines(["SKIPPED *cannot lose a node on purpose*"])
