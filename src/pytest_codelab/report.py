"""The gate report: one self-contained HTML file and its JSON twin per run, JUnit XML beside.

``ReportCollector`` gathers what a run did: each test's outcome with the reason (skip reason,
first line of the failure), the requirements it checks (the ``requirement`` marker, carried in
``user_properties`` so that it survives xdist), the cluster and Kubernetes version tested, the
effective settings (never secrets: Settings holds none, URLs lose their user info), and the
load runs tests recorded (Locust's statistics and the HPA timeline, written as JSON records by
``write_load_record`` and named in the test's ``user_properties`` by ``attach_load_record``).
``write`` renders ``report.html`` (inline CSS and SVG charts, no external asset, verdict on the
first screen) and ``report.json``.

``ReportPlugin`` is the pytest side (registered by plugin.py): it annotates items, feeds the
collector on the controller, writes at session end and points pytest's ``--junitxml`` at
``<report dir>/junit.xml`` unless the user chose a path.
"""

from __future__ import annotations

import html
import itertools
import json
import math
import re
import shutil
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pytest_codelab.settings import Settings, display

LOAD_PROPERTY = "codelab_load"
REQUIREMENT_PROPERTY = "codelab_requirement"
MARKERS_PROPERTY = "codelab_markers"
#: Markers worth showing next to a test.
SHOWN_MARKERS = ("e2e", "disruptive", "slow", "offline")
HTML_NAME, JSON_NAME, JUNIT_NAME = "report.html", "report.json", "junit.xml"
#: First line of a failure's diagnostics index (diagnostics.collect): how a new run knows
#: which folders of the report dir are an earlier run's diagnostics.
DIAGNOSTICS_INDEX, DIAGNOSTICS_HEADER = "index.txt", "# diagnostics of namespace "
#: Load-run folders under ``<report_dir>/load`` named after a gate-made namespace.
GATE_LOAD_DIR = re.compile(r"codelab-[0-9a-f]{6}-[A-Za-z0-9_-]+")
MESSAGE_LIMIT = 4000
#: Seconds of timeline shown before the load started.
LEAD_IN = 20.0
#: The CPU chart's axis ends at this multiple of the highest target (1000 % hides the rest).
CPU_AXIS_CAP = 3.0
OUTCOME_ORDER = ("failed", "error", "xpassed", "passed", "xfailed", "skipped")
FAILING = frozenset({"failed", "error"})


# ----------------------------------------------------------------- load records


def write_load_record(
    path: Path,
    *,
    title: str,
    load: Any = None,
    timeline: Any = None,
    t0: float | None = None,
    notes: Sequence[str] = (),
) -> Path:
    """Write one load run (a ``LoadResult`` and/or ``TimelineData``) as JSON for the report.

    Rewriting the same path later (e.g. after scale-down was sampled too) updates the record.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "title": title,
        "t0": t0,
        "load": load.to_dict() if load is not None else None,
        "timeline": timeline.to_dict() if timeline is not None else None,
        "notes": list(notes),
    }
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, default=str), encoding="utf-8")
    tmp.replace(path)
    return path


def attach_load_record(node: pytest.Item, path: Path) -> None:
    """Name a load record in the test's report (``user_properties`` travel to the controller)."""
    entry = (LOAD_PROPERTY, str(Path(path).resolve()))
    if entry not in node.user_properties:
        node.user_properties.append(entry)


def annotate_item(item: pytest.Item) -> None:
    """Copy the item's requirement texts and shown markers into ``user_properties`` (also
    written by pytest's JUnit XML as ``<property>``)."""
    for marker in item.iter_markers("requirement"):
        if marker.args:
            entry = (REQUIREMENT_PROPERTY, str(marker.args[0]))
            if entry not in item.user_properties:
                item.user_properties.append(entry)
    shown = [m for m in SHOWN_MARKERS if item.get_closest_marker(m) is not None]
    if shown and not any(k == MARKERS_PROPERTY for k, _ in item.user_properties):
        item.user_properties.append((MARKERS_PROPERTY, ",".join(shown)))


# ----------------------------------------------------------------- collecting


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


@dataclass(frozen=True)
class ReportPaths:
    html: Path
    json: Path


