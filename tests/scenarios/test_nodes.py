"""Node failures as library code (pytest_codelab.scenarios.nodes): the pure judgements on
placements and traffic, the expected side read from the guide, the drain's retry of refused
evictions (driven through the module's own ``evict``/``pods_on``, faked), and how nodes and
pods are read from API objects."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from pytest_codelab.clients.ingress import IngressClient, Result
from pytest_codelab.clients.traffic import TrafficReport
from pytest_codelab.deploy.expected import load_expectation
from pytest_codelab.deploy.fit import Fit
from pytest_codelab.deploy.values import build_values
from pytest_codelab.scenarios import nodes
from pytest_codelab.scenarios.nodes import BudgetSample, BudgetWatch, Count, Place

W1, W2, W3 = "codelab-w1", "codelab-w2", "codelab-w3"


def place(
    pod: str, owner: str, node: str, *, kind: str = "Deployment", ready: bool = True
) -> Place:
    return Place(pod, kind, owner, node, ready)


SPREAD = [
    place("gateway-a", "gateway", W1),
    place("gateway-b", "gateway", W2),
    place("gateway-c", "gateway", W3),
    place("auth-a", "auth-service", W1),
    place("auth-b", "auth-service", W2),
    place("postgres-0", "postgres", W2, kind="StatefulSet"),
    place("redis-0", "redis", W3, kind="StatefulSet"),
]
REPLICAS = {"gateway": Count(3, "gateway.replicaCount"), "auth-service": Count(2, "a")}


# ----------------------------------------------------------------- expectation


def test_the_guide_states_workers_and_loss_bounds() -> None:
    guide = load_expectation(None)
    workers = nodes.nodes_figure(guide, "workers", "count")
    recovery = nodes.nodes_figure(guide, "loss", "recoverySeconds")
    share = nodes.nodes_figure(guide, "loss", "maxFailedPercent")
    assert workers is not None and workers.value == 3
    assert workers.key == "expect.nodes.workers.count"
    assert recovery is not None and recovery.key == "expect.nodes.loss.recoverySeconds"
    assert share is not None and 0 < share.value < 100
    assert nodes.nodes_figure(guide, "loss", "basis") is None  # text, not a figure


def test_expected_replicas_are_the_guides_and_a_fit_only_lowers_them() -> None:
    guide = load_expectation(None)
    deployments = nodes.expected_replicas(guide, None, "Deployment")
    assert deployments["gateway"] == Count(3, "gateway.replicaCount")
    assert deployments["auth-service"].value == 2
    statefulsets = nodes.expected_replicas(guide, None, "StatefulSet")
    assert statefulsets["postgres"] == Count(1, "expect.replicas.postgres.replicas")
    caps = build_values(
        {"gateway": {"replicaCount": 2}, "authService": {"replicaCount": 5}},
        source="caps",
        partial=True,
    )
    fitted = nodes.expected_replicas(guide, Fit("tiny", caps), "Deployment")
    assert fitted["gateway"].value == 2 and "fit tiny: 2" in fitted["gateway"].key
    assert fitted["auth-service"] == deployments["auth-service"]  # never raised


# ----------------------------------------------------------------- pure judgements


def test_spread_over_nodes_passes() -> None:
    assert nodes.spread_problems(SPREAD, REPLICAS) == []


def test_replicas_on_one_node_are_named() -> None:
    pinned = [place(f"gateway-{i}", "gateway", W1) for i in "abc"] + SPREAD[3:]
    problems = nodes.spread_problems(pinned, REPLICAS)
    assert problems == [
        "deployment/gateway (3 replicas, gateway.replicaCount): its Ready pods run on 1 "
        f"node(s) ({W1}: 3); losing that node loses it"
    ]


def test_unready_pods_do_not_count_as_spread() -> None:
    half = [*SPREAD[:2], place("gateway-c", "gateway", W3, ready=False)]
    half[1] = place("gateway-b", "gateway", W2, ready=False)
    gateway = {"gateway": REPLICAS["gateway"]}
    assert "run on 1 node(s)" in nodes.spread_problems(half, gateway)[0]
    assert "has no Ready pod" in nodes.spread_problems([], gateway)[0]
    assert nodes.spread_problems([], {"single": Count(1, "k")}) == []


def test_single_points_are_one_replica_statefulsets() -> None:
    counts = {"postgres": Count(1, "p"), "redis": Count(3, "r")}
    assert set(nodes.single_points(SPREAD, counts)) == {"postgres"}


def test_the_worker_chosen_hosts_most_serving_pods_and_no_data_pod() -> None:
    # W1: 2 serving, no data pod; W2: 2 serving + postgres; W3: 1 serving + redis.
    assert nodes.choose_worker(SPREAD, [W1, W2, W3]) == W1
    crowded = [*SPREAD, place("gateway-d", "gateway", W2), place("auth-c", "auth-service", W2)]
    assert nodes.choose_worker(crowded, [W1, W2, W3]) == W1  # data pods weigh first
    assert nodes.choose_worker(SPREAD, [W2, W3]) == W2  # no choice without a data pod
    assert nodes.choose_worker(SPREAD, ["empty"]) is None


def test_recovery_needs_the_expected_count_off_the_lost_node() -> None:
    done, seen = nodes.recovery_state(SPREAD, REPLICAS, W1)
    assert not done
    assert (
        seen == f"deployment/auth-service 1/2 Ready off {W1}; deployment/gateway 2/3 Ready off {W1}"
    )
    moved = [*SPREAD, place("gateway-d", "gateway", W2), place("auth-c", "auth-service", W3)]
    assert nodes.recovery_state(moved, REPLICAS, W1) == (
        True,
        "every Deployment Ready on the other nodes",
    )


def result(seq: int, started: float, ok: bool) -> Result:
    return Result(seq, "GET", "/x", started, 1000.0 + started, 0.1, 200 if ok else 502, ok=ok)


def report(*results: Result) -> TrafficReport:
    return TrafficReport("http://t", "/x", tuple(results))


def test_failures_are_counted_and_late_ones_named() -> None:
    a = report(result(1, 10.0, True), result(2, 11.0, False), result(3, 30.0, False))
    b = report(result(1, 12.0, True), result(2, 13.0, True))
    assert nodes.failed_share([a, b]) == (2, 5)
    late = nodes.late_failures([a, b], after=20.0)
    assert len(late) == 1 and late[0].startswith("/x: #3 ")
    assert nodes.late_failures([a, b], after=31.0) == []


# ----------------------------------------------------------------- traffic


def test_serving_traffic_has_one_stream_per_distinct_path() -> None:
    streams = nodes.serving_traffic(IngressClient("http://127.0.0.1:9"), 60)
    paths = sorted((s.method, s.path) for s in streams)
    assert paths == [
        ("GET", "/api/v1/whoami"),
        ("GET", "/oauth/verify"),
        ("POST", "/api/v1/sessions"),
    ]
    assert all(s.max_seconds == 60 for s in streams)


# ----------------------------------------------------------------- drain


def test_a_budget_below_its_desired_count_is_a_violation() -> None:
    watch = BudgetWatch(policy=None, namespace="ns")  # type: ignore[arg-type]
    watch.samples += [
        BudgetSample(1.0, "gateway-pdb", 3, 2, 1),
        BudgetSample(2.0, "gateway-pdb", 2, 2, 0),
        BudgetSample(3.0, "gateway-pdb", 1, 2, 0),
    ]
    assert [s.at for s in watch.violations()] == [3.0]
    assert watch.budgets() == {"gateway-pdb"}
    assert "currentHealthy 1 < desiredHealthy 2" in watch.violations()[0].describe()


def pod(name: str) -> client.V1Pod:
    return client.V1Pod(metadata=client.V1ObjectMeta(name=name))


def fake_evictions(
    monkeypatch: pytest.MonkeyPatch, answers: dict[str, list[str]]
) -> dict[str, int]:
    """``evict`` answers each pod's outcomes in turn (the last one repeats); calls counted."""
    calls = dict.fromkeys(answers, 0)

    def evict(core: Any, namespace: str, name: str) -> tuple[str, str]:
        outcomes = answers[name]
        outcome = outcomes[min(calls[name], len(outcomes) - 1)]
        calls[name] += 1
        return outcome, "Cannot evict pod as it would violate the pod's disruption budget."

    monkeypatch.setattr(nodes, "pods_on", lambda core, ns, node: [pod(n) for n in answers])
    monkeypatch.setattr(nodes, "evict", evict)
    return calls


