"""Where a failed test's diagnostics go in the report dir."""

from __future__ import annotations

import re
from pathlib import Path

from pytest_codelab.report.failures import report_dir_for


def test_report_dir_names_are_safe_and_unique(tmp_path: Path) -> None:
    a = report_dir_for(tmp_path, "suites/test_x.py::test_y[a/b c]")
    b = report_dir_for(tmp_path, "suites/test_x.py::test_y[a_b_c]")
    assert a != b and a.parent == b.parent == tmp_path
    assert re.fullmatch(r"[A-Za-z0-9_.-]+", a.name)
