"""pytest hooks of the gate (entry point ``codelab``); the logic lives in the other modules.

Flow: options -> settings (configure) -> cluster (sessionstart, once per run: the xdist
controller or the single process; workers get the handle through ``workerinput``) ->
collection (cluster tests marked e2e, moved last, skipped without a cluster, deselected in an
offline run) -> failure diagnostics (makereport) -> cluster stopped (unconfigure).
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

import pytest

from pytest_codelab import options
from pytest_codelab.deploy.inputs import check_inputs, fit_line
from pytest_codelab.errors import GateError
from pytest_codelab.k8s.namespaces import install_sigterm_handler, new_run_id
from pytest_codelab.options import BY_NAME, NO_CLUSTER
from pytest_codelab.providers import get_provider
from pytest_codelab.providers.base import ClusterHandle
from pytest_codelab.report.failures import diagnose_failure
from pytest_codelab.report.plugin import ReportPlugin
from pytest_codelab.report.records import DESELECT_REASON
from pytest_codelab.run import RUN_KEY, ClusterRun, check_permissions, start_cluster
from pytest_codelab.settings import SETTINGS_KEY, header_lines, resolve

pytest_plugins = [
    "pytest_codelab.fixtures.config",
    "pytest_codelab.fixtures.session",
    "pytest_codelab.fixtures.handles",
]

MARKERS = (
    "cluster: needs a Kubernetes cluster (auto-marked e2e; skipped without --codelab-cluster)",
    "e2e: runs against the cluster under test; run after offline tests",
    "disruptive: breaks things on purpose; only in a gate-created namespace unless "
    "--codelab-allow-disruptive",
    "offline: needs no cluster",
    "requirement(text): the requirement of the seed deployment this test checks",
    "slow: takes more than a few seconds",
)
#: Fixtures that need a cluster; a test using any of them is auto-marked ``e2e``.
CLUSTER_FIXTURES = frozenset(
    {
        "codelab_cluster",
        "k8s_client",
        "core_v1",
        "apps_v1",
        "codelab_namespace",
        "codelab_stack",
        "pod_exec",
        "port_forward",
        "probe_pod",
    }
)
CLUSTER_MARKERS = ("cluster", "e2e", "disruptive")
#: Why a cluster test is deselected in an offline run.
OFFLINE = f"offline run ({BY_NAME['offline'].flag}): this test needs a cluster"
_RESTORE_SIGNALS = pytest.StashKey[Callable[[], None]]()
_PERMISSIONS_CHECKED = pytest.StashKey[bool]()


def pytest_addoption(parser: pytest.Parser) -> None:
    options.register(parser)


def _workerinput(config: pytest.Config) -> dict[str, Any] | None:
    return getattr(config, "workerinput", None)


def pytest_configure(config: pytest.Config) -> None:
    for marker in MARKERS:
        config.addinivalue_line("markers", marker)
    if config.getoption("help", default=False):
        return
    config.stash[SETTINGS_KEY] = resolve(config)
    workerinput = _workerinput(config)
    if workerinput is None:
        run = ClusterRun(run_id=new_run_id(), worker="main")
    else:
        run = ClusterRun(
            run_id=workerinput.get("codelab_run_id") or new_run_id(),
            worker=str(workerinput.get("workerid", "main")),
        )
        # The same list object travels back to the controller when the worker finishes.
        config.workeroutput["codelab_notes"] = run.notes  # type: ignore[attr-defined]
    config.stash[RUN_KEY] = run
    config.pluginmanager.register(
        ReportPlugin(config, controller=workerinput is None), "codelab-report"
    )
    config.pluginmanager.register(E2eLast(), "codelab-e2e-last")
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(XdistHooks(), "codelab-xdist")


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """Start the cluster once, before xdist starts its workers (they get the handle)."""
    config = session.config
    if SETTINGS_KEY not in config.stash:
        return
    config.stash[_RESTORE_SIGNALS] = install_sigterm_handler()
    settings, run = config.stash[SETTINGS_KEY], config.stash[RUN_KEY]
    workerinput = _workerinput(config)
    if workerinput is not None:
        if workerinput.get("codelab_handle"):
            run.handle = ClusterHandle.from_dict(workerinput["codelab_handle"])
        return
    check_inputs(settings)
    if settings.cluster is None:
        return
    try:
        run.provider = get_provider(settings)
        run.handle = start_cluster(run.provider, settings)
    except GateError as exc:
        raise pytest.UsageError(exc.message) from None


def _check_permissions(config: pytest.Config, nodeids: list[str]) -> None:
    """Once per run, where the tests are known: the selected suites' permissions."""
    run = config.stash.get(RUN_KEY, None)
    if run is None or run.handle is None or _workerinput(config) is not None:
        return
    if config.stash.get(_PERMISSIONS_CHECKED, False):
        return
    config.stash[_PERMISSIONS_CHECKED] = True
    try:
        check_permissions(run.handle, config.stash[SETTINGS_KEY], nodeids)
    except GateError as exc:
        raise pytest.UsageError(exc.message) from None


