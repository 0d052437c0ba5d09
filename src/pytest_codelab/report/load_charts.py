"""The report's section for one load run: its figures, links to Locust's files and the charts
(requests/s, latency, replicas and CPU per HPA) with the run's events numbered on them."""

from __future__ import annotations

import html
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pytest_codelab.report.svg import PALETTE, Mark, Series, figure, level, marks_list

#: Seconds of timeline shown before the load started.
LEAD_IN = 20.0
#: The CPU chart's axis ends at this multiple of the highest target (1000 % hides the rest).
CPU_AXIS_CAP = 3.0


def load_charts(run: Mapping[str, Any]) -> str:
    """The charts of one load record: requests/s + failures/s, p50/p95, replicas and CPU per
    HPA, with the test's markers and the scaling events as numbered vertical lines."""
    load = run.get("load") or {}
    timeline = run.get("timeline") or {}
    history = load.get("history") or []
    t0 = run.get("t0") or load.get("started") or timeline.get("started") or 0.0
    samples = timeline.get("samples") or []
    events = timeline.get("events") or []
    ends = [p["t"] for p in history] + [s["t"] for s in samples] + [e["t"] for e in events]
    x_range = (-LEAD_IN if samples else 0.0, max([e - t0 for e in ends], default=1.0))
    events = [e for e in events if e["t"] - t0 >= x_range[0]]
    every = [
        Mark(e["t"] - t0, _event_label(e), e["kind"], number) for number, e in enumerate(events, 1)
    ]
    general = [m for m in every if m.kind in ("marker", "scale")]
    parts = []
    if history:
        x = [p["t"] - t0 for p in history]
        parts.append(
            figure(
                "Requests/s and failures/s (Locust)",
                [
                    Series(
                        "requests/s",
                        list(zip(x, [p["rps"] for p in history], strict=True)),
                        "#0969da",
                    ),
                    Series(
                        "failures/s",
                        list(zip(x, [p["fps"] for p in history], strict=True)),
                        "#cf222e",
                    ),
                    Series(
                        "users",
                        list(zip(x, [p["users"] for p in history], strict=True)),
                        "#8c959f",
                        dash="4 3",
                        width=1.2,
                        step=True,
                    ),
                ],
                general,
                y_label="per second",
                x_range=x_range,
            )
        )
        parts.append(
            figure(
                "Latency: p50 and p95 (ms, current window)",
                [
                    Series(
                        "p50", list(zip(x, [p["p50"] for p in history], strict=True)), "#1a7f37"
                    ),
                    Series(
                        "p95", list(zip(x, [p["p95"] for p in history], strict=True)), "#bc4c00"
                    ),
                ],
                general,
                y_label="ms",
                x_range=x_range,
            )
        )
    hpas = sorted({s["hpa"] for s in samples})
    if hpas:
        replicas: list[Series] = []
        cpu: list[Series] = []
        top = 1.0
        for i, hpa in enumerate(hpas):
            color = PALETTE[i % len(PALETTE)]
            own = [s for s in samples if s["hpa"] == hpa and s["t"] - t0 >= x_range[0]]
            xs = [s["t"] - t0 for s in own]
            replicas.append(
                Series(
                    f"{hpa} replicas",
                    list(zip(xs, [s["current"] for s in own], strict=True)),
                    color,
                    step=True,
                )
            )
            replicas.append(
                Series(
                    f"{hpa} Ready",
                    list(zip(xs, [s["ready"] for s in own], strict=True)),
                    color,
                    dash="2 2",
                    width=1.2,
                    step=True,
                )
            )
            if own:
                bound = own[-1]["max"]
                top = max(top, bound)
                replicas.append(level(f"{hpa} max {bound}", bound, x_range, color))
            cpu.append(
                Series(f"{hpa} CPU %", list(zip(xs, [s["cpu"] for s in own], strict=True)), color)
            )
            target = next((s["cpu_target"] for s in own if s["cpu_target"] is not None), None)
            if target is not None:
                cpu.append(level(f"{hpa} target {target}%", target, x_range, color))
        parts.append(
            figure(
                "Replicas per HPA (current, Ready; dashed: maxReplicas)",
                replicas,
                every,
                y_label="replicas",
                x_range=x_range,
                y_max=top + 1,
            )
        )
        targets = [s.points[0][1] or 0 for s in cpu if s.dash]
        peak = max((y for s in cpu for _, y in s.points if y is not None), default=100)
        cap = max(targets, default=100) * CPU_AXIS_CAP
        title = "CPU utilization per HPA (% of requests; dashed: target)"
        if peak > cap:
            title += f"; axis capped at {cap:.0f}%, peak {peak:.0f}%"
        parts.append(
            figure(
                title, cpu, general, y_label="% of request", x_range=x_range, y_max=min(peak, cap)
            )
        )
    return "".join(parts) + marks_list(every)


