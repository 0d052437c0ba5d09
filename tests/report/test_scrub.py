"""No generated secret value in what a failing run writes: the diagnostics (a container's
log), the traceback with ``--showlocals``, captured output and logs, recorded properties,
the gate report and the JUnit XML."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from pytest_codelab.report.scrub import scrub_report

if TYPE_CHECKING:
    from conftest import FakeApiServer

#: Stands for a generated password: the inner run registers it as the gate does.
SECRET = "gen3rated-Pa55word-xyzzy"
CONNECTION = f"postgresql://codelab:{SECRET}@postgres:5432/codelab"

POD = {
    "metadata": {"name": "api-0", "namespace": "x"},
    "spec": {"containers": [{"name": "app", "image": "ghcr.io/codelab/gateway:1.0.0"}]},
    "status": {
        "phase": "Running",
        "containerStatuses": [
            {
                "name": "app",
                "image": "ghcr.io/codelab/gateway:1.0.0",
                "imageID": "",
                "ready": True,
                "restartCount": 0,
                "state": {"running": {}},
            }
        ],
    },
}


def _mask(text: str) -> str:
    return text.replace(SECRET, "***")


def test_scrub_report_masks_every_part_and_leaves_clean_ones() -> None:
    report = pytest.TestReport(
        "t.py::test",
        ("t.py", 1, "test"),
        {},
        "failed",
        f"E   assert {SECRET!r} == 'x'",
        "call",
        sections=[("Captured stdout call", f"token {SECRET}\n"), ("clean", "nothing")],
        user_properties=[("token", SECRET), ("count", 3), ("url", CONNECTION)],
    )
    scrub_report(report, _mask)
    assert report.longrepr == "E   assert '***' == 'x'"
    assert report.sections == [("Captured stdout call", "token ***\n"), ("clean", "nothing")]
    assert report.user_properties == [
        ("token", "***"),
        ("count", 3),
        ("url", "postgresql://codelab:***@postgres:5432/codelab"),
    ]


INNER_CONFTEST = f"""
import pytest
from pytest_codelab.run import RUN_KEY

@pytest.fixture(autouse=True)
def generated(request):
    # What the codelab_stack fixture does with the Secrets it generates.
    request.config.stash[RUN_KEY].secrets.update({{{SECRET!r}, {CONNECTION!r}}})
"""

INNER_TEST = f"""
import logging

def test_leaky(codelab_namespace, record_property):
    password = {SECRET!r}
    url = "postgresql://codelab:" + password + "@postgres:5432/codelab"
    print("password", password)
    logging.getLogger("app").warning("connecting to %s", url)
    record_property("url", url)
    assert password == "something else", url
"""


def test_a_failing_run_writes_no_secret_value(
    pytester: pytest.Pytester, fake_apiserver: FakeApiServer
) -> None:
    fake_apiserver.pods["*"] = [POD]
    fake_apiserver.logs["api-0"] = f"starting with DATABASE_URL={CONNECTION}"
    report = pytester.path / "report"
    junit = pytester.path / "junit.xml"
    pytester.makeconftest(INNER_CONFTEST)
    pytester.makepyfile(INNER_TEST)
    result = pytester.runpytest_subprocess(
        "--codelab-cluster=existing",
        f"--codelab-kubeconfig={fake_apiserver.kubeconfig(pytester.path / 'kc')}",
        f"--codelab-report-dir={report}",
        f"--junitxml={junit}",
        "--showlocals",
        "-rA",
    )
    result.assert_outcomes(failed=1)
    files = [p for p in report.rglob("*") if p.is_file()] + [junit]
    names = {p.name for p in files}
    assert {"api-0.app.log", "report.json", "report.html", "junit.xml"} <= names, names
    log = next(p for p in files if p.name == "api-0.app.log").read_text()
    assert "starting with DATABASE_URL=***" in log  # the log is kept, its secret masked
    assert "password   = '***'" in junit.read_text()  # the locals are shown, masked
    leaks = [p for p in files for v in (SECRET, CONNECTION) if v in p.read_text(errors="replace")]
    assert leaks == []
    assert SECRET not in result.stdout.str()  # the terminal shows the same reports


def test_without_generated_values_reports_are_untouched(tmp_path: Path) -> None:
    report = pytest.TestReport("t.py::t", ("t.py", 1, "t"), {}, "failed", "boom", "call")
    scrub_report(report, lambda text: text)
    assert report.longrepr == "boom"
