"""Issue 6: autoscaling under load: the HPAs scale out, stay in bounds, new pods take traffic,
replicas come back down; the VPA recommends; Locust can run distributed.

A Locust load (``loadtests/codelab.py``: a token from auth-service, then whoami / CPU-burning
``/api/v1/work`` and ``/oauth/work`` / sessions calls through the Ingress) pushes the guide's
three HPAs (gateway, agent-runtime, auth-service) above their CPU targets in one run while a
``Timeline`` samples every HPA and its Deployment every 2 s. The
load runs once per module (bounded: at most 90 s) and stops early once every HPA under test
has scaled out and its new pods have served traffic for a while; the tests then judge the
recorded history, so a red test says what the HPA did, second by second. Charts of the run
(requests/s, latency, replicas with scaling events) go to the gate report.

The bounds every check judges by are the expected ones (``codelab_expected``: the guide's
values-prod.yaml or --codelab-expect), passed through the same fit the gate applied to the
stack it deployed (``deploy.fit.fitted_hpa_bounds``; no fit on a namespace it did not
deploy), never the live HPA's.

Scale-down is checked only where the gate may shorten the HPA's scale-down stabilization window
(300 s by default): in a namespace it created.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest
from kubernetes import client

from pytest_codelab.clients.ingress import IngressClient
from pytest_codelab.clients.load.locust import LocustRun
from pytest_codelab.clients.load.results import served_pods
from pytest_codelab.clients.load.spec import SECRET_ENV, STOP_GRACE, LoadSpec
from pytest_codelab.clients.load.workers import nodes_with_image
from pytest_codelab.clients.timeline import Timeline, event_source, first_time, hpa_sampler
from pytest_codelab.deploy.credentials import oauth_client_id, oauth_client_secret
from pytest_codelab.deploy.expected import Expectation
from pytest_codelab.deploy.fit import Fit, fitted_hpa_bounds
from pytest_codelab.errors import WaitTimeout
from pytest_codelab.fixtures.handles import skip_if_missing_kind
from pytest_codelab.k8s.namespaces import NamespaceInfo
from pytest_codelab.k8s.pods import app_pods
from pytest_codelab.k8s.stack import StackInfo
from pytest_codelab.k8s.waiting import Timeouts, try_until, wait_until
from pytest_codelab.providers.base import ClusterHandle
from pytest_codelab.report import records
from pytest_codelab.report.promises import GUIDE_HPAS
from pytest_codelab.run import RUN_KEY
from pytest_codelab.safety import require_disruptive
from pytest_codelab.scenarios import vpa
from pytest_codelab.scenarios.autoscaling import (
    Bounds,
    ScaleDown,
    ScaleOut,
    distributed,
    drive,
    list_hpas,
    pod_metrics_reason,
    settle,
    shortened_scale_down,
    unscalable,
    wait_back_at_min,
)
from pytest_codelab.settings import Settings

#: HPAs the load must push above their CPU target (every HPA of the guide, named
#: ``<deployment>-hpa``), and the Deployment (``app`` label) of their pods.
SCALED = {hpa: hpa.removesuffix("-hpa") for hpa in GUIDE_HPAS}
#: The bounded load: users, spawn rate, run time (s), work rounds per /api/v1/work and
#: /oauth/work. Sized on a 2-core machine: ~90 req/s through the gateway (whoami: cheap for
#: agent-runtime), ~15 req/s of 20000 SHA-256 rounds on agent-runtime and ~10 on auth-service
#: push the three HPAs well above their 70 % CPU targets of 25m requests, without burning
#: much more than a core.
LOAD_USERS, LOAD_SPAWN_RATE, LOAD_RUN_TIME = 24, 6.0, 90.0
LOAD_ENV = {
    "CODELAB_LOAD_WORK_ROUNDS": "20000",
    "CODELAB_LOAD_MIX": "whoami=10,work=3,session=1,auth=2",
    "CODELAB_LOAD_WAIT": "0.05-0.3",
}
#: The scale-down stabilization window set for the scale-down check (seconds).
SCALE_DOWN_WINDOW = 0
#: Seconds the master waits for its worker pods to connect (scaled like every deadline).
WORKERS_CONNECT = 90.0
#: The client id the load presents when auth-service accepts any.
LOAD_CLIENT_ID = "pytest-codelab-load"
VPA = ("autoscaling.k8s.io", "v1", "verticalpodautoscalers", "agent-runtime-vpa")
F = TypeVar("F", bound=Callable[..., Any])

#: Marks of the tests that put the stack under load (the offline test has none of these).
e2e, cluster, disruptive, slow = (
    pytest.mark.e2e,
    pytest.mark.cluster,
    pytest.mark.disruptive,
    pytest.mark.slow,
)


# ----------------------------------------------------------------- offline


@pytest.mark.offline
@pytest.mark.requirement("6/hpa: every HPA can scale (maxReplicas > minReplicas)")
def test_every_hpa_can_scale(
    codelab_raw_manifests: list[dict[str, Any]],
    codelab_manifest_objects: list[dict[str, Any]],
    codelab_settings: Settings,
) -> None:
    """An HPA whose maxReplicas equals its minReplicas never adds a pod under load: neither
    in the manifests as written (what ``kubectl apply -f`` deploys) nor as the gate renders
    them with the values profile."""
    stuck = unscalable(codelab_raw_manifests, "as written") + unscalable(
        codelab_manifest_objects, f"as rendered with profile {codelab_settings.profile}"
    )
    assert not stuck, f"in {codelab_settings.manifests or 'the bundled manifests'}: " + "; ".join(
        stuck
    )


# ----------------------------------------------------------------- metrics


@pytest.fixture(scope="module")
def metrics_problem(
    k8s_client: client.ApiClient,
    core_v1: client.CoreV1Api,
    codelab_stack: StackInfo,
    codelab_timeouts: Timeouts,
) -> str | None:
    """None once metrics.k8s.io serves usage of every CodeLab pod, else why not (waits up
    to a minute: metrics-server needs one scrape after a pod starts)."""
    ns = codelab_stack.namespace
    pods = {name for app in SCALED.values() for name in app_pods(core_v1, ns, app)}

    def probe() -> tuple[bool, str]:
        reason = pod_metrics_reason(k8s_client, ns, pods, request_timeout=codelab_timeouts.api)
        # Served with data for every pod: done; not served at all: waiting will not help.
        return not reason or "not served" in reason, reason or ""

    _, reason = try_until(probe, timeout=codelab_timeouts.metrics, interval=5)
    return reason or None


@e2e
@cluster
@pytest.mark.requirement("6/metrics: the cluster serves pod metrics (metrics.k8s.io) to HPAs")
def test_metrics_api_serves_pod_metrics(metrics_problem: str | None) -> None:
    """metrics-server (or another metrics.k8s.io provider) reports the CodeLab pods' usage."""
    if metrics_problem:
        pytest.fail(metrics_problem, pytrace=False)