def _event_label(event: Mapping[str, Any]) -> str:
    source = event.get("source") or ""
    prefix = "" if source in ("", "test") else f"{source}: "
    return f"{prefix}{event.get('label', '')}"


def _num(value: Any, unit: str = "", digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{float(value):.{digits}f}{unit}"


def _relative(path: str, base: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(base.resolve()))
    except ValueError:
        return Path(path).resolve().as_uri()


def load_section(run: Mapping[str, Any], base: Path) -> str:
    esc = html.escape
    title = esc(str(run.get("title") or "load run"))
    if run.get("error"):
        error = esc(str(run["error"]))
        return f'<section class="load"><h3>{title}</h3><p class="bad">{error}</p></section>'
    load = run.get("load") or {}
    summary = load.get("summary") or {}
    files = load.get("files") or {}
    rows = []
    if load:
        rows.append(
            f"<tr><th>Load</th><td>{load.get('users')} users, spawn {load.get('spawn_rate')}/s, "
            f"run time {load.get('run_time')} s against {esc(str(load.get('host')))}"
            + (
                f", {load.get('workers')} workers ({load.get('connected_workers')} connected)"
                if load.get("workers")
                else ""
            )
            + f"; {esc(str(load.get('stopped')))}</td></tr>"
        )
        failures = summary.get("failures") or 0
        rows.append(
            f"<tr><th>Result</th><td><b>{summary.get('requests', 0)}</b> requests, "
            f'<b class="{"bad" if failures else "good"}">{failures}</b> failed, '
            f"{_num(summary.get('rps'), ' req/s', 1)} mean, "
            f"{_num(summary.get('peak_rps'), ' req/s', 1)} peak, "
            f"p50 {_num(summary.get('p50'), ' ms')}, p95 {_num(summary.get('p95'), ' ms')}, "
            f"{_num(summary.get('duration'), ' s', 1)}</td></tr>"
        )
        links = [
            f'<a href="{esc(_relative(files[k], base))}">{esc(label)}</a>'
            for k, label in (
                ("html", "Locust HTML report"),
                ("stats", "stats CSV"),
                ("history", "history CSV"),
                ("failures", "failures CSV"),
            )
            if k in files
        ]
        if links:
            rows.append(f"<tr><th>Files</th><td>{' · '.join(links)}</td></tr>")
    tests = run.get("tests") or []
    if tests:
        names = "<br>".join(esc(t) for t in tests)
        if len(tests) > 2:
            names = f"<details><summary>{len(tests)} tests</summary>{names}</details>"
        rows.append(f"<tr><th>Tests</th><td>{names}</td></tr>")
    for note in run.get("notes") or []:
        rows.append(f"<tr><th>Note</th><td>{esc(str(note))}</td></tr>")
    endpoints = load.get("endpoints") or []
    table = ""
    if endpoints:
        body = "".join(
            f"<tr><td>{esc(e['method'])} {esc(e['name'])}</td><td>{e['requests']}</td>"
            f"<td>{e['failures']}</td><td>{_num(e['median'])}</td><td>{_num(e['p95'])}</td>"
            f"<td>{_num(e['max'])}</td></tr>"
            for e in endpoints
        )
        table = (
            '<table class="endpoints"><tr><th>request</th><th>count</th><th>failed</th>'
            f"<th>p50 ms</th><th>p95 ms</th><th>max ms</th></tr>{body}</table>"
        )
    failures_rows = load.get("failures") or []
    failures_html = ""
    if failures_rows:
        failures_html = (
            "<ul class='failures'>"
            + "".join(
                f"<li>{f['occurrences']}× {esc(f['method'])} {esc(f['name'])}: "
                f"{esc(f['error'])}</li>"
                for f in failures_rows[:10]
            )
            + "</ul>"
        )
    errors = (run.get("timeline") or {}).get("errors") or []
    errors_html = (
        "<p class='muted'>timeline sampling errors: " + esc("; ".join(errors[-3:])) + "</p>"
        if errors
        else ""
    )
    return (
        f'<section class="load"><h3>{title}</h3><table class="kv">{"".join(rows)}</table>'
        f"{table}{failures_html}{load_charts(run)}{errors_html}</section>"
    )
