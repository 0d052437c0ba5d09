"""A status per promise and the run's verdict (pytest_codelab.report.verdict), through real
pytest sessions (pytester) with the plugin as installed: incomplete when a promise is not
checked, --codelab-require-all failing such a run, --codelab-waive, failed before all."""

from __future__ import annotations

import json
import re
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

import pytest

from pytest_codelab.options import NO_CLUSTER
from pytest_codelab.report.promises import PROMISES, Promise
from pytest_codelab.report.verdict import NO_TEST, assess, verdict

VPA_SKIP = "VerticalPodAutoscaler is not served by this cluster: CRD not installed"


def _key(promise: Promise) -> str:
    return promise.keys[0] if promise.keys else f"5.3/{promise.id}"


def _name(promise: Promise) -> str:
    return "test_" + re.sub(r"[^a-z0-9]+", "_", promise.id)


def promise_tests(
    skip: Collection[str] = (), fail: Collection[str] = (), cluster: Collection[str] = ()
) -> str:
    """One test per promise of the guide, carrying its requirement: passing, skipping with
    VPA_SKIP, failing, or needing a cluster (a cluster fixture), by promise id."""
    lines = ["import pytest", ""]
    for promise in PROMISES:
        args = "core_v1" if promise.id in cluster else ""
        body = "pass"
        if promise.id in skip:
            body = f"pytest.skip({VPA_SKIP!r})"
        elif promise.id in fail:
            body = "assert 1 + 1 == 3, 'broken on purpose'"
        lines += [
            f"@pytest.mark.requirement({_key(promise) + ': checked here'!r})",
            f"def {_name(promise)}({args}):",
            f"    {body}",
            "",
        ]
    return "\n".join(lines)


def _report(pytester: pytest.Pytester, folder: str = "rep") -> dict[str, Any]:
    data: dict[str, Any] = json.loads((pytester.path / folder / "report.json").read_text())
    return data


def _row(data: dict[str, Any], promise_id: str) -> dict[str, Any]:
    row: dict[str, Any] = next(p for p in data["promises"] if p["id"] == promise_id)
    return row


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest("-p", "no:cacheprovider", "--codelab-report-dir", "rep", *args)


# ----------------------------------------------------------------- acceptance


def test_every_promise_checked_and_passed_is_a_passed_run(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_gate=promise_tests())
    result = _run(pytester, "--codelab-require-all")
    assert result.ret == pytest.ExitCode.OK
    data = _report(pytester)
    assert data["verdict"] == "passed"
    assert {p["status"] for p in data["promises"]} == {"passed"}
    assert len(data["promises"]) == len(PROMISES)
    result.stdout.fnmatch_lines([f"codelab verdict: passed ({len(PROMISES)} promises*"])
    page = (pytester.path / "rep" / "report.html").read_text()
    assert "<h1>PASSED</h1>" in page and 'class="banner passed"' in page


def test_a_promise_whose_only_test_skipped_makes_the_run_incomplete(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_gate=promise_tests(skip={"vpa"}))
    result = _run(pytester)
    assert result.ret == pytest.ExitCode.OK  # without --codelab-require-all: pytest's own exit
    data = _report(pytester)
    assert data["verdict"] == "incomplete"
    vpa = _row(data, "vpa")
    assert vpa["status"] == "not checked" and vpa["reason"] == VPA_SKIP
    assert [t["outcome"] for t in vpa["tests"]] == ["skipped"]
    assert data["promise_counts"]["not checked"] == 1
    result.stdout.fnmatch_lines(
        ["codelab verdict: incomplete (*1 not checked)", f"  not checked: vpa: {VPA_SKIP}"]
    )
    page = (pytester.path / "rep" / "report.html").read_text()
    assert "<h1>INCOMPLETE</h1>" in page and VPA_SKIP in page
    assert 'class="badge b-not-checked"' in page


