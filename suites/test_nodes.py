"""Issue 13.4: node failures. The guide asks for at least three worker nodes and promises
fault tolerance and self-healing (*Требования / Кластер*, *Обзор*); this suite shows what
the deployment does when a node goes away.

- **Spread** (read only): the cluster has the guide's workers, and the Ready pods of every
  Deployment expected with more than one replica run on at least two nodes.
- **Data tier** (read only): a StatefulSet the expectation gives one replica (the guide's
  PostgreSQL and Redis) is its tier's single point of failure; the report names it with the
  node and the node-bound volume it depends on, as a finding (a note and test properties).
- **Drain** (disruptive): the worker hosting the most serving pods (one without a data-tier
  pod when there is one) is cordoned and every pod of the namespace on it evicted through
  the Eviction API (a refusal by a PodDisruptionBudget, HTTP 429, is retried as ``kubectl
  drain`` does, until a deadline), while requests flow through the Ingress on paths that
  pass through every serving Deployment (``scenarios.rollout.THROUGH``): no request may
  fail, no budget may fall below its desiredHealthy, the drain must complete. The node is
  uncordoned afterwards, whatever happened.
- **Loss** (disruptive, needs a provider that can lose a node: the local cluster): the same
  choice of worker, stopped as a power cut would (kubelet, container runtime and the pods'
  processes gone, the node NotReady), under the same traffic. The stack must be Ready again
  on the other nodes within ``expect.nodes.loss.recoverySeconds``; no request may fail once
  the lost node's pods left the endpoints (NotReady plus a propagation slack), and the
  failed share over the whole recovery stays within ``expect.nodes.loss.maxFailedPercent``.
  The times (NotReady, recovered) go to the report. The node is started again afterwards.

Node failures touch the whole cluster, not only the namespace under test: run this suite
alone, or without xdist, on a cluster shared with other tests.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pytest
from kubernetes import client

from pytest_codelab.clients.ingress import IngressClient
from pytest_codelab.clients.traffic import TrafficReport
from pytest_codelab.deploy.expected import Expectation, Figure
from pytest_codelab.deploy.fit import Fit
from pytest_codelab.k8s.stack import StackInfo, wait_ready
from pytest_codelab.k8s.waiting import Timeouts
from pytest_codelab.providers.base import NodeControl
from pytest_codelab.run import RUN_KEY
from pytest_codelab.scenarios import nodes
from pytest_codelab.scenarios.nodes import Count

#: Longest a Traffic stream may run (its own hard bound).
TRAFFIC_SECONDS = 900.0
#: Base seconds past the recovery bound that a loss is still followed, so that a slow
#: recovery is measured (and reported) rather than only said to be late: Kubernetes'
#: default toleration of a lost node.
DEFAULT_TOLERATION = 300.0
#: Requests that must be answered after the recovery before the traffic stops.
SETTLED_REQUESTS = 20


# ----------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def deployment_replicas(
    codelab_expected: Expectation, codelab_fit: Fit | None, codelab_stack: StackInfo
) -> dict[str, Count]:
    """The Deployments' expected replica counts, fitted like the stack the gate deployed."""
    found = nodes.expected_replicas(
        codelab_expected, codelab_fit if codelab_stack.deployed else None, "Deployment"
    )
    if not found:
        pytest.fail(f"{codelab_expected.source} states no Deployment replicas", pytrace=False)
    return found


@pytest.fixture(scope="module")
def statefulset_replicas(
    codelab_expected: Expectation, codelab_fit: Fit | None, codelab_stack: StackInfo
) -> dict[str, Count]:
    """The StatefulSets' expected replica counts (the guide's: ``expect.replicas``)."""
    return nodes.expected_replicas(
        codelab_expected, codelab_fit if codelab_stack.deployed else None, "StatefulSet"
    )


@pytest.fixture
def settled(
    codelab_stack: StackInfo, k8s_client: client.ApiClient, codelab_timeouts: Timeouts
) -> Iterator[StackInfo]:
    """The stack Ready before the test and again after it (a disruption healed)."""
    wait_ready(k8s_client, codelab_stack.namespace, timeout=codelab_timeouts.deploy)
    yield codelab_stack
    wait_ready(k8s_client, codelab_stack.namespace, timeout=codelab_timeouts.deploy)


@pytest.fixture
def serving_target(ingress_target: IngressClient, api_token: str) -> IngressClient:
    """The Ingress client with a bearer token: every THROUGH path answers with it."""
    return ingress_target.with_token(api_token)


