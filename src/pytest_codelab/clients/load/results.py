"""What a Locust run measured, read back from its CSV files.

``LoadResult`` holds totals per endpoint, failures, and requests/s, failures/s, p50 and p95
over time from ``*_stats_history.csv``, plus which pods answered (the ``X-Served-By``
headers the locustfile records)."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

#: Seconds over which requests/s and failures/s of the history are computed.
RATE_WINDOW = 3.0


@dataclass(frozen=True)
class Point:
    """One second of the aggregated history: users, rates, current p50/p95 (ms), totals."""

    t: float
    users: int
    rps: float
    fps: float
    p50: float | None
    p95: float | None
    requests: int
    failures: int


@dataclass(frozen=True)
class EndpointStats:
    """Totals of one endpoint (or the ``Aggregated`` row) from ``*_stats.csv``."""

    method: str
    name: str
    requests: int
    failures: int
    median: float | None
    average: float | None
    p95: float | None
    p99: float | None
    max: float | None
    rps: float


@dataclass(frozen=True)
class FailureRow:
    """One line of ``*_failures.csv``: which request failed how, how often."""

    method: str
    name: str
    error: str
    occurrences: int


@dataclass(frozen=True)
class LoadResult:
    """What a Locust run measured, plus how it ran (never a secret)."""

    name: str
    host: str
    users: int
    spawn_rate: float
    run_time: float
    workers: int
    command: tuple[str, ...]
    started: float
    ended: float
    exit_code: int | None
    stopped: str
    files: Mapping[str, str]
    history: tuple[Point, ...]
    endpoints: tuple[EndpointStats, ...]
    total: EndpointStats | None
    failures: tuple[FailureRow, ...]
    served_by: Mapping[str, Mapping[str, Mapping[str, float]]]
    connected_workers: int = 0
    log_tail: str = ""

    @property
    def requests(self) -> int:
        return self.total.requests if self.total else 0

    @property
    def failed(self) -> int:
        return self.total.failures if self.total else 0

    @property
    def duration(self) -> float:
        return max(0.0, self.ended - self.started)

    @property
    def rps(self) -> float:
        """Mean requests/s of the run (Locust's total: requests / time with traffic)."""
        if self.total is not None and self.total.rps:
            return self.total.rps
        active = [p.rps for p in self.history if p.requests > 0]
        return sum(active) / len(active) if active else 0.0

    @property
    def peak_rps(self) -> float:
        return max((p.rps for p in self.history), default=0.0)

    def endpoint(self, name: str) -> EndpointStats | None:
        return next((e for e in self.endpoints if e.name == name), None)

    def pods(self, header: str = "X-Upstream-Served-By") -> dict[str, Mapping[str, float]]:
        """Pods that answered, per the given response header: name -> count/first/last."""
        return dict(self.served_by.get(header, {}))

    def describe(self) -> str:
        """A few lines for assertion messages and logs."""
        total = self.total
        latency = (
            f", p50 {fmt_ms(total.median)}, p95 {fmt_ms(total.p95)}" if total is not None else ""
        )
        lines = [
            f"locust {self.name}: {self.users} users at {self.spawn_rate:g}/s for "
            f"{self.run_time:g}s against {self.host}"
            + (
                f" with {self.workers} workers ({self.connected_workers} connected)"
                if self.workers
                else ""
            )
            + f": {self.requests} requests, {self.failed} failed, {self.rps:.1f} req/s"
            + f"{latency}; {self.stopped}, exit code {self.exit_code}"
        ]
        for failure in self.failures[:5]:
            lines.append(
                f"  {failure.occurrences}x {failure.method} {failure.name}: {failure.error}"
            )
        if self.requests == 0 and self.log_tail:
            lines.append("  locust log (last lines):\n    " + self.log_tail.replace("\n", "\n    "))
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["summary"] = {
            "requests": self.requests,
            "failures": self.failed,
            "rps": round(self.rps, 2),
            "peak_rps": round(self.peak_rps, 2),
            "p50": self.total.median if self.total else None,
            "p95": self.total.p95 if self.total else None,
            "duration": round(self.duration, 1),
        }
        return data


def fmt_ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms"


# ----------------------------------------------------------------- parsing Locust's CSV


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    text = text.strip()
    if not text or text.upper() == "N/A":
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _int(text: str | None) -> int:
    value = _number(text)
    return int(value) if value is not None else 0


def _rows(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def parse_history(path: Path, name: str = "Aggregated", window: float = RATE_WINDOW) -> list[Point]:
    """The per-second rows of ``*_stats_history.csv`` for one entry (default: Aggregated).

    Rates come from the total counters over a trailing ``window`` (Locust's own Requests/s
    column averages the last 10 s and lags 2 s behind, useless for a 5 s run); p50/p95 are
    Locust's current-window percentiles (``--csv-full-history``).
    """
    rows = [row for row in _rows(path) if row.get("Name") == name]
    times = [_number(row.get("Timestamp")) or 0.0 for row in rows]
    totals = [_int(row.get("Total Request Count")) for row in rows]
    failed = [_int(row.get("Total Failure Count")) for row in rows]
    points: list[Point] = []
    first = 0
    for i, row in enumerate(rows):
        while first < i and times[i] - times[first] > window:
            first += 1
        span = times[i] - times[first]
        rps = (totals[i] - totals[first]) / span if span > 0 else 0.0
        fps = (failed[i] - failed[first]) / span if span > 0 else 0.0
        points.append(
            Point(
                t=times[i],
                users=_int(row.get("User Count")),
                rps=round(max(rps, 0.0), 3),
                fps=round(max(fps, 0.0), 3),
                p50=_number(row.get("50%")),
                p95=_number(row.get("95%")),
                requests=totals[i],
                failures=failed[i],
            )
        )
    return points


def parse_stats(path: Path) -> list[EndpointStats]:
    """Every row of ``*_stats.csv`` (the last one is ``Aggregated``)."""
    return [
        EndpointStats(
            method=row.get("Type") or "",
            name=row.get("Name") or "",
            requests=_int(row.get("Request Count")),
            failures=_int(row.get("Failure Count")),
            median=_number(row.get("Median Response Time")),
            average=_number(row.get("Average Response Time")),
            p95=_number(row.get("95%")),
            p99=_number(row.get("99%")),
            max=_number(row.get("Max Response Time")),
            rps=_number(row.get("Requests/s")) or 0.0,
        )
        for row in _rows(path)
    ]


def percentile(histogram: Mapping[float, int], count: int, percent: float) -> float | None:
    """Locust's percentile of a response-time histogram (rounded ms -> count)."""
    if count <= 0 or not histogram:
        return None
    wanted = int(count * percent)
    processed = 0
    for value in sorted(histogram, reverse=True):
        processed += histogram[value]
        if count - processed <= wanted:
            return float(value)
    return float(min(histogram))


def parse_final_stats(path: Path) -> list[EndpointStats]:
    """Per-endpoint stats and the ``Aggregated`` total from ``--json-file``: Locust writes it
    at shutdown from the live stats (the CSV is rewritten only every second, and may lag)."""
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    rows: list[EndpointStats] = []
    merged: dict[float, int] = {}
    totals = {"requests": 0, "failures": 0, "time": 0.0, "max": 0.0}
    first, last = math.inf, 0.0
    for entry in entries:
        histogram = {float(k): int(v) for k, v in (entry.get("response_times") or {}).items()}
        for key, value in histogram.items():
            merged[key] = merged.get(key, 0) + value
        requests = int(entry.get("num_requests") or 0)
        start = float(entry.get("start_time") or 0.0)
        end = float(entry.get("last_request_timestamp") or start)
        first, last = min(first, start), max(last, end)
        totals["requests"] += requests
        totals["failures"] += int(entry.get("num_failures") or 0)
        totals["time"] += float(entry.get("total_response_time") or 0.0)
        totals["max"] = max(totals["max"], float(entry.get("max_response_time") or 0.0))
        rows.append(
            EndpointStats(
                method=str(entry.get("method") or ""),
                name=str(entry.get("name") or ""),
                requests=requests,
                failures=int(entry.get("num_failures") or 0),
                median=percentile(histogram, requests, 0.5),
                average=(float(entry.get("total_response_time") or 0) / requests)
                if requests
                else None,
                p95=percentile(histogram, requests, 0.95),
                p99=percentile(histogram, requests, 0.99),
                max=float(entry["max_response_time"]) if requests else None,
                rps=requests / (end - start) if end > start else 0.0,
            )
        )
    count = int(totals["requests"])
    rows.sort(key=lambda r: (r.name, r.method))
    rows.append(
        EndpointStats(
            method="",
            name="Aggregated",
            requests=count,
            failures=int(totals["failures"]),
            median=percentile(merged, count, 0.5),
            average=totals["time"] / count if count else None,
            p95=percentile(merged, count, 0.95),
            p99=percentile(merged, count, 0.99),
            max=totals["max"] if count else None,
            rps=count / (last - first) if count and last > first else 0.0,
        )
    )
    return rows


def parse_failures(path: Path) -> list[FailureRow]:
    """``*_failures.csv``, most frequent first."""
    rows = [
        FailureRow(
            method=row.get("Method") or "",
            name=row.get("Name") or "",
            error=(row.get("Error") or "")[:300],
            occurrences=_int(row.get("Occurrences")),
        )
        for row in _rows(path)
    ]
    return sorted(rows, key=lambda r: -r.occurrences)


def tail(path: Path, lines: int = 12) -> str:
    """The last lines of a log file ('' if unreadable)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])


def served_pods(result: LoadResult, prefix: str, header: str) -> dict[str, Mapping[str, float]]:
    """Pods named ``prefix-...`` that answered under ``header``."""
    return {pod: e for pod, e in result.pods(header).items() if pod.startswith(prefix + "-")}


def summarize(results: Sequence[LoadResult]) -> str:
    return "\n".join(r.describe() for r in results)