# ----------------------------------------------------------------- the load run


@pytest.fixture(scope="module")
def load_image(codelab_settings: Settings, codelab_cluster: ClusterHandle) -> tuple[str, bool]:
    """The Locust worker image and whether it was configured (else the cluster's own, which
    the local cluster provides; "" when there is none)."""
    configured = codelab_settings.load_image
    return str(configured or codelab_cluster.load_image or ""), bool(configured)


def worker_image_skip_reason(core: client.CoreV1Api, image: str, configured: bool) -> str | None:
    """Why worker pods cannot run: no image, or the cluster's own is missing from every node."""
    if configured:
        return None  # a registry image: the kubelet pulls it
    if not image:
        return (
            "no Locust worker image: this cluster provides none; name one with "
            "--codelab-load-image or run with --codelab-load-workers 0"
        )
    having, nodes = nodes_with_image(core, image)
    if having:
        return None
    return (
        f"Locust worker image {image} is not on any node ({', '.join(nodes) or 'none'}): build "
        "and import it (image recipe 'locust', see loadtests/README.md) or run with "
        "--codelab-load-workers 0"
    )


def expected_bounds(
    expected: Expectation, fit: Fit | None, hpas: list[str]
) -> tuple[dict[str, Bounds], list[str]]:
    """Each HPA's expected bounds (the expectation's figures through ``fit``), and the HPAs
    the expectation states no bounds for."""
    found, missing = {}, []
    for hpa in hpas:
        app = SCALED[hpa]
        figures = expected.hpa(app)
        if figures is None or figures.max_replicas is None:
            missing.append(hpa)
            continue
        low = figures.min_replicas.value if figures.min_replicas else None
        high = figures.max_replicas.value
        fit_low, fit_high = fitted_hpa_bounds(fit, "Deployment", app, low, high)
        keys = f"{figures.max_replicas.key} {high}" + (
            f", {figures.min_replicas.key} {low}" if figures.min_replicas else ""
        )
        cpu = figures.targets.get("cpu")
        if cpu is not None:
            keys += f", {cpu.key} {cpu.value}"
        fitted = f"; fit {fit.name}: {fit_low}-{fit_high}" if fit else ""
        # An HPA without minReplicas has 1 (the API's default).
        found[hpa] = Bounds(
            fit_low or 1, fit_high or 1, f"{keys}{fitted}", cpu.value if cpu else None
        )
    return found, missing


