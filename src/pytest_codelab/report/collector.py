"""What a run did, gathered for the gate report.

``ReportCollector`` gathers each test's outcome with the reason (skip reason, first line of the
failure), the requirements it checks (the ``requirement`` marker, carried in ``user_properties``
so that it survives xdist), the cluster and Kubernetes version tested, the effective settings
(never secrets: Settings holds none, URLs lose their user info), and the load runs tests
recorded (:mod:`pytest_codelab.report.records`), and the tests that were deselected (they did
not run, but the promises they carry must say so). ``assessment()`` gives each promise of the guide
its status and ``verdict()`` the run's (:mod:`pytest_codelab.report.verdict`). ``data()`` is what
the page and its JSON twin show (:mod:`pytest_codelab.report.page`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pytest_codelab.report.records import LOAD_PROPERTY, MARKERS_PROPERTY, REQUIREMENT_PROPERTY
from pytest_codelab.report.verdict import Assessment, assess, verdict
from pytest_codelab.settings import Settings, display

MESSAGE_LIMIT = 4000
OUTCOME_ORDER = ("failed", "error", "xpassed", "passed", "xfailed", "skipped")


@dataclass
class TestEntry:
    """One test id, its phases merged into one outcome."""

    nodeid: str
    outcome: str = "passed"
    duration: float = 0.0
    reason: str = ""
    message: str = ""
    requirements: list[str] = field(default_factory=list)
    markers: list[str] = field(default_factory=list)
    load: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _longrepr_message(report: pytest.TestReport | pytest.CollectReport) -> str:
    """The failure message: the crash message when pytest has one, else the text."""
    longrepr = report.longrepr
    crash = getattr(longrepr, "reprcrash", None)
    message = getattr(crash, "message", None)
    if not message:
        message = str(longrepr) if longrepr is not None else ""
    return message.strip()[:MESSAGE_LIMIT]


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        text = str(longrepr[2])
    else:
        text = str(longrepr or "")
    return text.removeprefix("Skipped: ").strip()


def first_line(text: str, limit: int = 300) -> str:
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    return line if len(line) <= limit else line[: limit - 1] + "…"


@dataclass
class ClusterInfo:
    """What was tested (no credentials: the kubeconfig's path only)."""

    name: str = "none"
    context: str = "-"
    kubeconfig: str = "-"
    ingress_url: str = "-"
    kubernetes_version: str = "-"
    namespace: str = "-"


class ReportCollector:
    """Everything the report shows; ``add_test`` per TestReport, ``data()`` at the end."""

    def __init__(
        self, settings: Settings | None = None, *, run_id: str = "", started: float | None = None
    ) -> None:
        self.settings = settings
        self.run_id = run_id
        self.started = started if started is not None else time.time()
        self.finished: float | None = None
        self.exit_status: int | None = None
        self.cluster = ClusterInfo()
        self.tests: dict[str, TestEntry] = {}
        #: Tests that were collected but deselected (-k, -m, --codelab-offline): not run.
        self.deselected: dict[str, TestEntry] = {}
        self.load_runs: dict[str, dict[str, Any]] = {}
        self._load_tests: dict[str, list[str]] = {}
        self.notes: list[str] = []

    # input -----------------------------------------------------------------------------

    def set_cluster(
        self,
        *,
        name: str,
        context: str | None,
        kubeconfig: str | Path | None,
        ingress_url: str | None,
        kubernetes_version: str | None,
        namespace: str | None = None,
    ) -> None:
        self.cluster = ClusterInfo(
            name=name,
            context=context or "-",
            kubeconfig=str(kubeconfig or "-"),
            ingress_url=display("ingress_url", ingress_url),
            kubernetes_version=kubernetes_version or "unknown",
            namespace=namespace or "-",
        )

    def add_note(self, text: str) -> None:
        self.notes.append(text)

    def add_test(self, report: pytest.TestReport) -> None:
        """Merge one phase (setup/call/teardown) of a test into its entry."""
        entry = self.tests.setdefault(report.nodeid, TestEntry(report.nodeid))
        entry.duration += float(getattr(report, "duration", 0.0) or 0.0)
        for key, value in getattr(report, "user_properties", ()) or ():
            if key == REQUIREMENT_PROPERTY and value not in entry.requirements:
                entry.requirements.append(str(value))
            elif key == MARKERS_PROPERTY:
                entry.markers = str(value).split(",")
            elif key == LOAD_PROPERTY and value not in entry.load:
                entry.load.append(str(value))
                self._load_tests.setdefault(str(value), []).append(report.nodeid)
        outcome, reason, message = self._phase_outcome(report)
        if outcome is None:
            return
        if OUTCOME_ORDER.index(outcome) < OUTCOME_ORDER.index(entry.outcome) or (
            entry.outcome == "passed" and outcome != "passed"
        ):
            entry.outcome, entry.reason, entry.message = outcome, reason, message

    @staticmethod
    def _phase_outcome(report: pytest.TestReport) -> tuple[str | None, str, str]:
        wasxfail = getattr(report, "wasxfail", None)
        if report.when == "call":
            if wasxfail is not None:
                if report.skipped:
                    return "xfailed", str(wasxfail) or "expected to fail", ""
                return "xpassed", str(wasxfail), ""
            if report.passed:
                return "passed", "", ""
            if report.skipped:
                reason = _skip_reason(report)
                return "skipped", reason, reason
            message = _longrepr_message(report)
            return "failed", first_line(message), message
        if report.skipped:  # setup skip (skip marker, pytest.skip in a fixture)
            if wasxfail is not None:
                return "xfailed", str(wasxfail), ""
            reason = _skip_reason(report)
            return "skipped", reason, reason
        if report.failed:
            message = _longrepr_message(report)
            return "error", f"{report.when} error: {first_line(message)}", message
        return None, "", ""

    def add_deselected(self, nodeid: str, requirements: list[str], reason: str) -> None:
        """A test that was collected and deselected: it checks nothing, and says why."""
        if nodeid not in self.tests:
            self.deselected[nodeid] = TestEntry(
                nodeid, outcome="deselected", reason=reason, requirements=list(requirements)
            )

    def add_collect_error(self, report: pytest.CollectReport) -> None:
        if report.failed:
            message = _longrepr_message(report)
            entry = self.tests.setdefault(report.nodeid, TestEntry(report.nodeid or "<collection>"))
            entry.outcome = "error"
            entry.reason = f"collection error: {first_line(message)}"
            entry.message = message

    def add_load_run(
        self, record: Mapping[str, Any] | Path | str, nodeid: str | None = None
    ) -> None:
        """A load record (a path to write_load_record's JSON, or its data) and its test."""
        key = str(record) if isinstance(record, (str, Path)) else f"inline-{len(self.load_runs)}"
        if isinstance(record, Mapping):
            self.load_runs[key] = dict(record)
        if nodeid:
            self._load_tests.setdefault(key, [])
            if nodeid not in self._load_tests[key]:
                self._load_tests[key].append(nodeid)
        else:
            self._load_tests.setdefault(key, [])

    def finish(self, exit_status: int | None = None) -> None:
        self.finished = time.time()
        self.exit_status = exit_status

    # output ----------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(OUTCOME_ORDER, 0)
        for entry in self.tests.values():
            counts[entry.outcome] = counts.get(entry.outcome, 0) + 1
        counts["total"] = len(self.tests)
        return counts

    def assessment(self) -> Assessment:
        """Each promise of the guide with its status, from the tests that ran or did not."""
        waived = self.settings.waive if self.settings is not None else ()
        not_run = [e for nodeid, e in self.deselected.items() if nodeid not in self.tests]
        return assess([*self.tests.values(), *not_run], waived)

    def verdict(self, assessment: Assessment | None = None) -> str:
        """failed (a test failed, or the run broke off) > incomplete > passed."""
        counts = self.counts()
        bad = counts["failed"] + counts["error"] + counts["xpassed"]
        interrupted = self.exit_status not in (None, 0, 1, 5)
        return verdict(assessment or self.assessment(), tests_failed=bool(bad or interrupted))

    def requirements(self) -> list[dict[str, Any]]:
        """Each requirement with the worst outcome of its tests; ordered by section number,
        then by the order tests ran."""
        by_text: dict[str, list[TestEntry]] = {}
        for entry in self.tests.values():
            for text in entry.requirements:
                by_text.setdefault(text, []).append(entry)
        order = {text: i for i, text in enumerate(by_text)}
        out = []
        for text, entries in sorted(by_text.items(), key=lambda kv: _requirement_key(kv[0], order)):
            status = min((e.outcome for e in entries), key=OUTCOME_ORDER.index)
            if status == "xfailed":
                status = "skipped"
            if status == "skipped" and any(e.outcome == "passed" for e in entries):
                status = "passed"
            out.append(
                {
                    "text": text,
                    "status": status,
                    "tests": [
                        {"nodeid": e.nodeid, "outcome": e.outcome, "reason": e.reason}
                        for e in entries
                    ],
                }
            )
        return out

    def _load_data(self) -> list[dict[str, Any]]:
        runs = []
        for key, tests in self._load_tests.items():
            data = self.load_runs.get(key)
            if data is None:
                try:
                    data = json.loads(Path(key).read_text(encoding="utf-8"))
                except (OSError, ValueError) as exc:
                    data = {"title": Path(key).name, "error": f"cannot read {key}: {exc}"}
            runs.append({**data, "record": key, "tests": tests})
        for key, data in self.load_runs.items():
            if key not in self._load_tests:
                runs.append({**data, "record": key, "tests": []})
        return runs

    def data(self) -> dict[str, Any]:
        settings = []
        if self.settings is not None:
            for f in fields(self.settings):
                if f.name == "sources":
                    continue
                settings.append(
                    {
                        "name": f.name,
                        "value": display(f.name, getattr(self.settings, f.name)),
                        "source": str(self.settings.source(f.name)),
                    }
                )
        finished = self.finished or time.time()
        assessment = self.assessment()
        return {
            "schema": 1,
            "run_id": self.run_id,
            "generated": _iso(time.time()),
            "started": _iso(self.started),
            "duration": round(finished - self.started, 1),
            "verdict": self.verdict(assessment),
            "exit_status": self.exit_status,
            "counts": self.counts(),
            "cluster": self.cluster.__dict__,
            "settings": settings,
            "promises": [row.to_dict() for row in assessment.rows],
            "promise_counts": assessment.counts(),
            "waived": list(assessment.waived),
            "unmapped_requirements": [
                {"key": key, "tests": [c.to_dict() for c in checks]}
                for key, checks in assessment.unmapped.items()
            ],
            "requirements": self.requirements(),
            "tests": [e.to_dict() for e in sorted(self.tests.values(), key=lambda e: _test_key(e))],
            "deselected": [e.to_dict() for e in self.deselected.values()],
            "load_runs": self._load_data(),
            "notes": list(self.notes),
        }


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _requirement_key(text: str, order: Mapping[str, int]) -> tuple[Any, ...]:
    """Section numbers first ("5.10" after "5.9"), then first appearance."""
    head = text.split(":", 1)[0].split("/", 1)[0]
    section = [(0, int(p)) if p.isdigit() else (1, 0) for p in head.split(".")]
    return (section, order.get(text, 0))


def _test_key(entry: TestEntry) -> tuple[int, str]:
    return OUTCOME_ORDER.index(entry.outcome), entry.nodeid
