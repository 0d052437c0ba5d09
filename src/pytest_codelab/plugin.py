"""pytest hooks of the gate (entry point ``codelab``); the logic lives in the other modules.

Flow: options -> settings (configure) -> cluster (sessionstart, once per run: the xdist
controller or the single process; workers get the handle through ``workerinput``) ->
collection (cluster tests marked e2e, moved last, skipped without a cluster) -> failure
diagnostics (makereport) -> cluster stopped (unconfigure).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import pytest

from pytest_codelab import diagnostics, options
from pytest_codelab.cluster import RUN_KEY, ClusterHandle, ClusterRun, get_provider, start_cluster
from pytest_codelab.errors import GateError, one_line
from pytest_codelab.namespaces import install_sigterm_handler, new_run_id
from pytest_codelab.report import ReportPlugin
from pytest_codelab.settings import SETTINGS_KEY, Settings, header_lines, resolve

pytest_plugins = ["pytest_codelab.fixtures"]

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
NO_CLUSTER = "no cluster: pass --codelab-cluster=existing|local (or CODELAB_CLUSTER)"
_RESTORE_SIGNALS = pytest.StashKey[Callable[[], None]]()
_SEEN_FAILURES = pytest.StashKey[dict[str, Path]]()


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
    config.stash[_SEEN_FAILURES] = {}
    config.pluginmanager.register(
        ReportPlugin(config, controller=workerinput is None), "codelab-report"
    )
    config.pluginmanager.register(E2eLast(), "codelab-e2e-last")
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(XdistHooks(), "codelab-xdist")


def _validate_inputs(settings: Settings) -> None:
    """Load manifests and values once up front so a bad file is one line, not N errors.

    Only when they matter: a cluster run, or files the user named (the bundled ones are
    checked by the package's own tests).
    """
    if settings.cluster is None and settings.manifests is None and settings.values is None:
        return
    from pytest_codelab.manifests import ManifestError, load_manifests
    from pytest_codelab.resources import bundled_path
    from pytest_codelab.values import ValuesError, load_values

    try:
        load_manifests(settings.manifests or bundled_path("manifests"))
        load_values(settings.profile, settings.values)
    except (ManifestError, ValuesError, FileNotFoundError) as exc:
        raise pytest.UsageError(one_line(str(exc))) from None


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
    _validate_inputs(settings)
    if settings.cluster is None:
        return
    try:
        run.provider = get_provider(settings)
        run.handle = start_cluster(run.provider, settings)
    except GateError as exc:
        raise pytest.UsageError(exc.message) from None


class XdistHooks:
    """Hooks that exist only with pytest-xdist: hand the run to workers, collect notes."""

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
    lines = header_lines(config.stash[SETTINGS_KEY])
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
    """Mark cluster tests e2e (before ``-m`` selection sees them); skip them without a cluster."""
    if SETTINGS_KEY not in config.stash:
        return
    no_cluster = config.stash[SETTINGS_KEY].cluster is None
    for item in items:
        if is_cluster_test(item):
            item.add_marker(pytest.mark.e2e)
            if no_cluster:
                item.add_marker(pytest.mark.skip(reason=NO_CLUSTER))


class E2eLast:
    """Moves e2e tests after the offline ones, after every other plugin has reordered."""

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        offline = [item for item in items if item.get_closest_marker("e2e") is None]
        e2e = [item for item in items if item.get_closest_marker("e2e") is not None]
        items[:] = offline + e2e


def report_dir_for(base: Path, nodeid: str) -> Path:
    """A folder name for a test id: readable, filesystem-safe, unique."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid).strip("_")[:120]
    digest = hashlib.sha1(nodeid.encode()).hexdigest()[:8]
    return base / f"{safe}-{digest}"


def _diagnose(item: pytest.Item, report: pytest.TestReport) -> None:
    run: ClusterRun = item.config.stash[RUN_KEY]
    if run.namespace is None or run.api is None or run.handle is None:
        return
    seen = item.config.stash[_SEEN_FAILURES]
    key = f"{run.namespace.name}:{report.when}:{hash(str(report.longrepr))}"
    if key in seen:  # the same cached fixture error again: point at the first collection
        report.sections.append(("codelab diagnostics", f"see {seen[key]}"))
        return
    dest = report_dir_for(item.config.stash[SETTINGS_KEY].report_dir, item.nodeid)
    from kubernetes import client

    try:
        index = diagnostics.collect(
            client.CoreV1Api(run.api),
            run.namespace.name,
            dest,
            kubeconfig=str(run.handle.kubeconfig),
            context=run.handle.context,
        )
    except Exception as exc:  # diagnostics must never hide the real failure
        report.sections.append(("codelab diagnostics", f"collection failed: {one_line(str(exc))}"))
        return
    seen[key] = dest
    report.sections.append(
        ("codelab diagnostics", f"written to {dest}\n{index.read_text(encoding='utf-8')}")
    )


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
        _diagnose(item, report)
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