class ReportCollector:
    """Everything the report shows; ``add_test`` per TestReport, ``write`` at the end."""

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

    def verdict(self) -> str:
        counts = self.counts()
        bad = counts["failed"] + counts["error"] + counts["xpassed"]
        interrupted = self.exit_status not in (None, 0, 1, 5)
        if bad or interrupted:
            return "failed"
        return "passed" if counts["passed"] else "no tests passed"

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
        return {
            "schema": 1,
            "run_id": self.run_id,
            "generated": _iso(time.time()),
            "started": _iso(self.started),
            "duration": round(finished - self.started, 1),
            "verdict": self.verdict(),
            "exit_status": self.exit_status,
            "counts": self.counts(),
            "cluster": self.cluster.__dict__,
            "settings": settings,
            "requirements": self.requirements(),
            "tests": [e.to_dict() for e in sorted(self.tests.values(), key=lambda e: _test_key(e))],
            "load_runs": self._load_data(),
            "notes": list(self.notes),
        }

    def write(self, report_dir: Path) -> ReportPaths:
        """Write report.html and report.json into ``report_dir``; returns their paths."""
        report_dir = Path(report_dir)
        report_dir.mkdir(parents=True, exist_ok=True)
        data = self.data()
        paths = ReportPaths(report_dir / HTML_NAME, report_dir / JSON_NAME)
        paths.json.write_text(json.dumps(data, indent=1, default=str), encoding="utf-8")
        paths.html.write_text(render_html(data, report_dir), encoding="utf-8")
        return paths


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _requirement_key(text: str, order: Mapping[str, int]) -> tuple[Any, ...]:
    """Section numbers first ("5.10" after "5.9"), then first appearance."""
    head = text.split(":", 1)[0].split("/", 1)[0]
    section = [(0, int(p)) if p.isdigit() else (1, 0) for p in head.split(".")]
    return (section, order.get(text, 0))


def _test_key(entry: TestEntry) -> tuple[int, str]:
    return OUTCOME_ORDER.index(entry.outcome), entry.nodeid


# ----------------------------------------------------------------- SVG charts


@dataclass
class Series:
    """A line of a chart: (x seconds, y or None for a gap) points."""

    label: str
    points: list[tuple[float, float | None]]
    color: str
    dash: str = ""
    step: bool = False
    width: float = 2.0


def level(label: str, y: float, x_range: tuple[float, float], color: str) -> Series:
    """A dashed horizontal line across the chart (a bound or a target)."""
    return Series(label, [(x_range[0], y), (x_range[1], y)], color, dash="8 4", width=1)


@dataclass(frozen=True)
class Mark:
    """A vertical line at ``x`` (an event), numbered on the chart; the numbered list is
    rendered once per load run."""

    x: float
    label: str
    kind: str
    number: int = 0


