"""Node failures, as library code: where the stack's pods run, a drain through the Eviction
API under watch of the PodDisruptionBudgets, a node loss and the recovery after it.

Why a module of its own: the guide asks for at least three workers, fault tolerance and
self-healing (*Требования*, *Обзор*), which only node failures show: replicas spread over
nodes, a drain that keeps every budget, a lost worker whose pods come back elsewhere. The
suite (``suites/test_nodes.py``) keeps the verdicts; this module observes and acts. What is
expected (the number of workers, replicas, the loss bounds) comes from the expectation
(``expect.nodes`` and the replicas figures), never from the objects under test; the pure
functions here (spread, choice of the worker, recovery, traffic judgement) take both sides
as plain data.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from pytest_codelab.clients import traffic
from pytest_codelab.clients.ingress import IngressClient
from pytest_codelab.clients.traffic import Traffic, TrafficReport
from pytest_codelab.deploy.expected import Expectation, Figure
from pytest_codelab.deploy.fit import Fit
from pytest_codelab.deploy.manifests import BINDINGS
from pytest_codelab.k8s import rollouts
from pytest_codelab.k8s.objects import deleting, meta, name_of
from pytest_codelab.k8s.pods import is_ready
from pytest_codelab.k8s.stack import label_selector
from pytest_codelab.k8s.waiting import try_until
from pytest_codelab.scenarios.rollout import THROUGH

CONTROL_PLANE = ("node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/master")
ZONE_LABEL = "topology.kubernetes.io/zone"
#: The taints a node gets when it stops answering; pods tolerate them for tolerationSeconds.
LOSS_TAINTS = ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")
#: Seconds between two tries of an eviction a budget refused (kubectl drain's pause).
EVICT_RETRY = 5.0
#: Seconds between two looks at the budgets during a drain, and at a lost node's stack.
PDB_SAMPLE = 0.5
LOSS_SAMPLE = 2.0
#: Base seconds after a lost node is NotReady for its pods to leave the Services' endpoints
#: and the ingress controller's routes (scaled like every deadline).
PROPAGATION = 15.0


# --------------------------------------------------------------------------- expectation


@dataclass(frozen=True)
class Count:
    """An expected count and the key that states it."""

    value: int
    key: str


def nodes_figure(expected: Expectation, entry: str, name: str) -> Figure | None:
    """``expect.nodes.<entry>.<name>`` (None: the expectation states none)."""
    for fid, figure in expected.area("nodes").items():
        if (fid.name, fid.field) == (entry, name):
            return figure
    return None


def expected_replicas(expected: Expectation, fit: Fit | None, kind: str) -> dict[str, Count]:
    """Workload name -> its expected replica count (``kind``: Deployment or StatefulSet), as a
    stack deployed with ``fit`` has it: the fit only lowers a count (its cap), never raises."""
    found = {}
    for fid, figure in expected.area("replicas").items():
        if fid.kind != kind:
            continue
        value, key = int(figure.value), figure.key
        cap = _replica_cap(fit, kind, fid.name)
        if cap is not None and cap < value:
            value, key = cap, f"{key} {figure.value}, fit {fit.name if fit else ''}: {cap}"
        found[fid.name] = Count(value, key)
    return found


def _replica_cap(fit: Fit | None, kind: str, name: str) -> int | None:
    if fit is None:
        return None
    binding = next((b for b in BINDINGS if (b.kind, b.name) == (kind, name)), None)
    return fit.caps.workload(binding.values_path).replicas if binding else None


# --------------------------------------------------------------------------- nodes and pods


@dataclass(frozen=True)
class Node:
    """One node as the checks see it."""

    name: str
    ready: bool
    schedulable: bool
    control_plane: bool
    zone: str = ""

    @property
    def usable_worker(self) -> bool:
        """A Ready, schedulable node that is not the control plane."""
        return self.ready and self.schedulable and not self.control_plane


def node_view(node: client.V1Node) -> Node:
    labels = meta(node).labels or {}
    spec = node.spec or client.V1NodeSpec()
    taints = {t.key for t in spec.taints or [] if t.effect in ("NoSchedule", "NoExecute")}
    conditions = node.status.conditions if node.status else None
    ready = any(c.type == "Ready" and c.status == "True" for c in conditions or [])
    control = any(k in labels for k in CONTROL_PLANE) or bool(taints & set(CONTROL_PLANE))
    return Node(
        name_of(node), ready, not spec.unschedulable, control, str(labels.get(ZONE_LABEL, ""))
    )


def read_nodes(core: client.CoreV1Api) -> list[Node]:
    return sorted((node_view(n) for n in core.list_node().items), key=lambda n: n.name)


def node_ready(core: client.CoreV1Api, name: str) -> bool:
    return node_view(core.read_node(name)).ready


@dataclass(frozen=True)
class Place:
    """Where one live pod of a workload runs."""

    pod: str
    kind: str
    owner: str
    node: str
    ready: bool


def placements(apps: client.AppsV1Api, core: client.CoreV1Api, namespace: str) -> list[Place]:
    """Every live (not terminating) pod of the namespace's Deployments and StatefulSets."""
    owners: list[tuple[str, str, str]] = [
        ("Deployment", name_of(d), label_selector(d.spec.selector if d.spec else None))
        for d in apps.list_namespaced_deployment(namespace).items
    ]
    owners += [
        ("StatefulSet", name_of(s), label_selector(s.spec.selector if s.spec else None))
        for s in apps.list_namespaced_stateful_set(namespace).items
    ]
    found = []
    for kind, owner, selector in owners:
        for pod in core.list_namespaced_pod(namespace, label_selector=selector).items:
            if deleting(pod):
                continue
            node = (pod.spec.node_name if pod.spec else None) or ""
            found.append(Place(name_of(pod), kind, owner, node, is_ready(pod)))
    return found