def test_require_all_fails_a_run_with_a_promise_not_checked(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_gate=promise_tests(skip={"vpa"}))
    result = _run(pytester, "--codelab-require-all")
    result.assert_outcomes(passed=len(PROMISES) - 1, skipped=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            f"  not checked: vpa: {VPA_SKIP}",
            "codelab: --codelab-require-all: the run fails, 1 promise(s) not checked: vpa",
        ]
    )
    data = _report(pytester)
    assert data["verdict"] == "incomplete" and data["exit_status"] == 1


def test_a_waived_promise_is_shown_waived_and_the_run_passes(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_gate=promise_tests(skip={"vpa"}))
    result = _run(pytester, "--codelab-require-all", "--codelab-waive", "vpa")
    assert result.ret == pytest.ExitCode.OK
    data = _report(pytester)
    assert data["verdict"] == "passed" and data["waived"] == ["vpa"]
    vpa = _row(data, "vpa")
    assert vpa["status"] == "waived" and VPA_SKIP in vpa["reason"]
    result.stdout.fnmatch_lines(
        ["codelab: waived promises (accepted as not checked): vpa", "  waived: vpa: waived*"]
    )
    page = (pytester.path / "rep" / "report.html").read_text()
    assert "<b>waived</b>vpa" in page  # in the report's header


def test_an_unknown_waive_id_is_one_usage_error_line(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_gate=promise_tests())
    monkeypatch.setenv("CODELAB_WAIVE", "vpa,no-such-promise")
    result = _run(pytester)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.stderr.lines if line.strip()]
    assert len(errors) == 1, errors
    assert errors[0].startswith(
        "ERROR: --codelab-waive: invalid value 'no-such-promise' (from env CODELAB_WAIVE); "
        "valid: probes, self-healing,"
    )
    assert "autoscaling/auth-service-hpa" in errors[0]


def test_a_failure_beats_incomplete(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_gate=promise_tests(skip={"vpa"}, fail={"tls"}))
    result = _run(pytester, "--codelab-require-all")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    data = _report(pytester)
    assert data["verdict"] == "failed"
    assert _row(data, "tls")["status"] == "failed"
    assert "broken on purpose" in _row(data, "tls")["reason"]
    assert _row(data, "vpa")["status"] == "not checked"


def test_without_a_cluster_cluster_promises_are_not_checked(pytester: pytest.Pytester) -> None:
    """Plain pytest without a cluster: cluster tests skip as before, the verdict is not
    passed; --codelab-offline deselects them, and the report says so."""
    pytester.makepyfile(test_gate=promise_tests(cluster={"undo", "backup-restore"}))
    result = _run(pytester)
    assert result.ret == pytest.ExitCode.OK
    data = _report(pytester)
    assert data["verdict"] == "incomplete"
    undo = _row(data, "undo")
    assert (undo["status"], undo["reason"]) == ("not checked", NO_CLUSTER)

    result = _run(pytester, "--codelab-offline")
    result.assert_outcomes(passed=len(PROMISES) - 2, deselected=2)
    data = _report(pytester)
    assert data["verdict"] == "incomplete"
    undo = _row(data, "undo")
    assert undo["status"] == "not checked"
    assert undo["reason"] == "offline run (--codelab-offline): this test needs a cluster"
    assert [t["outcome"] for t in undo["tests"]] == ["deselected"]


def test_deselected_tests_reach_the_report_from_xdist_workers(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_gate=promise_tests())
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-n", "2", "--codelab-report-dir", "rep", "-k", "not vpa"
    )
    assert result.ret == pytest.ExitCode.OK
    vpa = _row(_report(pytester), "vpa")
    assert vpa["status"] == "not checked"
    assert vpa["reason"] == "deselected by -k 'not vpa'"


def test_tests_without_requirements_leave_the_accounting_alone(
    pytester: pytest.Pytester,
) -> None:
    """The plugin's own tests run beside the suites in CI: they carry no promise."""
    pytester.makepyfile(
        test_gate=promise_tests(),
        test_plugin_own="def test_a():\n    pass\n\ndef test_b():\n    assert True\n",
    )
    result = _run(pytester, "--codelab-require-all")
    assert result.ret == pytest.ExitCode.OK
    data = _report(pytester)
    assert data["verdict"] == "passed" and data["unmapped_requirements"] == []


