"""One-line errors, waits that say what they saw, and rollout judgments like kubectl's."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from kubernetes import client

from pytest_codelab import kube
from pytest_codelab.errors import (
    AccessDenied,
    ContextError,
    GateError,
    KubeconfigError,
    RolloutFailed,
    StackNotReady,
    WaitTimeout,
)
from pytest_codelab.stack import label_selector
from pytest_codelab.waiting import (
    Timeouts,
    deployment_status,
    hold_for,
    statefulset_status,
    try_until,
    wait_until,
)


def test_gate_errors_are_one_line() -> None:
    err = KubeconfigError("kubeconfig broken:\n  line 3\n\tbad")
    assert str(err) == err.message == "kubeconfig broken: line 3 bad"
    assert isinstance(err, GateError) and isinstance(AccessDenied("x"), GateError)


def test_test_outcome_errors_are_assertions() -> None:
    """Timeouts and unready stacks are test failures, not errors in the test's code."""
    for cls in (WaitTimeout, RolloutFailed, StackNotReady):
        assert issubclass(cls, AssertionError)


# ----------------------------------------------------------------- kubeconfig reading


def test_kubeconfig_problems(tmp_path: Path) -> None:
    with pytest.raises(KubeconfigError, match="kubeconfig not found: .*missing"):
        kube.load_kubeconfig(tmp_path / "missing")
    (tmp_path / "list").write_text("- a\n- b\n", encoding="utf-8")
    with pytest.raises(KubeconfigError, match="has no contexts: not a kubeconfig"):
        kube.load_kubeconfig(tmp_path / "list")
    (tmp_path / "bad").write_text("a: [\nb: c\n", encoding="utf-8")
    with pytest.raises(KubeconfigError, match=r"is not valid YAML \(line \d+\)"):
        kube.load_kubeconfig(tmp_path / "bad")


def test_context_resolution(tmp_path: Path) -> None:
    data = {"contexts": [{"name": "dev"}, {"name": "prod"}], "current-context": "dev"}
    assert kube.resolve_context(data, tmp_path, None) == "dev"
    assert kube.resolve_context(data, tmp_path, "prod") == "prod"
    with pytest.raises(ContextError, match="context 'stage' not found .*; available: dev, prod"):
        kube.resolve_context(data, tmp_path, "stage")
    with pytest.raises(ContextError, match="no current context; pass --codelab-context"):
        kube.resolve_context({"contexts": [{"name": "dev"}]}, tmp_path, None)


def test_access_is_described_for_people() -> None:
    assert str(kube.Access("create", "namespaces")) == "create namespaces"
    assert (
        str(kube.Access("create", "pods", namespace="ns", subresource="exec"))
        == "create pods/exec in namespace ns"
    )
    assert (
        str(kube.Access("list", "deployments", "apps", "ns"))
        == "list deployments.apps in namespace ns"
    )


# ----------------------------------------------------------------- waiting


def test_wait_until_returns_the_final_observation() -> None:
    answers = iter([(False, "0/3 ready"), (False, "2/3 ready"), (True, "3/3 ready")])
    assert wait_until(lambda: next(answers), timeout=5, what="pods", interval=0.01) == "3/3 ready"


def test_wait_timeout_says_what_and_last_seen() -> None:
    counter = itertools.count()

    def probe() -> tuple[bool, str]:
        return False, f"attempt {next(counter)}: pod api-0 ImagePullBackOff"

    with pytest.raises(WaitTimeout) as info:
        wait_until(probe, timeout=0.2, what="deployment/gateway to be Ready", interval=0.05)
    message = str(info.value)
    assert message.startswith(
        "timed out after 0.2s waiting for deployment/gateway to be Ready; last seen: attempt "
    )
    assert message.endswith("pod api-0 ImagePullBackOff")
    assert 2 <= next(counter) <= 8  # polled at the interval, not busily


def test_probe_errors_propagate() -> None:
    def probe() -> tuple[bool, str]:
        raise RuntimeError("API said no")

    with pytest.raises(RuntimeError, match="API said no"):
        wait_until(probe, timeout=1, what="x")


def test_try_until_says_whether_it_was_met_and_what_was_seen_last() -> None:
    answers = iter([(False, "1/3 ready"), (True, "3/3 ready")])
    assert try_until(lambda: next(answers), timeout=5, interval=0.01) == (True, "3/3 ready")
    late = try_until(lambda: (False, "0/3 ready"), timeout=0.05, interval=0.01)
    assert late == (False, "0/3 ready")


