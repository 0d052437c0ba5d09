"""No generated secret value in a test's report: its traceback (with ``--showlocals``, the
locals), captured output and logs, report sections and recorded properties.

Why at the report's making: every writer downstream (the JUnit XML, the gate report, the
terminal, xdist's transfer to the controller) takes the report as it is made, so masking it
once, in the process that knows the values, covers them all.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

Scrub = Callable[[str], str]


def scrub_report(report: pytest.TestReport, scrub: Scrub) -> None:
    """Mask secret values in ``report`` in place; what holds none is left as it is (a
    structured traceback keeps its colours unless it must become masked text)."""
    if report.longrepr is not None:
        text = str(report.longrepr)
        masked = scrub(text)
        if masked != text:
            report.longrepr = masked
    report.sections = [(title, scrub(content)) for title, content in report.sections]
    report.user_properties = [
        (name, scrub(value) if isinstance(value, str) else _scrub_other(value, scrub))
        for name, value in report.user_properties
    ]


def _scrub_other(value: object, scrub: Scrub) -> object:
    """A non-text property: kept unless its text holds a secret (then the masked text)."""
    text = str(value)
    masked = scrub(text)
    return value if masked == text else masked