@pytest.fixture(scope="module")
def hpa_bounds(
    codelab_expected: Expectation, codelab_fit: Fit | None, codelab_stack: StackInfo
) -> dict[str, Bounds]:
    """The bounds each scaled HPA must keep: the expectation's, fitted like the stack the
    gate deployed (no fit for a namespace it did not deploy)."""
    fit = codelab_fit if codelab_stack.deployed else None
    found, missing = expected_bounds(codelab_expected, fit, sorted(SCALED))
    if missing:
        pytest.fail(
            f"the expectation ({codelab_expected.source}) states no replica bounds for "
            f"{', '.join(missing)}: nothing to judge their autoscaling by",
            pytrace=False,
        )
    return found


@pytest.fixture(scope="module")
def scale_out(
    metrics_problem: str | None,
    hpa_bounds: dict[str, Bounds],
    codelab_stack: StackInfo,
    codelab_settings: Settings,
    codelab_namespace: NamespaceInfo,
    k8s_client: client.ApiClient,
    core_v1: client.CoreV1Api,
    apps_v1: client.AppsV1Api,
    ingress_target: IngressClient,
    codelab_timeouts: Timeouts,
    load_image: tuple[str, bool],
) -> Iterator[ScaleOut]:
    """Run the module's load once and record what the HPAs did (see the module docstring)."""
    # Module fixtures run before the per-test disruptive guard: check here too.
    require_disruptive(codelab_settings, codelab_namespace)
    if metrics_problem:
        pytest.skip(f"HPA tests need pod metrics: {metrics_problem}")
    ns = codelab_stack.namespace
    hpas = list_hpas(k8s_client, ns)
    missing = sorted(set(SCALED) - set(hpas))
    if missing:
        pytest.fail(f"HPAs {', '.join(missing)} not found in {ns}; found: {sorted(hpas)}")
    workers = codelab_settings.load_workers
    if workers:
        reason = worker_image_skip_reason(core_v1, *load_image)
        if reason:
            pytest.skip(reason)
    out_dir = records.load_folder(codelab_settings.report_dir, ns)
    timeline = Timeline(
        hpa_sampler(k8s_client, ns, request_timeout=codelab_timeouts.api),
        events=event_source(core_v1, ns, request_timeout=codelab_timeouts.api),
        interval=2.0,
        max_seconds=600,
    )
    run = ScaleOut(ns, SCALED, hpa_bounds, hpas, {}, timeline, out_dir / "scale-out.record.json")
    with timeline:
        try:
            settle(run, codelab_timeouts.settle)
        except WaitTimeout as exc:
            pytest.fail(str(exc), pytrace=False)
        run.before = {app: set(app_pods(core_v1, ns, app)) for app in SCALED.values()}
        spec = LoadSpec(
            host=ingress_target.base_url,
            users=LOAD_USERS,
            spawn_rate=LOAD_SPAWN_RATE,
            run_time=LOAD_RUN_TIME,
            name="scale-out",
            env={
                **LOAD_ENV,
                "CODELAB_INGRESS_HOST": ingress_target.server_name,
                "CODELAB_OAUTH_CLIENT_ID": oauth_client_id(apps_v1, core_v1, ns, LOAD_CLIENT_ID),
                SECRET_ENV: oauth_client_secret(core_v1, ns),
            },
            remote_workers=workers,
            master_bind_host="0.0.0.0" if workers else "127.0.0.1",
            expect_workers_wait=codelab_timeouts.scale(LoadSpec.expect_workers_wait),
            ca_pem=ingress_target.trust.pem,
        )
        with contextlib.ExitStack() as stack:
            if workers:
                locust, pods = stack.enter_context(
                    distributed(spec, out_dir, core_v1, ns, load_image[0], codelab_settings)
                )
                run.notes.append(f"{workers} Locust worker pods: {', '.join(pods.names)}")
            else:
                locust = stack.enter_context(LocustRun(spec, out_dir))
            run.load_started = locust.started or time.time()
            timeline.mark("load start")
            drive(run, locust, core_v1, codelab_timeouts.scale_out)
            locust.stop("stopped by the test: every HPA scaled out and new pods took traffic")
            locust.wait(timeout=STOP_GRACE)
            run.load_stopped = time.time()
            timeline.mark("load stop")
            run.result = locust.result()
        run.save()
        yield run
    run.save(timeline.stop())