def test_a_refused_eviction_is_retried_until_it_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = fake_evictions(
        monkeypatch, {"a": ["evicted"], "b": ["refused", "refused", "evicted"], "c": ["gone"]}
    )
    done = nodes.evict_all(None, "ns", W1, timeout=5, pause=0.01)  # type: ignore[arg-type]
    assert all(e.evicted_after is not None for e in done)
    assert calls == {"a": 1, "b": 3, "c": 1}
    assert [e.refusals for e in done] == [0, 2, 0]


def test_an_eviction_refused_until_the_deadline_is_reported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake_evictions(monkeypatch, {"a": ["evicted"], "b": ["refused"]})
    done = {e.pod: e for e in nodes.evict_all(None, "ns", W1, timeout=0.05, pause=0.01)}  # type: ignore[arg-type]
    assert done["a"].evicted_after is not None
    assert done["b"].evicted_after is None and done["b"].refusals >= 2
    assert done["b"].describe().startswith("pod/b not evicted, refused ")
    assert "disruption budget" in done["b"].describe()


# ----------------------------------------------------------------- API objects


def node_object(
    name: str,
    *,
    ready: str = "True",
    unschedulable: bool | None = None,
    labels: dict[str, str] | None = None,
    taints: list[client.V1Taint] | None = None,
) -> client.V1Node:
    return client.V1Node(
        metadata=client.V1ObjectMeta(name=name, labels=labels or {}),
        spec=client.V1NodeSpec(unschedulable=unschedulable, taints=taints),
        status=client.V1NodeStatus(conditions=[client.V1NodeCondition(type="Ready", status=ready)]),
    )