_CLIP_IDS = itertools.count(1)
MARK_COLORS = {
    "marker": "#24292f",
    "scale": "#0969da",
    "replicaset": "#bf8700",
    "warning": "#cf222e",
}
PALETTE = ("#0969da", "#8250df", "#1a7f37", "#bc4c00", "#cf222e", "#57606a")


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values covering [lo, hi]."""
    if hi <= lo:
        hi = lo + 1
    raw = (hi - lo) / max(1, count)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    value = math.floor(lo / step) * step
    ticks = [round(value, 10)]
    while value < hi - step * 0.001:
        value += step
        ticks.append(round(value, 10))
    return ticks


def _fmt(value: float) -> str:
    return f"{value:g}" if abs(value) < 1e5 else f"{value:.2e}"


def svg_chart(
    series: Sequence[Series],
    *,
    marks: Sequence[Mark] = (),
    y_label: str = "",
    x_label: str = "seconds since load start",
    width: int = 880,
    height: int = 210,
    y_min: float = 0.0,
    y_max: float | None = None,
    x_range: tuple[float, float] | None = None,
) -> str:
    """An inline SVG line chart (no script, no external reference)."""
    left, right, top, bottom = 56, 14, 16, 36
    plot_w, plot_h = width - left - right, height - top - bottom
    xs = [x for s in series for x, y in s.points if y is not None] + [m.x for m in marks]
    ys = [y for s in series for _, y in s.points if y is not None]
    if x_range is None:
        x_range = (min(xs, default=0.0), max(xs, default=1.0))
    x0, x1 = x_range
    if x1 <= x0:
        x1 = x0 + 1
    top_value = max(ys, default=1.0) if y_max is None else y_max
    y_ticks = nice_ticks(y_min, max(top_value, y_min + 1e-9) * 1.05 if ys else 1.0)
    y0, y1 = y_ticks[0], y_ticks[-1]
    if y1 <= y0:
        y1 = y0 + 1

    def px(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * plot_w

    def py(y: float) -> float:
        return top + plot_h - (y - y0) / (y1 - y0) * plot_h

    clip = f"clip{next(_CLIP_IDS)}"
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="100%" role="img" class="chart">',
        f'<defs><clipPath id="{clip}"><rect x="{left}" y="{top - 1}" width="{plot_w}" '
        f'height="{plot_h + 2}"/></clipPath></defs>',
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" class="plot"/>',
    ]
    for tick in y_ticks:
        y = py(tick)
        out.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
        )
        out.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" class="tick">'
            f"{_fmt(tick)}</text>"
        )
    for tick in nice_ticks(x0, x1, 10):
        if not x0 <= tick <= x1:
            continue
        x = px(tick)
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{top + plot_h}" class="grid"/>')
        out.append(
            f'<text x="{x:.1f}" y="{top + plot_h + 14}" text-anchor="middle" class="tick">'
            f"{_fmt(tick)}</text>"
        )
    out.append(
        f'<text x="{left + plot_w / 2:.0f}" y="{height - 4}" text-anchor="middle" '
        f'class="axis">{html.escape(x_label)}</text>'
    )
    if y_label:
        out.append(
            f'<text x="12" y="{top + plot_h / 2:.0f}" text-anchor="middle" class="axis" '
            f'transform="rotate(-90 12 {top + plot_h / 2:.0f})">{html.escape(y_label)}</text>'
        )
    for index, mark in enumerate(marks, 1):
        number = mark.number or index
        if not x0 <= mark.x <= x1:
            continue
        x = px(mark.x)
        color = MARK_COLORS.get(mark.kind, "#57606a")
        out.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{top + plot_h}" stroke="{color}" '
            f'stroke-width="1" stroke-dasharray="3 3"><title>{html.escape(mark.label)}</title>'
            "</line>"
        )
        out.append(
            f'<text x="{x + 2:.1f}" y="{top + 10 + (number % 3) * 10}" class="mark" '
            f'fill="{color}">{number}</text>'
        )
    for s in series:
        path = _path(s, px, py)
        if not path:
            continue
        dash = f' stroke-dasharray="{s.dash}"' if s.dash else ""
        out.append(
            f'<path d="{path}" fill="none" stroke="{s.color}" stroke-width="{s.width}"{dash} '
            f'clip-path="url(#{clip})"><title>{html.escape(s.label)}</title></path>'
        )
    out.append("</svg>")
    return "".join(out)


def _path(series: Series, px: Any, py: Any) -> str:
    parts: list[str] = []
    pen_up = True
    last_y: float | None = None
    for x, y in series.points:
        if y is None:
            pen_up = True
            continue
        if pen_up:
            parts.append(f"M{px(x):.1f},{py(y):.1f}")
            pen_up = False
        else:
            if series.step and last_y is not None:
                parts.append(f"L{px(x):.1f},{py(last_y):.1f}")
            parts.append(f"L{px(x):.1f},{py(y):.1f}")
        last_y = y
    return "".join(parts)


def _legend(series: Sequence[Series]) -> str:
    items = []
    for s in series:
        style = "dashed" if s.dash else "solid"
        items.append(
            f'<span class="key"><i style="border-top:2px {style} {s.color}"></i>'
            f"{html.escape(s.label)}</span>"
        )
    return f'<div class="legend">{"".join(items)}</div>'


def marks_list(marks: Sequence[Mark]) -> str:
    """The numbered events of a load run (the numbers on its charts)."""
    if not marks:
        return ""
    items = "".join(
        f'<li value="{m.number}" style="color:{MARK_COLORS.get(m.kind, "#57606a")}">'
        f"<span>{m.x:+.0f}s</span> {html.escape(m.label)}</li>"
        for m in marks
    )
    return (
        f'<div class="evhead">Events (numbered on the charts)</div><ol class="marks">{items}</ol>'
    )


def figure(title: str, series: Sequence[Series], marks: Sequence[Mark], **kw: Any) -> str:
    return (
        f"<figure><figcaption>{html.escape(title)}</figcaption>{_legend(series)}"
        f"{svg_chart(series, marks=marks, **kw)}</figure>"
    )


# ----------------------------------------------------------------- load run section


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


# ----------------------------------------------------------------- the page


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
.banner.other{background:#57606a}
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
.b-skipped,.b-xfailed{background:#9a6700}
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
    return f'<span class="badge b-{html.escape(outcome)}">{html.escape(outcome)}</span>'


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


def render_html(data: Mapping[str, Any], base: Path) -> str:
    """The report page from ``ReportCollector.data()``."""
    esc = html.escape
    counts = data["counts"]
    verdict = data["verdict"]
    banner_class = {"passed": "passed", "failed": "failed"}.get(verdict, "other")
    shown = [
        (counts.get(k, 0), k)
        for k in ("passed", "failed", "error", "skipped", "xfailed", "xpassed")
        if counts.get(k, 0) or k in ("passed", "failed", "skipped")
    ]
    count_html = "".join(f"<span><b>{n}</b> {esc(k)}</span>" for n, k in shown)
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
    head = (
        f'<div class="banner {banner_class}"><h1>{esc(verdict.upper())}</h1>'
        f'<div class="counts">{count_html}</div>'
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
        "<table><tr><th style='width:34%'>requirement</th><th>status</th><th>tests and reasons"
        f"</th></tr>{''.join(req_rows)}</table>"
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
        "<h2>Requirements</h2>",
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


# ----------------------------------------------------------------- pytest side


def clear_previous_outputs(report_dir: Path) -> list[Path]:
    """Remove what an earlier run wrote beside its report: failure diagnostics and the load
    folders of gate-made namespaces, so that the folder describes this run only.

    Only folders recognisably the gate's are touched; anything else a person put there stays.
    """
    removed: list[Path] = []
    if not report_dir.is_dir():
        return removed
    for child in sorted(report_dir.iterdir()):
        index = child / DIAGNOSTICS_INDEX
        if child.is_dir() and index.is_file():
            with index.open(encoding="utf-8", errors="replace") as fh:
                if fh.readline().startswith(DIAGNOSTICS_HEADER):
                    removed.append(child)
    load_dir = report_dir / "load"
    if load_dir.is_dir():
        removed += [
            child
            for child in sorted(load_dir.iterdir())
            if child.is_dir() and GATE_LOAD_DIR.fullmatch(child.name)
        ]
    for path in removed:
        shutil.rmtree(path, ignore_errors=True)
    return removed


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


def kubernetes_version(kubeconfig: Path, context: str | None, timeout: float = 5.0) -> str:
    """The API server's git version, or ``unknown (<why>)``; never raises."""
    try:
        from kubernetes import client

        from pytest_codelab import kube

        api = kube.new_client(kubeconfig, context, retries=0)
        try:
            return str(client.VersionApi(api).get_code(_request_timeout=timeout).git_version)
        finally:
            api.close()
    except Exception as exc:  # the report must be written whatever the cluster does
        return f"unknown ({type(exc).__name__})"


