"""A status per promise of the guide, and the run's verdict from them.

Why here and not in the collector: the rules are the gate's contract with its reader and
must read as rules. A promise is

* **failed** when any of its tests failed or errored (an unexpected pass too);
* **passed** when at least one of its tests passed and none failed; tests of it that were
  skipped are listed as the part not checked;
* **not checked** when none of its tests ran (all skipped, deselected, or none collected),
  with the reasons they give;
* **waived** when not checked and the operator named it in ``--codelab-waive``.

The verdict is "failed" if any test failed (or the run broke off); else "incomplete" if a
promise that is not waived is not checked or had tests skipped; else "passed". A run never
passes while something it promises to check was not checked.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pytest_codelab.report.promises import PROMISES, Promise, marker_key, promise_for

PASSED, FAILED, NOT_CHECKED, WAIVED = "passed", "failed", "not checked", "waived"
FAILING_OUTCOMES = frozenset({"failed", "error", "xpassed"})
#: The reason of a promise no collected test carries.
NO_TEST = "no test of it ran: none was collected in this run"
REASON_LIMIT = 400


class Entry(Protocol):
    """What the assessment reads of a test (``collector.TestEntry``)."""

    nodeid: str
    outcome: str
    reason: str
    requirements: list[str]


@dataclass(frozen=True)
class Check:
    """One test's part in a promise: the requirement it carries and how it ended."""

    nodeid: str
    outcome: str
    reason: str
    requirement: str

    def to_dict(self) -> dict[str, str]:
        return dict(self.__dict__)


@dataclass
class PromiseRow:
    """One row of the report: a promise, its status and why."""

    promise: Promise
    checks: list[Check] = field(default_factory=list)
    status: str = NOT_CHECKED
    reason: str = ""

    @property
    def tests(self) -> list[Check]:
        """Each test once, though it may carry several of the promise's requirements."""
        return list({c.nodeid: c for c in self.checks}.values())

    @property
    def skipped(self) -> list[Check]:
        return [c for c in self.tests if c.outcome not in FAILING_OUTCOMES | {"passed"}]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.promise.id,
            "title": self.promise.title,
            "section": self.promise.section,
            "status": self.status,
            "reason": self.reason,
            "tests": [c.to_dict() for c in self.checks],
        }


@dataclass
class Assessment:
    """Every promise's row, the marker keys that match no promise, and what is missing."""

    rows: list[PromiseRow]
    unmapped: dict[str, list[Check]]
    waived: tuple[str, ...] = ()

    @property
    def not_checked(self) -> list[PromiseRow]:
        return [r for r in self.rows if r.status == NOT_CHECKED]

    @property
    def partly_checked(self) -> list[PromiseRow]:
        """Passed, but some of its tests were skipped (and it is not waived)."""
        return [
            r
            for r in self.rows
            if r.status == PASSED and r.skipped and r.promise.id not in self.waived
        ]

    @property
    def complete(self) -> bool:
        return not self.not_checked and not self.partly_checked

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys((PASSED, FAILED, NOT_CHECKED, WAIVED), 0)
        for row in self.rows:
            counts[row.status] += 1
        return counts


def assess(entries: Iterable[Entry], waived: Collection[str] = ()) -> Assessment:
    """Group the tests' requirement markers by promise and give each promise its status."""
    rows = {p.id: PromiseRow(p) for p in PROMISES}
    unmapped: dict[str, list[Check]] = {}
    for entry in entries:
        for text in entry.requirements:
            check = Check(entry.nodeid, entry.outcome, entry.reason, text)
            promise = promise_for(marker_key(text))
            if promise is None:
                unmapped.setdefault(marker_key(text), []).append(check)
                continue
            rows.setdefault(promise.id, PromiseRow(promise)).checks.append(check)
    for row in rows.values():
        row.status, row.reason = _status(row, row.promise.id in waived)
    return Assessment(list(rows.values()), unmapped, tuple(waived))


def _status(row: PromiseRow, waived: bool) -> tuple[str, str]:
    failing = [c for c in row.tests if c.outcome in FAILING_OUTCOMES]
    if failing:
        return FAILED, _clip(f"{failing[0].nodeid}: {failing[0].reason or failing[0].outcome}")
    passed = sum(c.outcome == "passed" for c in row.tests)
    if passed:
        skipped = row.skipped
        if not skipped:
            return PASSED, f"{passed} passed"
        return PASSED, _clip(f"{passed} passed, {len(skipped)} not run: {_reasons(skipped)}")
    why = _reasons(row.tests) if row.checks else NO_TEST
    if waived:
        return WAIVED, _clip(f"waived (--codelab-waive); not checked: {why}")
    return NOT_CHECKED, _clip(why)


def _reasons(checks: Sequence[Check]) -> str:
    """Distinct reasons, each once, with how many tests gave it."""
    counted: dict[str, int] = {}
    for check in checks:
        reason = check.reason or check.outcome
        counted[reason] = counted.get(reason, 0) + 1
    return "; ".join(f"{r} (x{n})" if n > 1 else r for r, n in counted.items())


def _clip(text: str) -> str:
    return text if len(text) <= REASON_LIMIT else text[: REASON_LIMIT - 1] + "…"


def verdict(assessment: Assessment, *, tests_failed: bool) -> str:
    """failed > incomplete > passed (see the module docstring)."""
    if tests_failed:
        return "failed"
    return "passed" if assessment.complete else "incomplete"