def test_a_marker_matching_no_promise_is_reported(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_gate=promise_tests(),
        test_typo="import pytest\n\n"
        "@pytest.mark.requirement('5.1/probe: a typo')\ndef test_typo():\n    pass\n",
    )
    result = _run(pytester)
    data = _report(pytester)
    assert data["unmapped_requirements"] == [
        {
            "key": "5.1/probe",
            "tests": [
                {
                    "nodeid": "test_typo.py::test_typo",
                    "outcome": "passed",
                    "reason": "",
                    "requirement": "5.1/probe: a typo",
                }
            ],
        }
    ]
    result.stdout.fnmatch_lines(["  unmapped: requirement '5.1/probe' matches no promise*"])


# ----------------------------------------------------------------- the rules


@dataclass
class Entry:
    nodeid: str
    outcome: str
    reason: str = ""
    requirements: list[str] = field(default_factory=list)


def _status(entries: list[Entry], waived: Collection[str] = ()) -> dict[str, tuple[str, str]]:
    return {r.promise.id: (r.status, r.reason) for r in assess(entries, waived).rows}


def test_statuses_follow_the_rules() -> None:
    entries = [
        Entry("a", "passed", requirements=["5.1/probes: x"]),
        Entry("b", "skipped", "no VPA", ["6/vpa: x"]),
        Entry("c", "passed", requirements=["5.4/undo: x"]),
        Entry("d", "error", "setup error: boom", ["5.4/undo: y"]),
        Entry("e", "passed", requirements=["2.8/resources"]),
        Entry("f", "skipped", "CRD: shape only", ["2.8/schema"]),
        Entry("g", "xfailed", "known", ["7/backup: x"]),
        Entry("h", "passed", requirements=["5.4/rolling-update: x", "5.4/history: y"]),
    ]
    status = _status(entries)
    assert status["probes"] == ("passed", "1 passed")
    assert status["vpa"] == ("not checked", "no VPA")
    assert status["undo"] == ("failed", "d: setup error: boom")
    assert status["best-practices"] == ("passed", "1 passed, 1 not run: CRD: shape only")
    assert status["backup-restore"] == ("not checked", "known")
    assert status["autoscaling/auth-service-hpa"] == ("not checked", NO_TEST)
    assert status["figures"] == ("not checked", NO_TEST)
    assert status["rolling-update"] == ("passed", "1 passed")  # one test, two requirements


def test_partly_skipped_is_incomplete_unless_waived() -> None:
    entries = [
        Entry(f"t{i}", "passed", requirements=[f"{_key(p)}: x"]) for i, p in enumerate(PROMISES)
    ]
    assert verdict(assess(entries), tests_failed=False) == "passed"
    partly = [*entries, Entry("skip", "skipped", "later", ["2.8/schema"])]
    assert verdict(assess(partly), tests_failed=False) == "incomplete"
    assert verdict(assess(partly, {"best-practices"}), tests_failed=False) == "passed"
    assert verdict(assess(partly), tests_failed=True) == "failed"


def test_waiving_never_hides_a_failure_nor_a_pass() -> None:
    entries = [Entry("a", "failed", "boom", ["6/vpa: x"]), Entry("b", "passed", "", ["7/backup"])]
    status = _status(entries, waived={"vpa", "backup-restore", "tls"})
    assert status["vpa"] == ("failed", "a: boom")
    assert status["backup-restore"] == ("passed", "1 passed")
    assert status["tls"][0] == "waived" and NO_TEST in status["tls"][1]


def test_an_hpa_with_a_test_but_outside_the_guide_gets_a_row() -> None:
    rows = assess([Entry("a", "passed", requirements=["5.3/autoscaling/llm-proxy-hpa: x"])]).rows
    assert [r.promise.id for r in rows if r.promise.id.startswith("autoscaling/")] == [
        "autoscaling/gateway-hpa",
        "autoscaling/agent-runtime-hpa",
        "autoscaling/auth-service-hpa",
        "autoscaling/llm-proxy-hpa",
    ]
