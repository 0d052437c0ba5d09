"""The gate's fixtures, layered like pytest-httpserver's.

Small session fixtures carry configuration and may be overridden in a conftest.py
(``codelab_manifests_dir``, ``codelab_values``, ``codelab_probe_image`` ...); one session
resource per worker owns the cluster state (``codelab_namespace``, ``codelab_stack``);
function-scoped handles are cheap closures over them (``pod_exec``, ``port_forward``,
``probe_pod``, ``waiter``). A test that uses any cluster fixture is an e2e test: it runs
last, and is skipped without ``--codelab-cluster`` (``plugin.CLUSTER_FIXTURES``).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from pytest_codelab import kube, namespaces, podtools, stack
from pytest_codelab.cluster import RUN_KEY, ClusterHandle, ClusterRun
from pytest_codelab.namespaces import NamespaceInfo
from pytest_codelab.safety import check_deletable, require_disruptive
from pytest_codelab.settings import SETTINGS_KEY, Settings
from pytest_codelab.waiting import Timeouts, Waiter

if TYPE_CHECKING:
    from pytest_codelab.values import Values

#: Namespace used to render manifests when no cluster namespace exists (offline checks).
OFFLINE_NAMESPACE = "codelab"


def _run(config: pytest.Config) -> ClusterRun:
    return config.stash[RUN_KEY]


# ----------------------------------------------------------------- configuration


@pytest.fixture(scope="session")
def codelab_settings(pytestconfig: pytest.Config) -> Settings:
    """Effective gate settings (flag > env > ini > default); see ``pytest --help``."""
    return pytestconfig.stash[SETTINGS_KEY]


@pytest.fixture(scope="session")
def codelab_timeouts(codelab_settings: Settings) -> Timeouts:
    """Deadlines per kind of operation, scaled by --codelab-timeout-scale."""
    return Timeouts().scaled(codelab_settings.timeout_scale)


@pytest.fixture(scope="session")
def codelab_manifests_dir(codelab_settings: Settings) -> Path:
    """Folder of the manifests under test: --codelab-manifests or the bundled ones."""
    if codelab_settings.manifests is not None:
        return codelab_settings.manifests
    from pytest_codelab.resources import bundled_path

    return bundled_path("manifests")


@pytest.fixture(scope="session")
def codelab_values(codelab_settings: Settings) -> Values:
    """Values of the run: the --codelab-profile, with --codelab-values layered over it."""
    from pytest_codelab.values import load_values

    return load_values(codelab_settings.profile, codelab_settings.values)


@pytest.fixture(scope="session")
def codelab_raw_manifests(codelab_manifests_dir: Path) -> list[dict[str, Any]]:
    """The manifests as loaded from their folder, before rendering."""
    from pytest_codelab.manifests import load_manifests

    return load_manifests(codelab_manifests_dir)


def _render(
    raw: list[dict[str, Any]],
    namespace: str,
    values: Values,
    settings: Settings,
    ingress_host: str | None = None,
) -> list[dict[str, Any]]:
    from pytest_codelab.manifests import render

    return render(
        raw,
        namespace=namespace,
        values=values,
        image_registry=settings.image_registry,
        image_tag=settings.image_tag,
        ingress_host=ingress_host or settings.ingress_host,
        ingress_class=settings.ingress_class,
    )


def ephemeral_host(namespace: str, base: str) -> str:
    """The Ingress host of a stack the gate deploys: one per namespace, so parallel
    workers and concurrent runs never claim the same host on a shared controller."""
    return f"{namespace}.{base}"


@pytest.fixture(scope="session")
def codelab_manifest_objects(
    codelab_raw_manifests: list[dict[str, Any]],
    codelab_values: Values,
    codelab_settings: Settings,
) -> list[dict[str, Any]]:
    """Rendered objects for --codelab-namespace (else ``codelab``); needs no cluster."""
    namespace = codelab_settings.namespace or OFFLINE_NAMESPACE
    return _render(codelab_raw_manifests, namespace, codelab_values, codelab_settings)


@pytest.fixture(scope="session")
def codelab_probe_image() -> str:
    """Image of ``probe_pod`` pods (override for a mirror registry)."""
    return podtools.DEFAULT_PROBE_IMAGE


# ----------------------------------------------------------------- cluster resources


@pytest.fixture(scope="session")
def codelab_cluster(pytestconfig: pytest.Config) -> ClusterHandle:
    """The cluster under test (kubeconfig, context, ingress URL), started once per run."""
    handle = _run(pytestconfig).handle
    if handle is None:
        pytest.skip("no cluster: pass --codelab-cluster=existing|local (or CODELAB_CLUSTER)")
    return handle


@pytest.fixture(scope="session")
def k8s_client(
    pytestconfig: pytest.Config, codelab_cluster: ClusterHandle
) -> Iterator[client.ApiClient]:
    """Official-client ApiClient for the cluster under test."""
    api = kube.new_client(codelab_cluster.kubeconfig, codelab_cluster.context)
    _run(pytestconfig).api = api
    yield api
    _run(pytestconfig).api = None
    api.close()


@pytest.fixture(scope="session")
def core_v1(k8s_client: client.ApiClient) -> client.CoreV1Api:
    """CoreV1Api (pods, services, events ...) on ``k8s_client``."""
    return client.CoreV1Api(k8s_client)


@pytest.fixture(scope="session")
def apps_v1(k8s_client: client.ApiClient) -> client.AppsV1Api:
    """AppsV1Api (deployments, statefulsets) on ``k8s_client``."""
    return client.AppsV1Api(k8s_client)


def _quiet_delete(handle: ClusterHandle, name: str) -> None:
    """atexit fallback: ask for deletion with a fresh client, do not wait."""
    api = kube.new_client(handle.kubeconfig, handle.context, retries=0)
    try:
        ns = client.CoreV1Api(api).read_namespace(name, _request_timeout=5)
        check_deletable(name, ns.metadata.labels if ns.metadata else None)
        client.CoreV1Api(api).delete_namespace(name, _request_timeout=5)
    finally:
        api.close()


@pytest.fixture(scope="session")
def codelab_namespace(
    pytestconfig: pytest.Config,
    codelab_settings: Settings,
    codelab_cluster: ClusterHandle,
    core_v1: client.CoreV1Api,
    codelab_timeouts: Timeouts,
) -> Iterator[NamespaceInfo]:
    """This worker's namespace: ``codelab-<runid>-<worker>``, created for the run and
    deleted after it (also on failure or Ctrl-C), or the --codelab-namespace one as is."""
    run = _run(pytestconfig)
    if codelab_settings.namespace:
        info = NamespaceInfo(codelab_settings.namespace, created=False)
        run.namespace = info
        yield info
        return
    for name in namespaces.reap_expired(core_v1):
        run.note(f"deleted expired namespace {name} left by an earlier run")
    name = namespaces.namespace_name(run.run_id, run.worker)
    namespaces.REAPER.add(name, functools.partial(_quiet_delete, codelab_cluster, name))
    try:
        info = namespaces.create(core_v1, name, run.run_id, timeout=codelab_timeouts.namespace)
        run.namespace = info
        yield info
    finally:
        run.namespace = None
        _finish_namespace(run, codelab_settings, codelab_cluster, core_v1, name, codelab_timeouts)


def _finish_namespace(
    run: ClusterRun,
    settings: Settings,
    handle: ClusterHandle,
    core: client.CoreV1Api,
    name: str,
    timeouts: Timeouts,
) -> None:
    if settings.keep_namespace:
        namespaces.REAPER.discard(name)
        command = namespaces.delete_command(name, str(handle.kubeconfig), handle.context)
        run.note(f"kept namespace {name}; delete it with: {command}")
        return
    namespaces.delete(core, name, timeout=timeouts.delete)
    namespaces.REAPER.discard(name)


@pytest.fixture(scope="session")
def codelab_stack(
    pytestconfig: pytest.Config,
    codelab_settings: Settings,
    codelab_cluster: ClusterHandle,
    codelab_namespace: NamespaceInfo,
    k8s_client: client.ApiClient,
    codelab_timeouts: Timeouts,
    codelab_values: Values,
    codelab_raw_manifests: list[dict[str, Any]],
) -> stack.StackInfo:
    """CodeLab deployed and Ready: rendered manifests + generated Secrets applied into the
    ephemeral namespace; with --codelab-namespace nothing is deployed, readiness is checked."""
    ns = codelab_namespace.name
    if not codelab_namespace.created:
        stack.wait_ready(k8s_client, ns, timeout=codelab_timeouts.deploy)
        return stack.StackInfo(
            ns,
            deployed=False,
            ingress_url=codelab_cluster.ingress_url,
            ingress_host=codelab_settings.ingress_host,
        )
    from pytest_codelab.manifests import apply_order
    from pytest_codelab.secrets import generate_secrets

    host = ephemeral_host(ns, codelab_settings.ingress_host)
    objects = _render(codelab_raw_manifests, ns, codelab_values, codelab_settings, host)
    secrets = generate_secrets(codelab_values, ingress_host=host, namespace=ns)
    result = stack.deploy(k8s_client, apply_order(secrets + objects), ns)
    for note in result.skipped:
        _run(pytestconfig).note(note)
    stack.wait_ready(k8s_client, ns, timeout=codelab_timeouts.deploy)
    return stack.StackInfo(
        ns,
        deployed=True,
        ingress_url=codelab_cluster.ingress_url,
        ingress_host=host,
        objects=tuple(objects),
        skipped=tuple(result.skipped),
    )


# ----------------------------------------------------------------- cheap handles


@pytest.fixture
def waiter(codelab_timeouts: Timeouts) -> Waiter:
    """Wait helpers bound to the run's timeouts: ``waiter.until(probe, what, kind=...)``,
    ``waiter.rollout(apps, ns, name)``, ``waiter.statefulset(apps, ns, name)``."""
    return Waiter(codelab_timeouts)


@pytest.fixture
def pod_exec(
    core_v1: client.CoreV1Api, codelab_namespace: NamespaceInfo, codelab_timeouts: Timeouts
) -> Callable[..., podtools.ExecResult]:
    """``pod_exec(pod, argv, container=None)`` -> ExecResult, in the test namespace."""

    def run(pod: str, command: Sequence[str], container: str | None = None) -> podtools.ExecResult:
        return podtools.exec_in_pod(
            core_v1,
            codelab_namespace.name,
            pod,
            command,
            container=container,
            timeout=codelab_timeouts.exec,
        )

    return run


@pytest.fixture
def port_forward(
    core_v1: client.CoreV1Api, codelab_namespace: NamespaceInfo
) -> Callable[[str, int], contextlib.AbstractContextManager[int]]:
    """``with port_forward("svc/gateway", 8000) as port:`` -> local port (also ``pod/NAME``)."""
    ns = codelab_namespace.name

    def forward(target: str, port: int) -> contextlib.AbstractContextManager[int]:
        kind, _, name = target.rpartition("/")
        if kind in ("svc", "service"):
            pod, pod_port = podtools.pod_for_service(core_v1, ns, name, port)
        elif kind in ("", "pod", "pods"):
            pod, pod_port = name, port
        else:
            raise ValueError(f"port_forward target must be pod/NAME or svc/NAME, not {target!r}")
        return podtools.port_forward(core_v1, ns, pod, pod_port)

    return forward


@pytest.fixture
def probe_pod(
    core_v1: client.CoreV1Api,
    codelab_namespace: NamespaceInfo,
    codelab_probe_image: str,
    codelab_timeouts: Timeouts,
) -> Callable[..., podtools.ProbeResult]:
    """``probe_pod("wget -O- http://agent-runtime:8001/health")`` -> ProbeResult: a
    short-lived busybox pod in the test namespace, always deleted."""

    def run(command: Sequence[str] | str, image: str | None = None) -> podtools.ProbeResult:
        return podtools.probe_pod(
            core_v1,
            codelab_namespace.name,
            command,
            image=image or codelab_probe_image,
            timeout=codelab_timeouts.probe,
        )

    return run


@pytest.fixture(autouse=True)
def _codelab_disruptive_guard(request: pytest.FixtureRequest) -> None:
    """Skip ``disruptive`` tests outside gate-created namespaces (see safety.py)."""
    if request.node.get_closest_marker("disruptive") is None:
        return
    info: NamespaceInfo = request.getfixturevalue("codelab_namespace")
    require_disruptive(request.getfixturevalue("codelab_settings"), info)


def skip_if_missing_kind(api: client.ApiClient, api_version: str, kind: str) -> None:
    """Skip the calling test if the cluster does not serve ``kind`` (e.g. VPA, Velero)."""
    try:
        reason = kube.missing_kind_reason(api, api_version, kind)
    except ApiException as exc:
        reason = f"cannot tell whether {kind} is served: HTTP {exc.status}"
    if reason:
        pytest.skip(reason)