def figure(expected: Expectation, entry: str, name: str) -> Figure:
    found = nodes.nodes_figure(expected, entry, name)
    if found is None:
        pytest.fail(
            f"{expected.source} states no expect.nodes.{entry}.{name}: nothing to judge by",
            pytrace=False,
        )
    return found


def record(
    request: pytest.FixtureRequest, what: str, figures: Mapping[str, Any], note: str = ""
) -> None:
    """One ``codelab_<what>_<figure>`` test property per figure plus the whole as JSON (they
    travel with xdist and land in JUnit XML), and one line in the run's notes (``note``, else
    the figures)."""
    props = request.node.user_properties
    for key, value in figures.items():
        if value is not None:
            props.append((f"codelab_{what}_{key}", value))
    props.append((f"codelab_{what}", json.dumps(dict(figures), sort_keys=True, default=str)))
    run = request.config.stash.get(RUN_KEY, None)
    if run is not None:
        listed = ", ".join(f"{k} {v}" for k, v in figures.items())
        run.note(note or f"{what.replace('_', ' ')}: {listed}")


def target_worker(
    apps: client.AppsV1Api, core: client.CoreV1Api, namespace: str
) -> tuple[str, list[str]]:
    """The worker to drain or lose, and every usable worker; fails when there is no choice."""
    places = nodes.placements(apps, core, namespace)
    workers = [n.name for n in nodes.read_nodes(core) if n.usable_worker]
    node = nodes.choose_worker(places, workers)
    if node is None or len(workers) < 2:
        pytest.fail(
            f"a node failure needs a worker hosting serving pods and another to move them to; "
            f"usable workers: {workers or 'none'}; Ready pods by node: {nodes.by_node(places)}",
            pytrace=False,
        )
    return node, workers


def _seconds(value: float | None) -> str:
    return "never" if value is None else f"{value:.0f}s"


def traffic_lines(reports: Sequence[TrafficReport]) -> str:
    return "\n".join(r.describe() for r in reports)


# ----------------------------------------------------------------- spread and data tier


@pytest.mark.requirement(
    "5.5/workers: the cluster has at least the guide's worker nodes, Ready and schedulable"
)
def test_cluster_has_the_guides_workers(
    core_v1: client.CoreV1Api, codelab_expected: Expectation, settled: StackInfo
) -> None:
    """Ready, schedulable nodes that are not the control plane: at least
    ``expect.nodes.workers.count`` (the guide: at least 3 worker nodes)."""
    wanted = figure(codelab_expected, "workers", "count")
    seen = nodes.read_nodes(core_v1)
    workers = [n.name for n in seen if n.usable_worker]
    described = ", ".join(
        f"{n.name} ({'control plane' if n.control_plane else 'worker'}"
        f"{'' if n.ready else ', NotReady'}{'' if n.schedulable else ', cordoned'}"
        f"{', zone ' + n.zone if n.zone else ''})"
        for n in seen
    )
    assert len(workers) >= wanted.value, (
        f"{len(workers)} usable worker node(s), expected at least {wanted.value} "
        f"({wanted.key}); nodes: {described}"
    )


@pytest.mark.requirement(
    "5.5/spread: the Ready pods of every Deployment expected with more than one replica run "
    "on at least two nodes"
)
def test_multi_replica_deployments_span_two_nodes(
    apps_v1: client.AppsV1Api,
    core_v1: client.CoreV1Api,
    settled: StackInfo,
    deployment_replicas: dict[str, Count],
) -> None:
    """A Deployment whose replicas share one node is lost with it, whatever its count."""
    places = nodes.placements(apps_v1, core_v1, settled.namespace)
    problems = nodes.spread_problems(places, deployment_replicas)
    assert not problems, "\n".join(problems)


