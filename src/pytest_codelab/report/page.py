"""The report page: one self-contained HTML file (inline CSS and SVG, no external asset, the
verdict on the first screen, then one row per promise of the deployment guide) and its JSON
twin, both from ``ReportCollector.data()``."""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_codelab.report.load_charts import load_section

HTML_NAME, JSON_NAME = "report.html", "report.json"


FAILING = frozenset({"failed", "error"})


CSS = """
*{box-sizing:border-box}
body{font:14px/1.45 -apple-system,"Segoe UI",Helvetica,Arial,sans-serif;color:#1f2328;
margin:0;background:#f6f8fa}
main{max-width:1080px;margin:0 auto;padding:16px 20px 48px}
h1{font-size:26px;margin:0}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #d0d7de;
padding-bottom:4px}h3{font-size:15px;margin:0 0 8px}
.banner{padding:18px 22px;border-radius:8px;color:#fff;display:flex;flex-wrap:wrap;
align-items:center;gap:8px 28px}
.banner.passed{background:#1a7f37}.banner.failed{background:#cf222e}
.banner.incomplete{background:#9a6700}.banner.other{background:#57606a}
.banner .counts span{display:inline-block;margin-right:14px;font-size:16px}
.banner .counts b{font-size:22px}
.target{margin:10px 0 0;color:#1f2328;background:#fff;border:1px solid #d0d7de;border-radius:6px;
padding:8px 12px;display:flex;flex-wrap:wrap;gap:4px 22px}
.target span b{color:#57606a;font-weight:600;margin-right:4px}
table{border-collapse:collapse;width:100%;background:#fff}
th,td{text-align:left;vertical-align:top;padding:5px 8px;border-bottom:1px solid #d8dee4}
th{background:#f6f8fa;font-weight:600}
.badge{display:inline-block;min-width:64px;text-align:center;border-radius:10px;padding:0 8px;
font-size:12px;font-weight:600;color:#fff}
.b-passed{background:#1a7f37}.b-failed,.b-error,.b-xpassed{background:#cf222e}
.b-skipped,.b-xfailed,.b-not-checked{background:#9a6700}
.b-deselected,.b-waived{background:#57606a}
.reason{color:#57606a;font-size:13px}.reason.fail{color:#a40e26}
.test{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:12.5px}
pre{white-space:pre-wrap;background:#fff;border:1px solid #d0d7de;padding:8px;border-radius:6px;
font-size:12px;max-height:320px;overflow:auto}
details{margin:6px 0}summary{cursor:pointer}
section.load{background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:12px 14px;
margin:12px 0}
table.kv th{width:90px;background:none}table.endpoints{margin:8px 0;font-size:13px}
figure{margin:14px 0 6px}figcaption{font-weight:600}
.legend{font-size:12px;color:#57606a;margin:2px 0}.key{margin-right:14px;white-space:nowrap}
.key i{display:inline-block;width:22px;margin:0 5px 3px 0;vertical-align:middle}
svg.chart{display:block;background:#fff}
svg .plot{fill:#fff;stroke:#d0d7de}svg .grid{stroke:#eaeef2;stroke-width:1}
svg .tick{font-size:10px;fill:#57606a}svg .axis{font-size:11px;fill:#57606a}
svg .mark{font-size:10px;font-weight:700}
ol.marks{font-size:12px;margin:2px 0 0;padding-left:30px;columns:2}
.evhead{font-weight:600;margin-top:10px}
ol.marks span{color:#57606a}
.good{color:#1a7f37}.bad{color:#cf222e}.muted{color:#57606a;font-size:12px}
ul.failures{font-size:12.5px;color:#a40e26}
"""


def _badge(outcome: str) -> str:
    css = html.escape(outcome.replace(" ", "-"))
    return f'<span class="badge b-{css}">{html.escape(outcome)}</span>'