def pytest_collection_finish(session: pytest.Session) -> None:
    """Without xdist: the preflight's permissions, for the tests selected."""
    _check_permissions(session.config, [item.nodeid for item in session.items])


class XdistHooks:
    """Hooks that exist only with pytest-xdist: hand the run to workers, collect notes."""

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        """With xdist the controller collects nothing: the first worker's ids say which
        tests run (every worker collects the same)."""
        _check_permissions(node.config, list(ids))

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        run = node.config.stash[RUN_KEY]
        node.workerinput["codelab_run_id"] = run.run_id
        if run.handle is not None:
            node.workerinput["codelab_handle"] = run.handle.to_dict()

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: object) -> None:
        run = node.config.stash[RUN_KEY]
        for note in getattr(node, "workeroutput", {}).get("codelab_notes", []):
            run.note(note)


def pytest_report_header(config: pytest.Config) -> list[str]:
    if SETTINGS_KEY not in config.stash:
        return []
    settings = config.stash[SETTINGS_KEY]
    lines = header_lines(settings)
    lines.append(f"codelab: {fit_line(settings)}")
    if settings.waive:
        lines.append(
            f"codelab: waived promises (accepted as not checked): {', '.join(settings.waive)}"
        )
    handle = config.stash[RUN_KEY].handle
    if handle is not None:
        lines.append(
            f"codelab: cluster {handle.name}: kubeconfig {handle.kubeconfig}, "
            f"context {handle.context or '-'}, ingress {handle.ingress_url or '-'}"
        )
    return lines


def is_cluster_test(item: pytest.Item) -> bool:
    """Uses a cluster fixture (directly or through another fixture) or a cluster marker."""
    if any(item.get_closest_marker(name) for name in CLUSTER_MARKERS):
        return True
    return bool(CLUSTER_FIXTURES.intersection(getattr(item, "fixturenames", ())))


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark cluster tests e2e (before ``-m`` selection sees them); skip them without a cluster,
    deselect them in an offline run (which asked for none: the report says so)."""
    if SETTINGS_KEY not in config.stash:
        return
    settings = config.stash[SETTINGS_KEY]
    cluster_items = [item for item in items if is_cluster_test(item)]
    for item in cluster_items:
        item.add_marker(pytest.mark.e2e)
        if settings.cluster is None:
            item.add_marker(pytest.mark.skip(reason=NO_CLUSTER))
    if settings.offline and cluster_items:
        for item in cluster_items:
            item.stash[DESELECT_REASON] = OFFLINE
        config.hook.pytest_deselected(items=cluster_items)
        deselected = {id(item) for item in cluster_items}
        items[:] = [item for item in items if id(item) not in deselected]


class E2eLast:
    """Moves e2e tests after the offline ones, after every other plugin has reordered."""

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        offline = [item for item in items if item.get_closest_marker("e2e") is None]
        e2e = [item for item in items if item.get_closest_marker("e2e") is not None]
        items[:] = offline + e2e


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """On failure of a test in a cluster namespace, save what the namespace looked like."""
    report = yield
    if (
        report.failed
        and report.when in ("setup", "call")
        and RUN_KEY in item.config.stash
        and "codelab_namespace" in getattr(item, "fixturenames", ())
    ):
        diagnose_failure(item, report)
    return report


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    if RUN_KEY not in config.stash or _workerinput(config) is not None:
        return
    notes = config.stash[RUN_KEY].notes
    if notes:
        terminalreporter.write_sep("-", "codelab")
        for note in notes:
            terminalreporter.write_line(note)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Stop what this process started: the cluster (if it started it), signal handlers."""
    restore = config.stash.get(_RESTORE_SIGNALS, None)
    if restore is not None:
        restore()
    run = config.stash.get(RUN_KEY, None)
    if run is None or run.provider is None or _workerinput(config) is not None:
        return
    provider, run.provider = run.provider, None
    try:
        provider.stop()
    except GateError as exc:
        config.get_terminal_writer().line(f"codelab: stopping the cluster failed: {exc.message}")