@pytest.mark.parametrize(
    ("make", "usable"),
    [
        (lambda: node_object(W1, labels={nodes.ZONE_LABEL: "zone-a"}), True),
        (lambda: node_object(W1, ready="Unknown"), False),
        (lambda: node_object(W1, unschedulable=True), False),
        (lambda: node_object("cp", labels={"node-role.kubernetes.io/control-plane": ""}), False),
        (
            lambda: node_object(
                "cp",
                taints=[
                    client.V1Taint(key="node-role.kubernetes.io/control-plane", effect="NoSchedule")
                ],
            ),
            False,
        ),
    ],
)
def test_usable_workers(make: Callable[[], client.V1Node], usable: bool) -> None:
    assert nodes.node_view(make()).usable_worker is usable


def test_the_zone_is_read() -> None:
    assert nodes.node_view(node_object(W1, labels={nodes.ZONE_LABEL: "zone-a"})).zone == "zone-a"


def test_loss_tolerations_say_how_long_a_pod_stays_on_a_lost_node() -> None:
    short = client.V1Pod(
        metadata=client.V1ObjectMeta(name="gateway-a"),
        spec=client.V1PodSpec(
            containers=[],
            tolerations=[
                client.V1Toleration(
                    key="node.kubernetes.io/unreachable", effect="NoExecute", toleration_seconds=30
                ),
                client.V1Toleration(key="other", effect="NoExecute", toleration_seconds=1),
            ],
        ),
    )
    bare = client.V1Pod(
        metadata=client.V1ObjectMeta(name="x"), spec=client.V1PodSpec(containers=[])
    )
    assert nodes.loss_tolerations([short, bare]) == {
        "gateway-a": "node.kubernetes.io/unreachable 30s",
        "x": "no toleration: evicted at once",
    }


def test_a_volume_bound_to_a_node_is_read_from_its_affinity() -> None:
    pv = client.V1PersistentVolume(
        spec=client.V1PersistentVolumeSpec(
            node_affinity=client.V1VolumeNodeAffinity(
                required=client.V1NodeSelector(
                    node_selector_terms=[
                        client.V1NodeSelectorTerm(
                            match_expressions=[
                                client.V1NodeSelectorRequirement(
                                    key="kubernetes.io/hostname", operator="In", values=[W2]
                                )
                            ]
                        )
                    ]
                )
            )
        )
    )
    assert nodes._pv_nodes(pv) == [W2]
    assert nodes._pv_nodes(client.V1PersistentVolume(spec=client.V1PersistentVolumeSpec())) == []


def test_a_refusal_names_its_budget() -> None:
    body = (
        '{"kind": "Status", "message": "Cannot evict pod as it would violate the pod\'s '
        'disruption budget.", "details": {"causes": [{"reason": "DisruptionBudget", '
        '"message": "The disruption budget gateway-pdb needs 3 healthy pods and has 3 '
        'currently"}]}}'
    )
    exc = ApiException(status=429, reason="Too Many Requests")
    exc.body = body
    assert nodes._reason(exc) == (
        "Cannot evict pod as it would violate the pod's disruption budget. (The disruption "
        "budget gateway-pdb needs 3 healthy pods and has 3 currently)"
    )
    exc.body = "not json"
    assert nodes._reason(exc) == "Too Many Requests"