def _requirement_tests(tests: Sequence[Mapping[str, Any]]) -> str:
    """Tests that did not pass, each with its reason; passed ones folded into a count."""
    esc = html.escape
    shown = [t for t in tests if t["outcome"] != "passed"]
    passed = [t for t in tests if t["outcome"] == "passed"]
    parts = [
        f'<div><span class="test">{esc(t["nodeid"])}</span> {_badge(t["outcome"])}'
        + (
            f'<div class="reason{" fail" if t["outcome"] in FAILING else ""}">'
            f"{esc(t['reason'])}</div>"
            if t["reason"]
            else ""
        )
        + "</div>"
        for t in shown
    ]
    if passed:
        names = "".join(f'<div class="test">{esc(t["nodeid"])}</div>' for t in passed)
        if len(passed) == 1 and not shown:
            parts.append(names)
        else:
            parts.append(f"<details><summary>{len(passed)} passed</summary>{names}</details>")
    return "".join(parts)


def _promise_tests(tests: Sequence[Mapping[str, Any]]) -> str:
    """The tests of a promise (as ``_requirement_tests``), each once though it may carry
    several of the promise's requirements; none: nothing to list (the reason says so)."""
    return _requirement_tests(list({t["nodeid"]: t for t in tests}.values()))


def _promises_table(data: Mapping[str, Any]) -> str:
    """One row per promise of the guide: status, why, its tests."""
    esc = html.escape
    rows = []
    for row in data.get("promises") or []:
        reason_class = " fail" if row["status"] == "failed" else ""
        rows.append(
            f"<tr><td><b>{esc(row['id'])}</b><div>{esc(row['title'])}</div>"
            f"<div class='muted'>{esc(row['section'])}</div></td>"
            f"<td>{_badge(row['status'])}</td>"
            f"<td><div class='reason{reason_class}'>{esc(row['reason'])}</div>"
            f"{_promise_tests(row['tests'])}</td></tr>"
        )
    unmapped = "".join(
        f"<li><b>{esc(u['key'])}</b>: {esc(', '.join(t['nodeid'] for t in u['tests']))}</li>"
        for u in data.get("unmapped_requirements") or []
    )
    return (
        "<table><tr><th style='width:34%'>promise</th><th>status</th><th>why, and the tests"
        f"</th></tr>{''.join(rows)}</table>"
        + (
            "<p class='reason fail'>requirement markers that match no promise of the guide "
            f"(pytest_codelab/report/promises.py):</p><ul class='failures'>{unmapped}</ul>"
            if unmapped
            else ""
        )
    )