def by_node(places: Iterable[Place]) -> dict[str, list[str]]:
    """Node -> the Ready pods on it, for messages."""
    out: dict[str, list[str]] = {}
    for p in places:
        if p.ready:
            out.setdefault(p.node, []).append(p.pod)
    return {k: sorted(v) for k, v in sorted(out.items())}


# --------------------------------------------------------------------------- pure judgements


def spread_problems(places: Sequence[Place], replicas: Mapping[str, Count]) -> list[str]:
    """Each Deployment expected with more than one replica whose Ready pods do not run on at
    least two nodes: one node's loss would take all of it."""
    problems = []
    for name, count in sorted(replicas.items()):
        if count.value < 2:
            continue
        mine = [p for p in places if (p.kind, p.owner) == ("Deployment", name) and p.ready]
        nodes = Counter(p.node for p in mine)
        what = f"deployment/{name} ({count.value} replicas, {count.key})"
        if not nodes:
            problems.append(f"{what} has no Ready pod")
        elif len(nodes) < 2:
            where = ", ".join(f"{n}: {c}" for n, c in sorted(nodes.items()))
            problems.append(
                f"{what}: its Ready pods run on 1 node(s) ({where}); losing that node loses it"
            )
    return problems


def single_points(places: Sequence[Place], replicas: Mapping[str, Count]) -> dict[str, Place]:
    """StatefulSet name -> its pod, for each expected with one replica: the data tier's
    single points of failure."""
    return {
        p.owner: p
        for p in places
        if p.kind == "StatefulSet" and p.owner in replicas and replicas[p.owner].value == 1
    }


def respread(apps: client.AppsV1Api, namespace: str, names: Iterable[str]) -> None:
    """Restart each Deployment (``kubectl rollout restart``) so that the scheduler places its
    pods again over every usable worker. Kubernetes never moves running pods back after a
    drain or a node's return, so one node-failure check can leave the next a cluster where
    the only workers with serving pods also hold the data tier (seen in CI: a drained worker
    came back empty, and the node lost next was PostgreSQL's)."""
    for name in names:
        rollouts.restart(apps, namespace, name)


