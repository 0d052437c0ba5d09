"""The pytest side of the report (registered by ``pytest_codelab.plugin``): annotates items,
feeds the collector on the controller, writes the report at session end and points pytest's
``--junitxml`` at ``<report dir>/junit.xml`` unless the user chose a path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from pytest_codelab.k8s import kube
from pytest_codelab.k8s.namespaces import run_namespaces
from pytest_codelab.k8s.waiting import Timeouts
from pytest_codelab.report.cleanup import clear_previous_outputs
from pytest_codelab.report.collector import ReportCollector
from pytest_codelab.report.page import JSON_NAME, ReportPaths, write_report
from pytest_codelab.report.records import annotate_item
from pytest_codelab.run import RUN_KEY
from pytest_codelab.settings import SETTINGS_KEY, Settings

JUNIT_NAME = "junit.xml"


def default_junitxml(config: pytest.Config, report_dir: Path) -> None:
    """Point pytest's --junitxml at ``<report_dir>/junit.xml`` unless the user chose a path.

    Must run before the junitxml plugin's own pytest_configure (a tryfirst configure hook).
    """
    option = config.option
    if getattr(option, "xmlpath", None) or hasattr(config, "workerinput"):
        return
    if not config.pluginmanager.has_plugin("junitxml"):
        return
    Path(report_dir).mkdir(parents=True, exist_ok=True)
    option.xmlpath = str(Path(report_dir) / JUNIT_NAME)


def kubernetes_version(kubeconfig: Path, context: str | None, timeout: float) -> str:
    """The API server's git version, or ``unknown (<why>)``; never raises."""
    try:
        api = kube.new_client(kubeconfig, context, retries=0)
        try:
            return str(client.VersionApi(api).get_code(_request_timeout=timeout).git_version)
        finally:
            api.close()
    except Exception as exc:  # the report must be written whatever the cluster does
        return f"unknown ({type(exc).__name__})"


class ReportPlugin:
    """Registered in every process; only the controller (or single process) collects."""

    def __init__(self, config: pytest.Config, *, controller: bool) -> None:
        self.config = config
        self.controller = controller
        self.settings: Settings = config.stash[SETTINGS_KEY]
        self.timeouts = Timeouts().scaled(self.settings.timeout_scale)
        self.collector: ReportCollector | None = None
        self.paths: ReportPaths | None = None
        if controller:
            if config.option.collectonly:  # nothing runs: no verdict to report
                return
            run = config.stash.get(RUN_KEY, None)
            self.collector = ReportCollector(self.settings, run_id=run.run_id if run else "")
            default_junitxml(config, self.settings.report_dir)
            clear_previous_outputs(Path(self.settings.report_dir))

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        for item in items:
            annotate_item(item)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if self.collector is not None:
            self.collector.add_test(report)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if self.collector is not None and report.failed:
            self.collector.add_collect_error(report)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.collector is None:
            return
        run = self.config.stash.get(RUN_KEY, None)
        if run is not None and run.handle is not None:
            handle = run.handle
            namespace = self.settings.namespace or f"{run_namespaces(run.run_id)} (ephemeral)"
            self.collector.set_cluster(
                name=handle.name,
                context=handle.context,
                kubeconfig=handle.kubeconfig,
                ingress_url=handle.ingress_url,
                kubernetes_version=kubernetes_version(
                    handle.kubeconfig, handle.context, self.timeouts.api
                ),
                namespace=namespace,
            )
            for note in run.notes:
                self.collector.add_note(note)
        self.collector.finish(int(exitstatus))
        try:
            self.paths = write_report(self.collector.data(), self.settings.report_dir)
        except OSError as exc:
            self.collector.add_note(f"report not written: {exc}")

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.paths is not None:
            terminalreporter.write_line(f"codelab report: {self.paths.html} (+ {JSON_NAME})")
