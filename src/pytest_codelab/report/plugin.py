"""The pytest side of the report (registered by ``pytest_codelab.plugin``): annotates items,
feeds the collector on the controller (deselected tests too, from xdist workers as well),
writes the report at session end, gives the verdict per promise of the guide in the terminal
(and fails the run under ``--codelab-require-all`` when a promise was not checked), and points
pytest's ``--junitxml`` at ``<report dir>/junit.xml`` unless the user chose a path."""

from __future__ import annotations

from collections.abc import Generator, Sequence
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
from pytest_codelab.report.promises import BY_ID, unknown_ids
from pytest_codelab.report.records import DESELECT_REASON, annotate_item, requirement_texts
from pytest_codelab.report.scrub import scrub_report
from pytest_codelab.report.verdict import Assessment, PromiseRow
from pytest_codelab.run import RUN_KEY
from pytest_codelab.settings import SETTINGS_KEY, Settings, bad_value

JUNIT_NAME = "junit.xml"
#: Where an xdist worker hands its deselected tests to the controller.
DESELECTED_OUTPUT = "codelab_deselected"
REQUIRE_ALL_FLAG = "--codelab-require-all"


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


def check_waivers(settings: Settings) -> None:
    """--codelab-waive names promises: an unknown id is a usage error listing the valid ones."""
    unknown = unknown_ids(settings.waive)
    if unknown:
        raise bad_value(settings, "waive", ",".join(unknown), ", ".join(BY_ID))


def deselect_reason(config: pytest.Config, item: pytest.Item) -> str:
    """Why ``item`` was deselected: the gate's own reason, else the selection options."""
    reason = item.stash.get(DESELECT_REASON, None)
    if reason:
        return reason
    chosen = [
        f"{flag} {value!r}"
        for flag, value in (
            ("-m", getattr(config.option, "markexpr", "")),
            ("-k", getattr(config.option, "keyword", "")),
        )
        if value
    ]
    return "deselected" + (f" by {' '.join(chosen)}" if chosen else "")


def promise_line(row: PromiseRow) -> str:
    """One terminal line for a promise: status, id, and why (the title is in the report)."""
    return f"  {row.status}: {row.promise.id}: {row.reason}"


class ReportPlugin:
    """Registered in every process; only the controller (or single process) collects."""

    def __init__(self, config: pytest.Config, *, controller: bool) -> None:
        self.config = config
        self.controller = controller
        self.settings: Settings = config.stash[SETTINGS_KEY]
        check_waivers(self.settings)
        self.timeouts = Timeouts().scaled(self.settings.timeout_scale)
        self.collector: ReportCollector | None = None
        self.paths: ReportPaths | None = None
        self.assessment: Assessment | None = None
        self.verdict = ""
        self._worker_deselected: list[dict[str, Any]] | None = None
        workeroutput = getattr(config, "workeroutput", None)
        if workeroutput is not None:  # travels back to the controller when the worker ends
            self._worker_deselected = workeroutput.setdefault(DESELECTED_OUTPUT, [])
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

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        """Outermost, so after the diagnostics: no generated secret value in the report."""
        report = yield
        run = self.config.stash.get(RUN_KEY, None)
        if run is not None and run.secrets:
            scrub_report(report, run.scrub)
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if self.collector is not None:
            self.collector.add_test(report)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if self.collector is not None and report.failed:
            self.collector.add_collect_error(report)

    def pytest_deselected(self, items: Sequence[pytest.Item]) -> None:
        """Deselected tests do not run: the promises they carry are not checked, and say why."""
        for item in items:
            texts, reason = requirement_texts(item), deselect_reason(self.config, item)
            if self.collector is not None:
                self.collector.add_deselected(item.nodeid, texts, reason)
            elif self._worker_deselected is not None:
                self._worker_deselected.append(
                    {"nodeid": item.nodeid, "requirements": texts, "reason": reason}
                )

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: object) -> None:
        """xdist: the tests a worker deselected (every worker deselects the same ones)."""
        if self.collector is None:
            return
        for entry in getattr(node, "workeroutput", {}).get(DESELECTED_OUTPUT, []):
            self.collector.add_deselected(
                str(entry["nodeid"]), list(entry["requirements"]), str(entry["reason"])
            )

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
        self.assessment = self.collector.assessment()
        if self.settings.require_all and self.assessment.not_checked and exitstatus == 0:
            session.exitstatus = exitstatus = pytest.ExitCode.TESTS_FAILED
        self.collector.finish(int(exitstatus))
        self.verdict = self.collector.verdict(self.assessment)
        try:
            self.paths = write_report(self.collector.data(), self.settings.report_dir)
        except OSError as exc:
            self.collector.add_note(f"report not written: {exc}")

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.assessment is not None:
            self._write_verdict(terminalreporter, self.assessment)
        if self.paths is not None:
            terminalreporter.write_line(f"codelab report: {self.paths.html} (+ {JSON_NAME})")

    def _write_verdict(self, terminalreporter: Any, assessment: Assessment) -> None:
        """The verdict line; then, in a gate run (some test carries a promise, or
        --codelab-require-all), one line per promise that did not simply pass."""
        counts = ", ".join(f"{n} {status}" for status, n in assessment.counts().items() if n)
        line = (
            f"codelab verdict: {self.verdict} ({len(assessment.rows)} promises of the "
            f"deployment guide: {counts})"
        )
        gate_run = any(row.checks for row in assessment.rows) or bool(assessment.unmapped)
        if not (gate_run or self.settings.require_all):
            terminalreporter.write_line(f"{line}; no test of this run checks one")
            return
        terminalreporter.write_sep("-", f"codelab verdict: {self.verdict}")
        terminalreporter.write_line(line)
        for row in assessment.rows:
            if row.status != "passed" or row in assessment.partly_checked:
                terminalreporter.write_line(promise_line(row))
        for key, checks in assessment.unmapped.items():
            terminalreporter.write_line(
                f"  unmapped: requirement {key!r} matches no promise of the guide (tests: "
                f"{', '.join(c.nodeid for c in checks[:3])}); see report/promises.py"
            )
        missing = assessment.not_checked
        if self.settings.require_all and missing:
            terminalreporter.write_line(
                f"codelab: {REQUIRE_ALL_FLAG}: the run fails, {len(missing)} promise(s) not "
                f"checked: {', '.join(r.promise.id for r in missing)}"
            )