# ----------------------------------------------------------------- tests under load


def per_hpa(requirement: str) -> list[Any]:
    """One parameter per scaled HPA, carrying that HPA's requirement: the report has one
    autoscaling row per HPA (``5.3/autoscaling/<hpa>``, see pytest_codelab.report.promises)."""
    return [
        pytest.param(hpa, marks=pytest.mark.requirement(f"5.3/autoscaling/{hpa}: {requirement}"))
        for hpa in sorted(SCALED)
    ]


def for_each_scaled_hpa(requirement: str) -> Callable[[F], F]:
    """The requirement on every scaled HPA's row, for a test that judges the load as a whole."""

    def decorate(fn: F) -> F:
        for hpa in sorted(SCALED):
            fn = pytest.mark.requirement(f"5.3/autoscaling/{hpa}: {requirement}")(fn)
        return fn

    return decorate


def attach(request: pytest.FixtureRequest, run: ScaleOut) -> None:
    records.attach_load_record(request.node, run.save())


@pytest.mark.parametrize(
    "hpa", per_hpa("under load, replicas rise above minReplicas within a deadline")
)
@e2e
@cluster
@disruptive
@slow
def test_hpa_scales_out_under_load(
    hpa: str, scale_out: ScaleOut, request: pytest.FixtureRequest, codelab_timeouts: Timeouts
) -> None:
    """The load pushes the HPA's Deployment above its CPU target: it adds replicas above the
    expected minReplicas in time (an HPA whose maxReplicas is its minReplicas never does)."""
    attach(request, scale_out)
    deadline = codelab_timeouts.scale_out
    samples = [s for s in scale_out.samples(hpa) if s.t >= scale_out.load_started]
    bounds = scale_out.bounds[hpa]
    first = first_time(samples, lambda s: s.current > bounds.min)
    peak_cpu = max((s.cpu for s in samples if s.cpu is not None), default=None)
    live_target = samples[-1].cpu_target if samples else None
    spec = scale_out.hpas[hpa].spec
    assert first is not None and first - scale_out.load_started <= deadline, (
        f"HPA {hpa} did not scale out above the expected minReplicas {bounds.min} within "
        f"{deadline:.0f}s of load start (expected {bounds.min}-{bounds.max} from "
        f"{bounds.source}; the live HPA says minReplicas {spec.min_replicas}, maxReplicas "
        f"{spec.max_replicas}; peak CPU {peak_cpu}% for an expected target of "
        f"{bounds.cpu_target}% (live {live_target}%)"
        + (f", first scale-out at +{first - scale_out.load_started:.0f}s" if first else "")
        + f"); seen: {scale_out.history(hpa)}\n{scale_out.describe_load()}"
    )