def choose_worker(places: Sequence[Place], workers: Sequence[str]) -> str | None:
    """The worker hosting the most Ready serving (Deployment) pods, preferring one without a
    pod of a StatefulSet: losing the data tier's node is a finding of its own, not a test of
    the serving tier. None when no worker hosts a serving pod."""
    serving = Counter(p.node for p in places if p.kind == "Deployment" and p.ready)
    data = {p.node for p in places if p.kind == "StatefulSet"}
    ranked = sorted(
        (w for w in workers if serving[w]),
        key=lambda w: (w in data, -serving[w], w),
    )
    return ranked[0] if ranked else None


def recovery_state(
    places: Sequence[Place], replicas: Mapping[str, Count], lost: str
) -> tuple[bool, str]:
    """Recovered when every expected Deployment has its expected count of Ready pods on
    nodes other than ``lost``; the observation names those still short."""
    short = []
    for name, count in sorted(replicas.items()):
        elsewhere = [
            p
            for p in places
            if (p.kind, p.owner) == ("Deployment", name) and p.ready and p.node != lost
        ]
        if len(elsewhere) < count.value:
            short.append(f"deployment/{name} {len(elsewhere)}/{count.value} Ready off {lost}")
    return not short, "; ".join(short) or "every Deployment Ready on the other nodes"


def failed_share(reports: Sequence[TrafficReport]) -> tuple[int, int]:
    """(failed, total) over every report."""
    return sum(len(r.failures) for r in reports), sum(len(r.results) for r in reports)


def late_failures(reports: Sequence[TrafficReport], after: float) -> list[str]:
    """Failed requests that started at or after ``after`` (monotonic): once the lost node's
    pods left the endpoints, none may fail."""
    return [
        f"{r.path}: {res.describe()}" for r in reports for res in r.failures if res.started >= after
    ]


# --------------------------------------------------------------------------- traffic


def serving_traffic(target: IngressClient, max_seconds: float) -> list[Traffic]:
    """One stream per Ingress request of :data:`~pytest_codelab.scenarios.rollout.THROUGH`
    (each distinct path once): together they pass through every serving Deployment."""
    streams: dict[tuple[str, str], Traffic] = {}
    for through in THROUGH.values():
        key = (through.method, through.path)
        if key not in streams:
            streams[key] = Traffic(
                target,
                through.path,
                method=through.method,
                body=through.body(),
                headers=through.headers,
                interval=through.interval,
                max_requests=traffic.MAX_REQUESTS,
                max_seconds=max_seconds,
            )
    return list(streams.values())


@contextlib.contextmanager
def all_running(streams: Sequence[Traffic], *, timeout: float) -> Iterator[Sequence[Traffic]]:
    """Every stream started (each answered once) for the block; all stopped after it."""
    with contextlib.ExitStack() as stack:
        for stream in streams:
            stack.enter_context(traffic.running(stream, timeout=timeout))
        yield streams


# --------------------------------------------------------------------------- drain


def cordon(core: client.CoreV1Api, node: str, unschedulable: bool) -> None:
    """``kubectl cordon`` (True) / ``uncordon`` (False)."""
    core.patch_node(node, {"spec": {"unschedulable": unschedulable}})


@dataclass(frozen=True)
class BudgetSample:
    """One look at a PodDisruptionBudget's status."""

    at: float
    name: str
    current: int
    desired: int
    allowed: int

    def describe(self) -> str:
        return (
            f"pdb/{self.name}: currentHealthy {self.current} < desiredHealthy {self.desired} "
            f"({self.allowed} disruptions allowed)"
        )


