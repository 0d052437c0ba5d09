"""The gate report (pytest_codelab.report): real pytest sessions (pytester) with the report
plugin wired as plugin.py wires it, and a real load record: a Locust run against a local
server while a Timeline samples a replica count that follows the server's load.
"""

from __future__ import annotations

import json
import re
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from pytest_codelab.clients.load.locust import LocustRun
from pytest_codelab.clients.load.spec import LoadSpec
from pytest_codelab.clients.timeline import HpaSample, Timeline
from pytest_codelab.k8s.diagnostics import DIAGNOSTICS_HEADER, DIAGNOSTICS_INDEX
from pytest_codelab.report import load_charts, records

#: The wiring the lead adds to plugin.py's pytest_configure (guarded so that it is a no-op
#: once plugin.py registers the report itself).
WIRING = """
import pytest
from pytest_codelab.report.plugin import ReportPlugin

def pytest_configure(config):
    if config.getoption("help", default=False) or config.pluginmanager.has_plugin("codelab-report"):
        return
    config.pluginmanager.register(
        ReportPlugin(config, controller=getattr(config, "workerinput", None) is None),
        "codelab-report",
    )
"""

TESTS = """
import os
import pytest
from pytest_codelab.report import records

@pytest.mark.requirement("1.1/ok: the thing works")
def test_passes():
    pass

@pytest.mark.requirement("1.2/broken: the other thing works")
def test_fails():
    assert 1 + 1 == 3, "HPA gateway-hpa did not scale out: seen 3 replicas\\nsecond line"

@pytest.mark.requirement("1.3/optional: the VPA recommends")
def test_skips():
    pytest.skip("VerticalPodAutoscaler is not served by this cluster: CRD not installed")

@pytest.fixture
def broken():
    raise RuntimeError("fixture exploded")

@pytest.mark.requirement("1.2/broken: the other thing works")
def test_errors(broken):
    pass

@pytest.mark.xfail(reason="known issue #12")
def test_xfails():
    assert False

@pytest.mark.requirement("1.1/ok: the thing works")
def test_with_load(request):
    record = os.environ.get("LOAD_RECORD")
    if record:
        records.attach_load_record(request.node, record)
"""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    count = 0

    def log_message(self, *args: object) -> None:
        pass

    def _reply(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        _Handler.count += 1
        data = b'{"access_token": "tok"}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = _reply  # noqa: N815


@pytest.fixture(scope="module")
def load_record(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A record of a real 4 s Locust run, with an HPA-like replica count sampled every 0.5 s
    (2 + 1 per 40 requests, at most 5) and markers: real data through the real code."""
    out = tmp_path_factory.mktemp("load")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    def sample() -> list[HpaSample]:
        replicas = min(5, 2 + _Handler.count // 40)
        return [
            HpaSample(
                time.time(),
                "web-hpa",
                "web",
                2,
                5,
                replicas,
                replicas,
                cpu=replicas * 30,
                cpu_target=70,
                spec_replicas=replicas,
                ready=max(2, replicas - 1),
            )
        ]

    spec = LoadSpec(
        f"http://127.0.0.1:{server.server_address[1]}",
        users=2,
        spawn_rate=2,
        run_time=4,
        env={"CODELAB_OAUTH_CLIENT_SECRET": "x", "CODELAB_LOAD_WAIT": "0.02-0.05"},
    )
    with Timeline(sample, interval=0.5, max_seconds=60) as timeline:
        with LocustRun(spec, out) as run:
            timeline.mark("load start")
            run.wait()
        timeline.mark("load stop")
    result = run.result()
    server.shutdown()
    server.server_close()
    assert result.requests > 0, result.describe()
    path = records.write_load_record(
        out / "demo.record.json",
        title="demo load",
        load=result,
        timeline=timeline.stop(),
        t0=result.started,
        notes=["a note"],
    )
    yield path


@pytest.fixture
def gate(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(codelab_report_wiring=WIRING, test_demo=TESTS)
    pytester.syspathinsert()
    return pytester


def _outputs(directory: Path) -> tuple[dict[str, object], str]:
    data = json.loads((directory / "report.json").read_text(encoding="utf-8"))
    return data, (directory / "report.html").read_text(encoding="utf-8")


def test_report_of_a_failed_run(
    gate: pytest.Pytester, load_record: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOAD_RECORD", str(load_record))
    result = gate.runpytest(
        "-p",
        "codelab_report_wiring",
        "--codelab-report-dir",
        "out",
        "--codelab-ingress-url",
        "http://admin:hunter2@10.0.0.1",
    )
    result.assert_outcomes(passed=2, failed=1, skipped=1, errors=1, xfailed=1)
    out = gate.path / "out"
    data, page = _outputs(out)
    result.stdout.fnmatch_lines([f"codelab report: {out / 'report.html'}*"])

    assert data["verdict"] == "failed"
    assert data["counts"] == {
        "failed": 1,
        "error": 1,
        "xpassed": 0,
        "passed": 2,
        "xfailed": 1,
        "skipped": 1,
        "total": 6,
    }
    reqs = {r["text"]: r for r in data["requirements"]}  # type: ignore[attr-defined]
    assert list(reqs) == [
        "1.1/ok: the thing works",
        "1.2/broken: the other thing works",
        "1.3/optional: the VPA recommends",
    ]
    assert reqs["1.1/ok: the thing works"]["status"] == "passed"
    broken = reqs["1.2/broken: the other thing works"]
    assert broken["status"] == "failed"
    reasons = {t["nodeid"].split("::")[1]: t["reason"] for t in broken["tests"]}
    assert reasons["test_fails"].startswith("AssertionError: HPA gateway-hpa did not scale out")
    assert reasons["test_errors"] == "setup error: RuntimeError: fixture exploded"
    skipped = reqs["1.3/optional: the VPA recommends"]
    assert skipped["status"] == "skipped"
    assert "CRD not installed" in skipped["tests"][0]["reason"]

    # first screen: the red banner with the counts, before any table
    banner = page.index('class="banner failed"')
    assert banner < page.index("<table")
    assert re.search(r"<b>2</b> passed</span><span><b>1</b> failed", page)
    for text in (
        "1.2/broken: the other thing works",
        "fixture exploded",
        "CRD not installed",
        "second line",
    ):
        assert text in page
    # self-contained, and no secret from the settings
    assert "<script" not in page and "<link" not in page and "@import" not in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    assert "hunter2" not in page and "hunter2" not in json.dumps(data)
    assert "http://***@10.0.0.1" in page

    # the load run: numbers from Locust's CSV, charts, the Locust HTML linked relatively
    run = data["load_runs"][0]  # type: ignore[index]
    assert run["tests"] == ["test_demo.py::test_with_load"]
    requests = run["load"]["summary"]["requests"]
    assert requests > 0 and f"<b>{requests}</b> requests" in page
    assert page.count("<svg") == 4  # requests/s, latency, replicas, CPU
    assert "web-hpa replicas" in page and "load start" in page and "a note" in page
    html_link = re.search(r'href="([^"]+)">Locust HTML report', page)
    locust_html = Path(run["load"]["files"]["html"])
    assert locust_html.is_file()
    # outside the report dir: an absolute file URI; inside it: a relative link (see below)
    assert html_link and html_link.group(1) == locust_html.resolve().as_uri()
    assert load_charts._relative(str(out / "load" / "x.html"), out) == "load/x.html"

    # JUnit XML beside it, with the requirements as properties
    junit = ET.parse(out / "junit.xml").getroot()
    cases = junit.findall(".//testcase")
    assert len(cases) == 6
    props = [
        p.get("value") for p in junit.iter("property") if p.get("name") == "codelab_requirement"
    ]
    assert "1.2/broken: the other thing works" in props


def test_report_of_a_passed_run_and_users_junit_path(gate: pytest.Pytester) -> None:
    result = gate.runpytest(
        "-p",
        "codelab_report_wiring",
        "--codelab-report-dir",
        "rep",
        "-k",
        "passes",
        "--junitxml",
        "mine.xml",
    )
    result.assert_outcomes(passed=1)
    data, page = _outputs(gate.path / "rep")
    # Every test passed, but they check no promise of the guide: not a passed gate
    # (tests/report/test_verdict.py has the passed one).
    assert data["verdict"] == "incomplete" and data["counts"]["total"] == 1  # type: ignore[index]
    assert 'class="banner incomplete"' in page and "<h1>INCOMPLETE</h1>" in page
    assert (gate.path / "mine.xml").is_file()
    assert not (gate.path / "rep" / "junit.xml").exists()


def test_a_run_replaces_the_previous_runs_outputs_and_keeps_the_rest(
    gate: pytest.Pytester,
) -> None:
    rep = gate.path / "rep"
    old_failure = rep / "suites_test_x.py_test_y-0123abcd"
    old_load = rep / "load" / "codelab-0a1b2c-main"
    for folder, index in (
        (old_failure, f"{DIAGNOSTICS_HEADER}codelab-0a1b2c-main\n"),
        (rep / "notes", "a person's notes\n"),
        (old_load, None),
        (rep / "load" / "my-namespace", None),
    ):
        folder.mkdir(parents=True)
        (folder / (DIAGNOSTICS_INDEX if index else "stats.csv")).write_text(index or "x")
    result = gate.runpytest(
        "-p", "codelab_report_wiring", "--codelab-report-dir", "rep", "-k", "passes"
    )
    result.assert_outcomes(passed=1)
    assert not old_failure.exists() and not old_load.exists()
    assert (rep / "notes" / DIAGNOSTICS_INDEX).is_file()  # not the gate's: kept
    assert (rep / "load" / "my-namespace" / "stats.csv").is_file()
    assert (rep / "report.html").is_file()


def test_collect_only_writes_no_report(gate: pytest.Pytester) -> None:
    result = gate.runpytest(
        "-p", "codelab_report_wiring", "--codelab-report-dir", "rep", "--collect-only"
    )
    assert result.ret == 0
    result.stdout.no_fnmatch_line("*codelab report:*")
    assert not (gate.path / "rep" / "report.html").exists()
    assert not (gate.path / "rep" / "junit.xml").exists()


def test_requirements_survive_xdist(gate: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """Requirement texts travel from the workers in user_properties."""
    monkeypatch.setenv("PYTHONPATH", str(gate.path))
    result = gate.runpytest_subprocess(
        "-p", "codelab_report_wiring", "-n", "2", "--codelab-report-dir", "x"
    )
    result.assert_outcomes(passed=2, failed=1, skipped=1, errors=1, xfailed=1)
    data, _ = _outputs(gate.path / "x")
    assert [r["text"] for r in data["requirements"]] == [  # type: ignore[attr-defined]
        "1.1/ok: the thing works",
        "1.2/broken: the other thing works",
        "1.3/optional: the VPA recommends",
    ]
    assert (gate.path / "x" / "junit.xml").is_file()