@pytest.mark.parametrize("hpa", per_hpa("replicas never exceed maxReplicas"))
@e2e
@cluster
@disruptive
@slow
def test_hpa_never_exceeds_max_replicas(
    hpa: str, scale_out: ScaleOut, request: pytest.FixtureRequest
) -> None:
    """Neither the HPA's current/desired replicas nor its Deployment's go above the expected
    maxReplicas, and the live HPA allows no more than that (an HPA whose maxReplicas is above
    the guide's could exceed it under a heavier load than this one)."""
    attach(request, scale_out)
    bounds = scale_out.bounds[hpa]
    samples = scale_out.samples(hpa)
    assert samples, f"HPA {hpa}: no samples were recorded"
    problems = []
    over = [s for s in samples if max(s.current, s.desired, s.spec_replicas or 0) > bounds.max]
    if over:
        problems.append(
            f"went above the expected maxReplicas {bounds.max}: "
            + "; ".join(
                f"+{s.t - scale_out.load_started:.0f}s current {s.current} desired {s.desired} "
                f"deployment {s.spec_replicas}"
                for s in over[:5]
            )
        )
    allows = sorted({s.max for s in samples if s.max > bounds.max})
    if allows:
        problems.append(f"allows up to {allows[-1]} replicas (live maxReplicas)")
    assert not problems, f"HPA {hpa} (expected {bounds.min}-{bounds.max} from {bounds.source}) " + (
        "; ".join(problems)
    )


@pytest.mark.parametrize("hpa", per_hpa("new pods become Ready and take traffic"))
@e2e
@cluster
@disruptive
@slow
def test_new_pods_ready_and_take_traffic(
    hpa: str,
    scale_out: ScaleOut,
    core_v1: client.CoreV1Api,
    request: pytest.FixtureRequest,
) -> None:
    """Pods added by the scale-out become Ready, and answer requests of the load (the pod
    names in X-Served-By / X-Upstream-Served-By)."""
    attach(request, scale_out)
    assert scale_out.result is not None
    app = SCALED[hpa]
    now = app_pods(core_v1, scale_out.namespace, app)
    header = "X-Upstream-Served-By" if app == "agent-runtime" else "X-Served-By"
    served = served_pods(scale_out.result, app, header)
    new_served = sorted(set(served) - scale_out.before[app])
    ready_peak = max((s.ready or 0 for s in scale_out.samples(hpa)), default=0)
    seen = (
        f"pods before the load: {sorted(scale_out.before[app])}; Ready replicas peaked at "
        f"{ready_peak}; pods that answered ({header}): "
        + (", ".join(f"{p} x{int(e['count'])}" for p, e in sorted(served.items())) or "none")
        + f"; pods now: {sorted(now)}"
    )
    assert ready_peak > len(scale_out.before[app]), (
        f"HPA {hpa}: no pod added by the scale-out became Ready; {seen}\n{scale_out.history(hpa)}"
    )
    assert len(served) >= 2, f"HPA {hpa}: requests were answered by fewer than 2 pods; {seen}"
    if not new_served:
        t0 = scale_out.load_started
        ready_at = first_time(
            scale_out.samples(hpa), lambda s: (s.ready or 0) > len(scale_out.before[app])
        )
        old_last = max((e["last"] for e in served.values()), default=t0)
        pytest.fail(
            f"HPA {hpa}: no pod added by the scale-out answered a request: new pods were Ready "
            f"from {_rel(ready_at, t0)}, the load ran until {_rel(scale_out.load_stopped, t0)} "
            f"and the old pods answered until {_rel(old_last, t0)}; {seen}. (A client that "
            f"keeps connections to {app} alive through its ClusterIP Service stays on the pods "
            "it first connected to: kube-proxy balances connections, not requests.)",
            pytrace=False,
        )