@pytest.mark.requirement(
    "5.5/data-tier: each single-replica StatefulSet is reported as its tier's single point of "
    "failure, with the guide's figure and the node it depends on"
)
def test_single_replica_statefulsets_are_reported(
    request: pytest.FixtureRequest,
    apps_v1: client.AppsV1Api,
    core_v1: client.CoreV1Api,
    settled: StackInfo,
    statefulset_replicas: dict[str, Count],
) -> None:
    """The guide runs PostgreSQL and Redis as one replica each (``expect.replicas``): losing
    the node of either stops that tier until the node returns, more so when its volume is
    bound to the node. Not a failure of the deployment (it is the guide's design) but never a
    silent pass: each one is a finding in the report, with the figure and the node."""
    places = nodes.placements(apps_v1, core_v1, settled.namespace)
    singles = nodes.single_points(places, statefulset_replicas)
    expected = sorted(n for n, c in statefulset_replicas.items() if c.value == 1)
    missing = [n for n in expected if n not in singles]
    assert not missing, (
        f"single-replica StatefulSets of the expectation without a live pod: {missing}; "
        f"Ready pods by node: {nodes.by_node(places)}"
    )
    for name in expected:
        place = singles[name]
        volumes = nodes.volume_nodes(core_v1, settled.namespace, place.pod)
        bound = "; ".join(
            f"volume claim {c} bound to {', '.join(n) if n else 'no node'}"
            for c, n in volumes.items()
        )
        count = statefulset_replicas[name]
        record(
            request,
            f"single_point_{name.replace('-', '_')}",
            {"replicas": count.value, "pod": place.pod, "node": place.node, "volumes": bound},
            note=f"finding: statefulset/{name} is the data tier's single point of failure: "
            f"{count.value} replica ({count.key}), pod {place.pod} on node {place.node}"
            f"{'; ' + bound if bound else ''}: losing that node stops it until the node "
            "returns",
        )


# ----------------------------------------------------------------- drain


@pytest.mark.disruptive
@pytest.mark.slow
@pytest.mark.requirement(
    "5.5/drain: draining a worker under traffic through the Ingress loses no request and "
    "keeps every PodDisruptionBudget"
)
def test_draining_a_worker_keeps_budgets_and_loses_no_request(
    request: pytest.FixtureRequest,
    apps_v1: client.AppsV1Api,
    core_v1: client.CoreV1Api,
    k8s_client: client.ApiClient,
    settled: StackInfo,
    serving_target: IngressClient,
    codelab_timeouts: Timeouts,
) -> None:
    """Cordon the worker hosting the most serving pods, evict every pod of the namespace on
    it (budget refusals retried until the deadline), wait for the stack to be Ready on the
    other nodes; requests flow through the Ingress all along. Uncordoned afterwards."""
    ns = settled.namespace
    node, _ = target_worker(apps_v1, core_v1, ns)
    streams = nodes.serving_traffic(serving_target, TRAFFIC_SECONDS)
    policy = client.PolicyV1Api(k8s_client)
    started = time.monotonic()
    emptied: tuple[bool, str] = (False, "drain did not complete")
    try:
        with (
            nodes.BudgetWatch(policy, ns) as watch,
            nodes.all_running(streams, timeout=codelab_timeouts.http),
        ):
            nodes.cordon(core_v1, node, True)
            evictions = nodes.evict_all(core_v1, ns, node, timeout=codelab_timeouts.rollout)
            if all(e.evicted_after is not None for e in evictions):
                emptied = nodes.wait_node_empty(core_v1, ns, node, timeout=codelab_timeouts.delete)
                wait_ready(k8s_client, ns, timeout=codelab_timeouts.deploy)
    finally:
        nodes.cordon(core_v1, node, False)
    reports = [s.report() for s in streams]
    failed, total = nodes.failed_share(reports)
    record(
        request,
        "node_drain",
        {
            "node": node,
            "pods_evicted": sum(e.evicted_after is not None for e in evictions),
            "refusals": sum(e.refusals for e in evictions),
            "seconds": round(time.monotonic() - started, 1),
            "requests": total,
            "failed": failed,
            "budgets": ",".join(sorted(watch.budgets())) or "none",
        },
        note=f"node drain: worker {node}: {sum(e.evicted_after is not None for e in evictions)} "
        f"pods evicted, {sum(e.refusals for e in evictions)} refusals by a budget, "
        f"{failed} of {total} requests failed, budgets watched: "
        f"{', '.join(sorted(watch.budgets())) or 'none'}",
    )
    blocked = [e.describe() for e in evictions if e.evicted_after is None]
    assert not blocked, (
        f"drain of node {node} did not complete within {codelab_timeouts.rollout:g}s: "
        + "; ".join(blocked)
    )
    assert emptied[0], f"drain of node {node}: evicted pods did not leave it: {emptied[1]}"
    broken = watch.violations()
    assert not broken, f"drain of node {node} broke a PodDisruptionBudget: " + "; ".join(
        dict.fromkeys(s.describe() for s in broken)
    )
    assert not failed, (
        f"drain of node {node}: {failed} of {total} requests through the Ingress failed:\n"
        + traffic_lines(reports)
    )


# ----------------------------------------------------------------- loss