class ReportPlugin:
    """Registered in every process; only the controller (or single process) collects."""

    def __init__(self, config: pytest.Config, *, controller: bool) -> None:
        self.config = config
        self.controller = controller
        self.collector: ReportCollector | None = None
        self.paths: ReportPaths | None = None
        if controller:
            from pytest_codelab.cluster import RUN_KEY
            from pytest_codelab.settings import SETTINGS_KEY

            settings = config.stash[SETTINGS_KEY]
            if config.option.collectonly:  # nothing runs: no verdict to report
                return
            run = config.stash.get(RUN_KEY, None)
            self.collector = ReportCollector(settings, run_id=run.run_id if run else "")
            default_junitxml(config, settings.report_dir)
            clear_previous_outputs(Path(settings.report_dir))

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        for item in items:
            annotate_item(item)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if self.collector is not None:
            self.collector.add_test(report)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if self.collector is not None and report.failed:
            self.collector.add_collect_error(report)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.collector is None:
            return
        from pytest_codelab.cluster import RUN_KEY

        settings = self.collector.settings
        run = self.config.stash.get(RUN_KEY, None)
        if run is not None and run.handle is not None:
            handle = run.handle
            namespace = (settings.namespace if settings else None) or (
                f"codelab-{run.run_id}-* (ephemeral)"
            )
            self.collector.set_cluster(
                name=handle.name,
                context=handle.context,
                kubeconfig=handle.kubeconfig,
                ingress_url=handle.ingress_url,
                kubernetes_version=kubernetes_version(handle.kubeconfig, handle.context),
                namespace=namespace,
            )
            for note in run.notes:
                self.collector.add_note(note)
        self.collector.finish(int(exitstatus))
        report_dir = settings.report_dir if settings else Path("codelab-report")
        try:
            self.paths = self.collector.write(report_dir)
        except OSError as exc:
            self.collector.add_note(f"report not written: {exc}")

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.paths is not None:
            terminalreporter.write_line(f"codelab report: {self.paths.html} (+ {JSON_NAME})")


def outcomes(entries: Iterable[TestEntry]) -> dict[str, int]:
    """Counts per outcome (helper for summaries)."""
    counts: dict[str, int] = {}
    for entry in entries:
        counts[entry.outcome] = counts.get(entry.outcome, 0) + 1
    return counts