def _rel(moment: float | None, t0: float) -> str:
    return "-" if moment is None else f"{moment - t0:+.0f}s"


@e2e
@cluster
@disruptive
@slow
@for_each_scaled_hpa("the API keeps answering while it scales (< 1% failed)")
def test_load_answered_while_scaling(scale_out: ScaleOut, request: pytest.FixtureRequest) -> None:
    """Scaling out must not cost requests: at most 1% of the load's requests fail."""
    attach(request, scale_out)
    result = scale_out.result
    assert result is not None and result.requests > 0, (
        f"the load sent no request: {scale_out.describe_load()}"
    )
    assert result.failed <= 0.01 * result.requests, scale_out.describe_load()


# ----------------------------------------------------------------- scale-down


@pytest.fixture(scope="module")
def scale_down(
    scale_out: ScaleOut,
    codelab_namespace: NamespaceInfo,
    k8s_client: client.ApiClient,
    codelab_timeouts: Timeouts,
) -> Iterator[ScaleDown]:
    """Shorten every scaled HPA's scale-down stabilization window (in the gate's own
    namespace only), wait for minReplicas, and restore the HPAs' behavior."""
    if not codelab_namespace.created:
        pytest.skip(
            f"scale-down not checked: it needs the HPAs' scale-down stabilization window "
            f"(300 s by default) shortened, which the gate does only in a namespace it created, "
            f"not in {codelab_namespace.name}"
        )
    with shortened_scale_down(k8s_client, scale_out, SCALE_DOWN_WINDOW) as original:
        yield wait_back_at_min(scale_out, list(original), codelab_timeouts.scale_down)


@pytest.mark.parametrize("hpa", per_hpa("replicas return to minReplicas after the load"))
@e2e
@cluster
@disruptive
@slow
def test_hpa_scales_down_after_load(
    hpa: str, scale_down: ScaleDown, scale_out: ScaleOut, request: pytest.FixtureRequest
) -> None:
    """With the stabilization window shortened, the HPA returns to the expected minReplicas
    in time."""
    attach(request, scale_out)
    back = scale_down.back_at[hpa]
    assert back is not None, (
        f"HPA {hpa} did not return to the expected minReplicas {scale_out.bounds[hpa].min} "
        f"within {scale_down.deadline:.0f}s after the load (stabilization window "
        f"{SCALE_DOWN_WINDOW}s); seen: {scale_out.history(hpa)}"
    )


# ----------------------------------------------------------------- VPA


#: Base seconds for the updater to evict an agent-runtime pod and the admission controller
#: to recreate it with the recommendation (the local VPA loops every 15 s). Scaled.
VPA_UPDATE = 240.0
VPA_CONTAINER = "agent-runtime"


@e2e
@cluster
@disruptive
@slow
@pytest.mark.requirement("6/vpa: the VPA recommends resources for agent-runtime")
def test_vpa_recommends_resources(
    k8s_client: client.ApiClient,
    codelab_stack: StackInfo,
    codelab_timeouts: Timeouts,
    scale_out: ScaleOut,
    request: pytest.FixtureRequest,
) -> None:
    """After the module's load, agent-runtime-vpa gives a target for its container that lies
    within the recommendation's own bounds (lowerBound <= target <= upperBound)."""
    skip_if_missing_kind(k8s_client, "autoscaling.k8s.io/v1", "VerticalPodAutoscaler")
    name = VPA[3]
    ns = codelab_stack.namespace
    found: list[vpa.Recommendation | None] = [None]

    def recommended() -> tuple[bool, str]:
        obj = vpa.read(k8s_client, ns, name)
        if obj is None:
            pytest.fail(f"verticalpodautoscaler/{name} is missing from {ns}", pytrace=False)
        found[0] = vpa.recommendation(obj, VPA_CONTAINER)
        return found[0] is not None, f"status {obj.get('status')}"

    wait_until(
        recommended,
        timeout=codelab_timeouts.rollout,
        what=f"VPA {name} to give a target for container {VPA_CONTAINER}",
        interval=10,
    )
    rec = found[0]
    assert rec is not None
    outside = rec.outside_bounds()
    assert not outside, f"VPA {name}'s recommendation is not within its bounds: {outside}"
    record_figures(
        request,
        "vpa_recommendation",
        {"target": rec.target, "lowerBound": rec.lower, "upperBound": rec.upper},
    )