def render_html(data: Mapping[str, Any], base: Path) -> str:
    """The report page from ``ReportCollector.data()``."""
    esc = html.escape
    counts = data["counts"]
    verdict = data["verdict"]
    banner_class = {"passed": "passed", "failed": "failed", "incomplete": "incomplete"}.get(
        verdict, "other"
    )
    shown = [
        (counts.get(k, 0), k)
        for k in ("passed", "failed", "error", "skipped", "xfailed", "xpassed")
        if counts.get(k, 0) or k in ("passed", "failed", "skipped")
    ]
    count_html = "".join(f"<span><b>{n}</b> {esc(k)}</span>" for n, k in shown)
    promise_counts = " · ".join(
        f"{n} {status}" for status, n in (data.get("promise_counts") or {}).items() if n
    )
    cluster = data["cluster"]
    target = "".join(
        f"<span><b>{label}</b>{esc(str(cluster.get(key, '-')))}</span>"
        for label, key in (
            ("cluster", "name"),
            ("context", "context"),
            ("Kubernetes", "kubernetes_version"),
            ("namespace", "namespace"),
            ("ingress", "ingress_url"),
        )
    )
    profile = next((s["value"] for s in data["settings"] if s["name"] == "profile"), None)
    if profile:
        target += f"<span><b>profile</b>{esc(profile)}</span>"
    if data.get("waived"):
        target += f"<span><b>waived</b>{esc(', '.join(data['waived']))}</span>"
    head = (
        f'<div class="banner {banner_class}"><h1>{esc(verdict.upper())}</h1>'
        f'<div class="counts">{count_html}</div>'
        f"<div>promises: {esc(promise_counts)}</div>"
        f"<div>run {esc(data['run_id'] or '-')} · {esc(data['started'])} · "
        f'{data["duration"]:.0f} s</div></div><div class="target">{target}</div>'
    )
    req_rows = []
    for req in data["requirements"]:
        req_rows.append(
            f"<tr><td>{esc(req['text'])}</td><td>{_badge(req['status'])}</td>"
            f"<td>{_requirement_tests(req['tests'])}</td></tr>"
        )
    requirements = (
        "<details><summary>each requirement marker of the tests</summary><table><tr>"
        "<th style='width:34%'>requirement</th><th>status</th><th>tests and reasons"
        f"</th></tr>{''.join(req_rows)}</table></details>"
        if req_rows
        else "<p class='muted'>no test carries a requirement marker</p>"
    )
    failed = [t for t in data["tests"] if t["outcome"] in FAILING or t["outcome"] == "xpassed"]
    failures = "".join(
        f"<details open><summary>{_badge(t['outcome'])} <span class='test'>{esc(t['nodeid'])}"
        f"</span></summary><pre>{esc(t['message'] or t['reason'])}</pre></details>"
        for t in failed
    )
    loads = "".join(load_section(run, base) for run in data["load_runs"])
    test_rows = "".join(
        f"<tr><td class='test'>{esc(t['nodeid'])}</td><td>{_badge(t['outcome'])}</td>"
        f"<td>{t['duration']:.1f} s</td><td>{esc(', '.join(t['markers']))}</td>"
        f"<td class='reason{' fail' if t['outcome'] in FAILING else ''}'>"
        f"{esc(t['reason'])}</td></tr>"
        for t in data["tests"]
    )
    settings_rows = "".join(
        f"<tr><td>{esc(s['name'])}</td><td>{esc(s['value'])}</td><td>{esc(s['source'])}</td></tr>"
        for s in data["settings"]
    )
    notes = "".join(f"<li>{esc(n)}</li>" for n in data.get("notes") or [])
    body = [
        head,
        "<h2>Promises of the deployment guide</h2>",
        _promises_table(data),
        requirements,
    ]
    if failures:
        body += ["<h2>Failures</h2>", failures]
    if loads:
        body += ["<h2>Load runs</h2>", loads]
    body += [
        "<h2>All tests</h2>",
        "<table><tr><th>test</th><th>outcome</th><th>time</th><th>markers</th><th>reason</th>"
        f"</tr>{test_rows}</table>",
    ]
    if notes:
        body += ["<h2>Notes</h2>", f"<ul>{notes}</ul>"]
    body += [
        "<h2>Settings</h2>",
        f"<table><tr><th>setting</th><th>value</th><th>source</th></tr>{settings_rows}</table>",
        f"<p class='muted'>generated {esc(data['generated'])} by pytest-codelab · "
        f"exit status {esc(str(data['exit_status']))} · JSON twin: {JSON_NAME}</p>",
    ]
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<title>CodeLab gate: {esc(verdict)} ({counts['failed'] + counts['error']} failed, "
        f"{counts['passed']} passed)</title><style>{CSS}</style></head><body><main>"
        + "".join(body)
        + "</main></body></html>"
    )


@dataclass(frozen=True)
class ReportPaths:
    html: Path
    json: Path


def write_report(data: Mapping[str, Any], report_dir: Path) -> ReportPaths:
    """Write report.html and report.json (``data`` from ``ReportCollector.data()``) into
    ``report_dir``; returns their paths."""
    report_dir = Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    paths = ReportPaths(report_dir / HTML_NAME, report_dir / JSON_NAME)
    paths.json.write_text(json.dumps(data, indent=1, default=str), encoding="utf-8")
    paths.html.write_text(render_html(data, report_dir), encoding="utf-8")
    return paths