def test_hold_for_checks_through_the_window() -> None:
    assert hold_for(lambda: None, window=0.2, interval=0.05) >= 3


def test_hold_for_fails_at_the_first_break_with_what_broke() -> None:
    answers = iter([None, None, "pod/a restarted", None])
    with pytest.raises(AssertionError, match="pod/a restarted"):
        hold_for(lambda: next(answers), window=60, interval=0.01)
    assert next(answers) is None  # stopped at the break, did not wait out the window


def test_timeouts_scale_every_kind() -> None:
    base, doubled = Timeouts(), Timeouts().scaled(2.0)
    assert doubled.deploy == 2 * base.deploy and doubled.exec == 2 * base.exec
    assert Timeouts().scaled(0.5).namespace == base.namespace / 2
    with pytest.raises(ValueError):
        Timeouts().scaled(0)


# ----------------------------------------------------------------- rollout judgments


def deployment(
    *,
    replicas: int = 3,
    generation: int = 2,
    observed: int = 2,
    updated: int = 3,
    total: int = 3,
    available: int = 3,
    progressing_reason: str = "NewReplicaSetAvailable",
) -> client.V1Deployment:
    return client.V1Deployment.from_dict(
        {
            "metadata": {"name": "gateway", "generation": generation},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": "gateway"}},
                "template": {},
            },
            "status": {
                "observedGeneration": observed,
                "replicas": total,
                "updatedReplicas": updated,
                "availableReplicas": available,
                "conditions": [
                    {
                        "type": "Progressing",
                        "status": "False" if "Exceeded" in progressing_reason else "True",
                        "reason": progressing_reason,
                        "message": "ReplicaSet gateway-1 has timed out progressing.",
                    }
                ],
            },
        }
    )


@pytest.mark.parametrize(
    ("kwargs", "ready", "failed", "message"),
    [
        ({}, True, False, "successfully rolled out"),
        ({"observed": 1}, False, False, "waiting for spec update to be observed"),
        ({"updated": 1}, False, False, "1 of 3 new replicas updated"),
        ({"total": 4}, False, False, "1 old replicas pending termination"),
        ({"available": 2}, False, False, "2 of 3 updated replicas available"),
        ({"progressing_reason": "ProgressDeadlineExceeded"}, False, True, "progress deadline"),
    ],
)
def test_deployment_status_like_kubectl(
    kwargs: dict[str, object], ready: bool, failed: bool, message: str
) -> None:
    status = deployment_status(deployment(**kwargs))  # type: ignore[arg-type]
    assert (status.ready, status.failed) == (ready, failed)
    assert status.message.startswith("deployment/gateway: ")
    assert message in status.message


def statefulset(
    *, ready: int = 1, updated: int = 1, observed: int = 1, partition: int | None = None
) -> client.V1StatefulSet:
    rolling = {"partition": partition} if partition is not None else None
    return client.V1StatefulSet.from_dict(
        {
            "metadata": {"name": "postgres", "generation": 1},
            "spec": {
                "replicas": 1,
                "serviceName": "postgres",
                "selector": {"matchLabels": {"app": "postgres"}},
                "template": {},
                "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": rolling},
            },
            "status": {
                "replicas": 1,
                "observedGeneration": observed,
                "readyReplicas": ready,
                "updatedReplicas": updated,
                "currentRevision": "postgres-1",
                "updateRevision": "postgres-1",
            },
        }
    )


def test_statefulset_status_like_kubectl() -> None:
    assert statefulset_status(statefulset()).ready
    assert "spec update" in statefulset_status(statefulset(observed=0)).message
    assert "0 of 1 pods ready" in statefulset_status(statefulset(ready=0)).message
    assert not statefulset_status(statefulset(updated=0, partition=0)).ready
    assert statefulset_status(statefulset(updated=0, partition=1)).ready


def test_label_selector_string() -> None:
    selector = client.V1LabelSelector.from_dict(
        {
            "matchLabels": {"b": "2", "a": "1"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["api", "web"]},
                {"key": "legacy", "operator": "DoesNotExist"},
            ],
        }
    )
    assert label_selector(selector) == "a=1,b=2,tier in (api,web),!legacy"