@e2e
@cluster
@disruptive
@slow
@pytest.mark.requirement(
    "6/vpa/auto: in Auto mode a pod is recreated with requests from the recommendation"
)
def test_vpa_auto_mode_recreates_pods_with_the_recommendation(
    k8s_client: client.ApiClient,
    core_v1: client.CoreV1Api,
    codelab_stack: StackInfo,
    codelab_timeouts: Timeouts,
    codelab_expected: Expectation,
    request: pytest.FixtureRequest,
) -> None:
    """With the expected updateMode Auto, the admission controller sets the requests of
    agent-runtime's new pods from the recommendation (its vpaUpdates annotation, requests
    within the recommendation's bounds), and the updater evicts the pods whose requests
    were outside them (an EvictedByVPA event)."""
    skip_if_missing_kind(k8s_client, "autoscaling.k8s.io/v1", "VerticalPodAutoscaler")
    name = VPA[3]
    modes = {i.name: f for i, f in codelab_expected.area("vpa").items() if i.field == "updateMode"}
    if name not in modes or modes[name].value != "Auto":
        pytest.skip(f"the expectation states no updateMode Auto for {name}: no update to check")
    ns = codelab_stack.namespace
    deadline = codelab_timeouts.scale(VPA_UPDATE)
    seen: dict[str, Any] = {}

    def updated() -> tuple[bool, str]:
        rec = vpa.recommendation(vpa.read(k8s_client, ns, name), VPA_CONTAINER)
        pods = list(app_pods(core_v1, ns, VPA_CONTAINER).values())
        rewritten = vpa.updated_pods(pods)
        evicted = vpa.evictions(core_v1, ns)
        good = {p: r for p, r in rewritten.items() if rec is not None and not rec.within(r)}
        seen.update(rec=rec, rewritten=rewritten, evicted=evicted, good=good)
        return bool(good and evicted), (
            f"recommendation {rec}; pods rewritten by the admission controller {rewritten}; "
            f"evicted by the updater {evicted}"
        )

    met, last = try_until(updated, timeout=deadline, interval=5)
    assert met, (
        f"within {deadline:.0f}s no agent-runtime pod was evicted by the VPA updater and "
        f"recreated with requests within the recommendation's bounds: {last}"
    )
    record_figures(
        request,
        "vpa_update",
        {"evicted": seen["evicted"], "recreated": seen["good"]},
    )


@e2e
@cluster
@pytest.mark.requirement("6/vpa/hpa: a VPA in Auto mode and an HPA on the same metric")
def test_vpa_and_hpa_on_the_same_resource_is_a_finding(
    k8s_client: client.ApiClient,
    codelab_stack: StackInfo,
    codelab_expected: Expectation,
    request: pytest.FixtureRequest,
) -> None:
    """The guide gives agent-runtime both a VPA in Auto mode and an HPA on CPU (and memory).
    Not a failure of the deployment (it is the guide's design) but never a silent pass: each
    overlap is a finding in the report with the guide's figures, once the live objects are
    confirmed to be what the guide says."""
    skip_if_missing_kind(k8s_client, "autoscaling.k8s.io/v1", "VerticalPodAutoscaler")
    found = vpa.overlaps(codelab_expected)
    if not found:
        pytest.skip("the expectation has no VPA in Auto mode beside an HPA on the same resource")
    ns = codelab_stack.namespace
    hpas = list_hpas(k8s_client, ns)
    for overlap in found:
        live = vpa.read(k8s_client, ns, overlap.vpa)
        assert live is not None, f"verticalpodautoscaler/{overlap.vpa} is missing from {ns}"
        mode = ((live.get("spec") or {}).get("updatePolicy") or {}).get("updateMode", "Auto")
        assert mode == overlap.mode.value, (
            f"{overlap.vpa} runs updateMode {mode}, the expectation says {overlap.mode.value} "
            f"({overlap.mode.key})"
        )
        assert overlap.hpa in hpas, f"HPA {overlap.hpa} of the expectation is missing from {ns}"
        record_figures(
            request,
            f"finding_{overlap.vpa.replace('-', '_')}",
            {
                "finding": overlap.finding(),
                "updateMode": f"{overlap.mode.value} ({overlap.mode.key})",
                **{
                    f"hpa_{r}": f"{overlap.targets[r].value}% ({overlap.targets[r].key})"
                    for r in overlap.resources
                },
            },
        )


