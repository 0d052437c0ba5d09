"""Waits that say what they saw, deadlines that scale, and rollout judgments like kubectl's."""

from __future__ import annotations

import itertools

import pytest
from kubernetes import client

from pytest_codelab.errors import (
    WaitTimeout,
)
from pytest_codelab.k8s.waiting import (
    Timeouts,
    deployment_status,
    hold_for,
    statefulset_status,
    try_until,
    wait_until,
)

# ----------------------------------------------------------------- kubeconfig reading


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


def test_timeouts_carry_their_scale_for_a_callers_own_deadline() -> None:
    """One value for time: a suite's own figure scales like every kind of operation, and a
    second scaling multiplies the first."""
    timeouts = Timeouts().scaled(3.0)
    assert timeouts.factor == 3.0 and Timeouts().factor == 1.0
    assert timeouts.scale(60) == 180 and Timeouts().scale(60) == 60
    assert timeouts.scaled(2.0).factor == 6.0
    assert timeouts.scaled(2.0).scale_out == 6 * Timeouts().scale_out


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