@pytest.mark.disruptive
@pytest.mark.slow
@pytest.mark.requirement(
    "5.5/node-loss: a lost worker costs a bounded share of requests and its pods come back "
    "Ready on the other nodes within the bound"
)
def test_a_lost_worker_is_recovered_from(
    request: pytest.FixtureRequest,
    apps_v1: client.AppsV1Api,
    core_v1: client.CoreV1Api,
    codelab_nodes: NodeControl,
    settled: StackInfo,
    serving_target: IngressClient,
    deployment_replicas: dict[str, Count],
    codelab_expected: Expectation,
    codelab_timeouts: Timeouts,
) -> None:
    """Stop the worker hosting the most serving pods under traffic; follow the node to
    NotReady and the stack to Ready on the other nodes; judge the time and the failed
    requests by ``expect.nodes.loss``. The node is started again afterwards."""
    share = figure(codelab_expected, "loss", "maxFailedPercent")
    bound_figure = figure(codelab_expected, "loss", "recoverySeconds")
    bound = codelab_timeouts.scale(bound_figure.value)
    ns = settled.namespace
    nodes.respread(apps_v1, ns, deployment_replicas)
    wait_ready(apps_v1.api_client, ns, timeout=codelab_timeouts.deploy)
    node, _ = target_worker(apps_v1, core_v1, ns)
    tolerations = nodes.loss_tolerations(nodes.pods_on(core_v1, ns, node))
    streams = nodes.serving_traffic(serving_target, TRAFFIC_SECONDS)
    loss = nodes.Loss(node, time.monotonic())
    try:
        with nodes.all_running(streams, timeout=codelab_timeouts.http):
            loss.stopped_at = time.monotonic()
            codelab_nodes.stop_node(node)
            nodes.watch_loss(
                apps_v1,
                core_v1,
                ns,
                loss,
                deployment_replicas,
                timeout=bound + codelab_timeouts.scale(DEFAULT_TOLERATION),
            )
            for stream in streams:
                stream.wait_for(len(stream.results()) + SETTLED_REQUESTS, codelab_timeouts.http)
    finally:
        codelab_nodes.start_node(node)
    reports = [s.report() for s in streams]
    judge_loss(request, loss, reports, bound, bound_figure, share, tolerations, codelab_timeouts)


def judge_loss(
    request: pytest.FixtureRequest,
    loss: nodes.Loss,
    reports: Sequence[TrafficReport],
    bound: float,
    bound_figure: Figure,
    share: Figure,
    tolerations: Mapping[str, str],
    timeouts: Timeouts,
) -> None:
    failed, total = nodes.failed_share(reports)
    percent = round(100.0 * failed / total, 2) if total else 0.0
    record(
        request,
        "node_loss",
        {**loss.figures(), "requests": total, "failed": failed, "failed_percent": percent},
        note=f"node loss: worker {loss.node} stopped: NotReady after "
        f"{_seconds(loss.not_ready_after)}, every Deployment Ready on the other nodes after "
        f"{_seconds(loss.recovered_after)} (bound {bound:.0f}s, {bound_figure.key}); "
        f"{failed} of {total} requests failed ({percent}%)",
    )
    why = "; ".join(f"{pod}: {t}" for pod, t in sorted(tolerations.items()))
    assert loss.recovered_after is not None, (
        f"node {loss.node} lost: the Deployments were not Ready on the other nodes "
        f"{bound + timeouts.scale(DEFAULT_TOLERATION):.0f}s later; last seen: {loss.last_seen}; "
        f"the lost node's pods tolerate its loss: {why}"
    )
    assert loss.recovered_after <= bound, (
        f"node {loss.node} lost: every Deployment Ready on the other nodes only after "
        f"{loss.recovered_after:.0f}s (NotReady after {loss.not_ready_after or 0:.0f}s), "
        f"expected within {bound:.0f}s ({bound_figure.key}); the lost node's pods tolerate "
        f"its loss: {why}"
    )
    if loss.not_ready_after is not None:
        after = loss.stopped_at + loss.not_ready_after + timeouts.scale(nodes.PROPAGATION)
        late = nodes.late_failures(reports, after)
        assert not late, (
            f"node {loss.node} lost: {len(late)} request(s) failed more than "
            f"{timeouts.scale(nodes.PROPAGATION):.0f}s after it was NotReady, when its pods "
            "should have left every endpoint:\n  " + "\n  ".join(late[:10])
        )
    assert percent <= share.value, (
        f"node {loss.node} lost: {failed} of {total} requests failed ({percent}%), expected at "
        f"most {share.value}% ({share.key}):\n" + traffic_lines(reports)
    )