def record_figures(request: pytest.FixtureRequest, what: str, figures: dict[str, Any]) -> None:
    """One ``codelab_<what>_<figure>`` test property per figure plus the whole as JSON, and
    one line in the run's notes (as the nodes suite records its findings)."""
    props = request.node.user_properties
    for key, value in figures.items():
        props.append((f"codelab_{what}_{key}", json.dumps(value, default=str)))
    run = request.config.stash.get(RUN_KEY, None)
    if run is not None:
        run.note(f"{what.replace('_', ' ')}: " + ", ".join(f"{k} {v}" for k, v in figures.items()))


# ----------------------------------------------------------------- distributed Locust


@e2e
@cluster
@disruptive
@slow
# No requirement marker: this checks the gate's own load tooling, not a promise of the guide.
def test_distributed_load_workers(
    codelab_settings: Settings,
    codelab_stack: StackInfo,
    core_v1: client.CoreV1Api,
    apps_v1: client.AppsV1Api,
    ingress_target: IngressClient,
    load_image: tuple[str, bool],
    request: pytest.FixtureRequest,
    codelab_timeouts: Timeouts,
) -> None:
    """N worker pods connect to the master on the gate's host and their requests reach
    CodeLab through the Ingress."""
    workers = codelab_settings.load_workers
    if not workers:
        pytest.skip("distributed load not requested: pass --codelab-load-workers N")
    reason = worker_image_skip_reason(core_v1, *load_image)
    if reason:
        pytest.skip(reason)
    ns = codelab_stack.namespace
    spec = LoadSpec(
        host=ingress_target.base_url,
        users=max(2, workers * 2),
        spawn_rate=4,
        run_time=20,
        name="distributed",
        env={
            "CODELAB_INGRESS_HOST": ingress_target.server_name,
            "CODELAB_OAUTH_CLIENT_ID": oauth_client_id(apps_v1, core_v1, ns, LOAD_CLIENT_ID),
            "CODELAB_LOAD_MIX": "whoami=1,work=0,session=0",
            SECRET_ENV: oauth_client_secret(core_v1, ns),
        },
        remote_workers=workers,
        master_bind_host="0.0.0.0",
        expect_workers_wait=codelab_timeouts.scale(WORKERS_CONNECT),
        ca_pem=ingress_target.trust.pem,
    )
    out_dir = records.load_folder(codelab_settings.report_dir, ns)
    with distributed(spec, out_dir, core_v1, ns, load_image[0], codelab_settings) as (
        locust,
        pods,
    ):
        locust.wait()
        pod_state = pods.describe()
        pod_logs = pods.logs(request_timeout=codelab_timeouts.api)
    result = locust.result()
    record = records.write_load_record(
        out_dir / "distributed.record.json",
        title=f"distributed Locust ({workers} worker pods, {ns})",
        load=result,
        timeline=None,
        t0=result.started,
    )
    records.attach_load_record(request.node, record)
    seen = f"{result.describe()}\nworker pods: {pod_state}\n{pod_logs}"
    assert result.connected_workers == workers, (
        f"{result.connected_workers} of {workers} worker pods connected to the master; {seen}"
    )
    assert result.requests > 0 and result.failed == 0, seen