def budget_samples(policy: client.PolicyV1Api, namespace: str) -> list[BudgetSample]:
    now = time.monotonic()
    found = []
    for pdb in policy.list_namespaced_pod_disruption_budget(namespace).items:
        status = pdb.status
        if status is None or not status.observed_generation or not status.expected_pods:
            continue  # not judged by the disruption controller yet
        found.append(
            BudgetSample(
                now,
                name_of(pdb),
                status.current_healthy or 0,
                status.desired_healthy or 0,
                status.disruptions_allowed or 0,
            )
        )
    return found


@dataclass
class BudgetWatch:
    """Every PodDisruptionBudget of a namespace, looked at every ``interval`` in a thread
    while a drain runs: a budget whose currentHealthy fell below desiredHealthy was broken."""

    policy: client.PolicyV1Api
    namespace: str
    interval: float = PDB_SAMPLE
    samples: list[BudgetSample] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> BudgetWatch:
        self._thread = threading.Thread(target=self._run, name="codelab-pdb-watch", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.samples.extend(budget_samples(self.policy, self.namespace))
            except ApiException as exc:
                self.errors.append(f"HTTP {exc.status}")
            self._stop.wait(self.interval)

    def violations(self) -> list[BudgetSample]:
        return [s for s in self.samples if s.current < s.desired]

    def budgets(self) -> set[str]:
        return {s.name for s in self.samples}


@dataclass
class Eviction:
    """One pod's eviction: when it went through, how often a budget refused it and why."""

    pod: str
    evicted_after: float | None = None
    refusals: int = 0
    last_refusal: str = ""

    def describe(self) -> str:
        if self.evicted_after is not None:
            return f"pod/{self.pod} evicted after {self.evicted_after:.0f}s"
        return f"pod/{self.pod} not evicted, refused {self.refusals} times: {self.last_refusal}"


def pods_on(core: client.CoreV1Api, namespace: str, node: str) -> list[client.V1Pod]:
    """The namespace's pods bound to ``node`` (terminating ones too), DaemonSets' left out."""
    pods = core.list_namespaced_pod(namespace, field_selector=f"spec.nodeName={node}").items
    return [
        p
        for p in pods
        if not any(o.kind == "DaemonSet" for o in meta(p).owner_references or [])
        and (p.status.phase if p.status else "") not in ("Succeeded", "Failed")
    ]


def evict(core: client.CoreV1Api, namespace: str, pod: str) -> tuple[str, str]:
    """Ask the Eviction API to evict ``pod``: ("evicted" | "refused" | "gone", message)."""
    body = client.V1Eviction(metadata=client.V1ObjectMeta(name=pod, namespace=namespace))
    try:
        core.create_namespaced_pod_eviction(pod, namespace, body)
    except ApiException as exc:
        if exc.status == 404:
            return "gone", "already deleted"
        if exc.status == 429:
            return "refused", _reason(exc)
        raise
    return "evicted", ""


def _reason(exc: ApiException) -> str:
    """The Status message of a refusal, with its causes (which budget, how many pods)."""
    try:
        status = json.loads(exc.body or "{}")
    except ValueError:
        return str(exc.reason)
    causes = [c.get("message") for c in (status.get("details") or {}).get("causes") or []]
    extra = f" ({'; '.join(c for c in causes if c)})" if any(causes) else ""
    return f"{status.get('message') or exc.reason}{extra}"


def evict_all(
    core: client.CoreV1Api, namespace: str, node: str, *, timeout: float, pause: float = EVICT_RETRY
) -> list[Eviction]:
    """Evict every pod of the namespace on ``node``, retrying the ones a budget refuses
    (HTTP 429) every ``pause`` seconds until ``timeout``; what happened to each."""
    started = time.monotonic()
    todo = {name_of(p): Eviction(name_of(p)) for p in pods_on(core, namespace, node)}

    def round_() -> tuple[bool, str]:
        for ev in todo.values():
            if ev.evicted_after is not None:
                continue
            outcome, message = evict(core, namespace, ev.pod)
            if outcome == "refused":
                ev.refusals, ev.last_refusal = ev.refusals + 1, message
            else:
                ev.evicted_after = time.monotonic() - started
        left = [e.describe() for e in todo.values() if e.evicted_after is None]
        return not left, "; ".join(left)

    try_until(round_, timeout=timeout, interval=pause)  # the caller judges what was evicted
    return list(todo.values())


def wait_node_empty(
    core: client.CoreV1Api, namespace: str, node: str, *, timeout: float
) -> tuple[bool, str]:
    """Until no pod of the namespace is bound to ``node`` (evicted pods terminated)."""

    def empty() -> tuple[bool, str]:
        left = [name_of(p) for p in pods_on(core, namespace, node)]
        return not left, f"still on {node}: {', '.join(sorted(left))}"

    return try_until(empty, timeout=timeout, interval=1.0)


# --------------------------------------------------------------------------- loss


@dataclass
class Loss:
    """A lost node's timeline, in seconds after the stop: when it was NotReady, when every
    Deployment was Ready again elsewhere, and the last observation."""

    node: str
    stopped_at: float
    not_ready_after: float | None = None
    recovered_after: float | None = None
    last_seen: str = ""

    def figures(self) -> dict[str, float | str | None]:
        return {
            "node": self.node,
            "not_ready_after_s": _round(self.not_ready_after),
            "recovered_after_s": _round(self.recovered_after),
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def watch_loss(
    apps: client.AppsV1Api,
    core: client.CoreV1Api,
    namespace: str,
    loss: Loss,
    replicas: Mapping[str, Count],
    *,
    timeout: float,
) -> Loss:
    """Follow a lost node until every expected Deployment is Ready elsewhere (or
    ``timeout``): fills ``loss`` with the times the node went NotReady and the stack
    recovered."""

    def look() -> tuple[bool, str]:
        since = time.monotonic() - loss.stopped_at
        if loss.not_ready_after is None and not node_ready(core, loss.node):
            loss.not_ready_after = since
        done, seen = recovery_state(placements(apps, core, namespace), replicas, loss.node)
        if done and loss.recovered_after is None:
            loss.recovered_after = since
        loss.last_seen = seen
        return done, seen

    try_until(look, timeout=timeout, interval=LOSS_SAMPLE)  # the suite judges the timeline
    return loss


def loss_tolerations(pods: Iterable[client.V1Pod]) -> dict[str, str]:
    """Pod -> how long it tolerates a NotReady or unreachable node (why it stays bound to a
    lost node that long), for a failure message."""
    out = {}
    for pod in pods:
        tolerations = (pod.spec.tolerations if pod.spec else None) or []
        found = [
            f"{t.key} {t.toleration_seconds}s"
            for t in tolerations
            if t.key in LOSS_TAINTS and t.effect == "NoExecute"
        ]
        out[name_of(pod)] = ", ".join(found) or "no toleration: evicted at once"
    return out


def volume_nodes(core: client.CoreV1Api, namespace: str, pod: str) -> dict[str, list[str]]:
    """Volume claim of ``pod`` -> the nodes its volume is bound to (a PersistentVolume's
    required node affinity, as local volumes have; empty: it can follow the pod)."""
    found: dict[str, list[str]] = {}
    spec = core.read_namespaced_pod(pod, namespace).spec
    for volume in (spec.volumes if spec else None) or []:
        claim = volume.persistent_volume_claim
        if claim is None:
            continue
        pvc = core.read_namespaced_persistent_volume_claim(claim.claim_name, namespace)
        pv_name = pvc.spec.volume_name if pvc.spec else None
        found[claim.claim_name] = _pv_nodes(core.read_persistent_volume(pv_name)) if pv_name else []
    return found


def _pv_nodes(pv: client.V1PersistentVolume) -> list[str]:
    affinity = pv.spec.node_affinity if pv.spec else None
    required = affinity.required if affinity else None
    nodes = []
    for term in (required.node_selector_terms if required else None) or []:
        for expr in term.match_expressions or []:
            if expr.operator == "In":
                nodes += list(expr.values or [])
    return sorted(set(nodes))
