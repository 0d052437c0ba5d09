"""Run Locust headless as a subprocess and read back what it measured.

``LocustRun`` starts ``python -m locust -f LOCUSTFILE --headless -u N -r R -t T --host URL
--csv PREFIX --csv-full-history --html FILE`` (optionally as a master with local worker
processes, or waiting for worker pods, see ``WorkerPods``), and is bounded whatever the caller
forgets: users, spawn rate and run time have hard maxima, a deadline kills the process group,
and leaving the ``with`` block (test teardown) stops it: SIGINT (Locust writes its CSV and HTML
reports), then SIGTERM, then SIGKILL. ``LoadResult`` is parsed from the CSV files: totals per
endpoint, failures, and requests/s, failures/s, p50 and p95 over time from
``*_stats_history.csv``.

Secrets reach Locust only through the environment (``LoadSpec.env``) or, for pods, through
``secretKeyRef``; they are never on a command line, in a log line of the gate or in a result.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from pytest_codelab.traffic import check_address

#: Hard bounds of one run (2-core machines share the CPU with the cluster under test).
MAX_USERS = 200
MAX_SPAWN_RATE = 50.0
MAX_RUN_TIME = 90.0
MAX_WORKERS = 8
#: Seconds Locust gets to start (import, connect) before the run-time clock is considered late.
START_GRACE = 30.0
#: Seconds after SIGINT before SIGTERM, and after SIGTERM before SIGKILL.
STOP_GRACE = 15.0
KILL_GRACE = 5.0
#: Seconds over which requests/s and failures/s of the history are computed.
RATE_WINDOW = 3.0
#: Environment variables the locustfile reads (see loadtests/codelab.py).
SERVED_BY_ENV = "CODELAB_LOAD_SERVED_BY_FILE"
SECRET_ENV = "CODELAB_OAUTH_CLIENT_SECRET"
#: The Locust worker image for worker pods (recipe ``locust`` of the local engine).
DEFAULT_LOCUST_IMAGE = "codelab/locust:2.47.0"
WORKER_LABEL = "codelab.dev/role"
WORKER_ROLE = "locust-worker"


def default_locustfile() -> Path:
    """The bundled CodeLab locustfile (``loadtests/codelab.py``)."""
    from pytest_codelab.resources import bundled_path

    return bundled_path("loadtests") / "codelab.py"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on at ``host``."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def local_address_towards(address: str) -> str:
    """This host's address on the route to ``address`` (where pods can reach a master).

    No packet is sent: connecting a UDP socket only selects the route.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect((address, 9))
        return str(sock.getsockname()[0])


@dataclass(frozen=True)
class LoadSpec:
    """One Locust run: the target, the bounded load, and how it is distributed.

    ``env`` is added to the environment of Locust (the place for the client secret and the
    locustfile's settings); ``local_workers`` worker processes run on this host, and the master
    waits for ``local_workers + remote_workers`` workers (remote ones: pods) before it starts.
    """

    host: str
    users: int
    spawn_rate: float
    run_time: float
    locustfile: Path | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    name: str = "load"
    local_workers: int = 0
    remote_workers: int = 0
    master_bind_host: str = "127.0.0.1"
    master_port: int = 0
    expect_workers_wait: float = 60.0
    stop_timeout: float = 0.0
    user_classes: tuple[str, ...] = ()

    @property
    def workers(self) -> int:
        return self.local_workers + self.remote_workers

    @property
    def distributed(self) -> bool:
        return self.workers > 0

    def validate(self) -> None:
        """ValueError for anything out of bounds or not aimed at a loopback/cluster address."""
        parts = urllib.parse.urlsplit(self.host)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"load host must be http(s)://ADDRESS[:PORT], not {self.host!r}")
        check_address(parts.hostname)
        if not 1 <= self.users <= MAX_USERS:
            raise ValueError(f"users must be in 1..{MAX_USERS}, not {self.users}")
        if not 0 < self.spawn_rate <= MAX_SPAWN_RATE:
            raise ValueError(
                f"spawn rate must be in (0, {MAX_SPAWN_RATE:g}], not {self.spawn_rate}"
            )
        if not 0 < self.run_time <= MAX_RUN_TIME:
            raise ValueError(f"run time must be in (0, {MAX_RUN_TIME:g}] s, not {self.run_time}")
        if not 0 <= self.workers <= MAX_WORKERS or min(self.local_workers, self.remote_workers) < 0:
            raise ValueError(f"workers must be in 0..{MAX_WORKERS}, not {self.workers}")
        if not self.name.replace("-", "").replace("_", "").isalnum():
            raise ValueError(f"run name must be letters, digits, - and _, not {self.name!r}")

    @property
    def deadline(self) -> float:
        """Seconds after start when the run is overdue and gets killed."""
        wait = self.expect_workers_wait if self.distributed else 0.0
        return START_GRACE + wait + self.run_time + self.stop_timeout + STOP_GRACE


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


def _tail(path: Path, lines: int = 12) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])


# ----------------------------------------------------------------- running Locust


class LocustRun:
    """One bounded Locust run in ``out_dir``: ``with LocustRun(spec, dir) as run: ...``.

    ``start()`` launches the master (or the single process) and local workers; ``wait()``
    blocks until Locust ends by itself (its run time) or the deadline kills it; ``stop()``
    ends it early; ``result()`` parses the CSV files. Leaving the ``with`` block always stops
    every process this object started.
    """

    def __init__(self, spec: LoadSpec, out_dir: Path, *, python: str | None = None) -> None:
        spec.validate()
        self.spec = spec
        self.out_dir = Path(out_dir)
        self.python = python or sys.executable
        self.locustfile = Path(spec.locustfile or default_locustfile()).resolve()
        if not self.locustfile.is_file():
            raise FileNotFoundError(f"locustfile not found: {self.locustfile}")
        self.master_port = spec.master_port or (free_port() if spec.distributed else 0)
        self.prefix = self.out_dir / spec.name
        self.started: float | None = None
        self.ended: float | None = None
        self.stopped = "not started"
        self._master: subprocess.Popen[bytes] | None = None
        self._workers: list[subprocess.Popen[bytes]] = []
        self._deadline = 0.0

    # files -----------------------------------------------------------------------------

    @property
    def files(self) -> dict[str, Path]:
        p = str(self.prefix)
        return {
            "stats": Path(p + "_stats.csv"),
            "history": Path(p + "_stats_history.csv"),
            "failures": Path(p + "_failures.csv"),
            "exceptions": Path(p + "_exceptions.csv"),
            "html": Path(p + ".html"),
            "log": Path(p + ".log"),
            "output": Path(p + ".out"),
            "served_by": Path(p + "_served_by.json"),
            "final": Path(p + "_final.json"),
        }

    def command(self) -> list[str]:
        """The master's (or single process's) argv; holds no secret."""
        spec = self.spec
        files = self.files
        argv = [
            self.python,
            "-m",
            "locust",
            "-f",
            str(self.locustfile),
            "--headless",
            "-u",
            str(spec.users),
            "-r",
            f"{spec.spawn_rate:g}",
            "-t",
            f"{math.ceil(spec.run_time)}s",
            "--host",
            spec.host,
            "--csv",
            str(self.prefix),
            "--csv-full-history",
            "--json-file",
            str(self.prefix) + "_final",
            "--html",
            str(files["html"]),
            "--only-summary",
            "--loglevel",
            "INFO",
            "--logfile",
            str(files["log"]),
            "--stop-timeout",
            f"{spec.stop_timeout:g}",
        ]
        if spec.distributed:
            argv += [
                "--master",
                "--master-bind-host",
                spec.master_bind_host,
                "--master-bind-port",
                str(self.master_port),
                "--expect-workers",
                str(spec.workers),
                "--expect-workers-max-wait",
                str(math.ceil(spec.expect_workers_wait)),
            ]
        return argv + list(spec.user_classes)

    def worker_command(self, index: int) -> list[str]:
        return [
            self.python,
            "-m",
            "locust",
            "-f",
            str(self.locustfile),
            "--worker",
            "--master-host",
            "127.0.0.1",
            "--master-port",
            str(self.master_port),
            "--loglevel",
            "WARNING",
            "--logfile",
            str(self.prefix) + f"_worker{index}.log",
        ]

    def _environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self.spec.env)
        env[SERVED_BY_ENV] = str(self.files["served_by"])
        env["PYTHONUNBUFFERED"] = "1"
        return env

    # life cycle ------------------------------------------------------------------------

    def start(self) -> LocustRun:
        if self._master is not None:
            raise RuntimeError("locust run already started")
        self.out_dir.mkdir(parents=True, exist_ok=True)
        for path in self.files.values():
            path.unlink(missing_ok=True)
        env = self._environment()
        output = self.files["output"].open("wb")
        try:
            self._master = subprocess.Popen(
                self.command(),
                env=env,
                cwd=self.out_dir,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            for index in range(self.spec.local_workers):
                self._workers.append(
                    subprocess.Popen(
                        self.worker_command(index),
                        env=env,
                        cwd=self.out_dir,
                        stdin=subprocess.DEVNULL,
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                        start_new_session=True,
                    )
                )
        finally:
            output.close()
        self.started = time.time()
        self._deadline = time.monotonic() + self.spec.deadline
        self.stopped = "running"
        return self

    @property
    def running(self) -> bool:
        return self._master is not None and self._master.poll() is None

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for Locust to end (at most ``timeout`` s, never past the deadline).

        True once it has ended; past the deadline it is stopped and marked as killed.
        """
        if self._master is None:
            raise RuntimeError("locust run not started")
        limit = self._deadline - time.monotonic()
        if timeout is not None:
            limit = min(limit, timeout)
        try:
            self._master.wait(timeout=max(0.0, limit))
        except subprocess.TimeoutExpired:
            if time.monotonic() < self._deadline:
                return False
            self._stop(f"killed: still running {self.spec.deadline:g}s after start")
            return True
        self._finish("ended by itself (run time reached)")
        return True

    def stop(self, reason: str = "stopped by the test") -> None:
        """End the run now (SIGINT, so Locust still writes its reports); idempotent."""
        if self._master is None:
            return
        if self._master.poll() is not None:
            self._finish("ended by itself (run time reached)")
            return
        self._stop(reason)

    def _stop(self, reason: str) -> None:
        assert self._master is not None
        escalated = _terminate(self._master, signal.SIGINT, STOP_GRACE)
        if escalated:
            reason += f" (did not exit {STOP_GRACE:g}s after SIGINT: {escalated})"
        self._finish(reason)

    def _finish(self, reason: str) -> None:
        if self.ended is None:
            self.ended = time.time()
            self.stopped = reason
        for worker in self._workers:
            _terminate(worker, signal.SIGINT, KILL_GRACE)

    def __enter__(self) -> LocustRun:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop("stopped at teardown")

    # results ---------------------------------------------------------------------------

    def history(self) -> list[Point]:
        """The aggregated history written so far (Locust flushes it every few seconds)."""
        return parse_history(self.files["history"])

    def result(self) -> LoadResult:
        """Parse what Locust wrote; call after ``wait()`` or ``stop()``."""
        files = self.files
        rows = parse_final_stats(files["final"]) or parse_stats(files["stats"])
        total = next((r for r in rows if r.name == "Aggregated"), None)
        served: dict[str, Any] = {}
        connected = 0
        if files["served_by"].is_file():
            with contextlib.suppress(ValueError, OSError):
                data = json.loads(files["served_by"].read_text(encoding="utf-8"))
                served = dict(data.get("served_by") or {})
                connected = int(data.get("workers") or 0)
        argv = self.command()
        argv[0] = Path(argv[0]).name
        return LoadResult(
            name=self.spec.name,
            host=self.spec.host,
            users=self.spec.users,
            spawn_rate=self.spec.spawn_rate,
            run_time=self.spec.run_time,
            workers=self.spec.workers,
            command=tuple(argv),
            started=self.started or 0.0,
            ended=self.ended or time.time(),
            exit_code=self._master.returncode if self._master else None,
            stopped=self.stopped,
            files={k: str(v) for k, v in files.items() if v.is_file()},
            history=tuple(parse_history(files["history"])),
            endpoints=tuple(r for r in rows if r.name != "Aggregated"),
            total=total,
            failures=tuple(parse_failures(files["failures"])),
            served_by=served,
            connected_workers=connected,
            log_tail=_tail(files["log"]) or _tail(files["output"]),
        )


def _terminate(process: subprocess.Popen[bytes], first: int, grace: float) -> str:
    """Signal the process group, escalating to SIGTERM and SIGKILL; '' if the first sufficed."""
    steps = ((first, grace), (signal.SIGTERM, KILL_GRACE), (signal.SIGKILL, KILL_GRACE))
    escalated = []
    for number, (sig, wait) in enumerate(steps):
        if process.poll() is not None:
            break
        if number:
            escalated.append(signal.Signals(sig).name)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
    return ", ".join(escalated)


def run_locust(spec: LoadSpec, out_dir: Path) -> LoadResult:
    """Run Locust to the end (bounded by the spec's deadline) and return its result."""
    with LocustRun(spec, out_dir) as run:
        run.wait()
    return run.result()


# ----------------------------------------------------------------- worker pods


def worker_pod_manifest(
    name: str,
    *,
    image: str,
    master_host: str,
    master_port: int,
    env: Mapping[str, str],
    secret_env: Mapping[str, tuple[str, str]],
    run_label: str,
) -> dict[str, Any]:
    """A Locust worker pod that downloads the locustfile from the master (``-f -``).

    Runs as an unprivileged user with a read-only root file system (PSA restricted); /tmp
    is an emptyDir because ``-f -`` saves the downloaded locustfile to the working dir.
    """
    env_list: list[dict[str, Any]] = [{"name": k, "value": v} for k, v in sorted(env.items())]
    env_list += [
        {"name": var, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}
        for var, (secret, key) in sorted(secret_env.items())
    ]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "labels": {
                "app.kubernetes.io/managed-by": "pytest-codelab",
                WORKER_LABEL: WORKER_ROLE,
                "codelab.dev/load-run": run_label,
            },
        },
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "terminationGracePeriodSeconds": 5,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 10001,
                "runAsGroup": 10001,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {
                    "name": "locust",
                    "image": image,
                    "imagePullPolicy": "IfNotPresent",
                    "command": [
                        "locust",
                        "-f",
                        "-",
                        "--worker",
                        "--master-host",
                        master_host,
                        "--master-port",
                        str(master_port),
                        "--loglevel",
                        "INFO",
                    ],
                    "workingDir": "/tmp",
                    "env": env_list,
                    "resources": {
                        "requests": {"cpu": "50m", "memory": "96Mi"},
                        "limits": {"cpu": "1", "memory": "256Mi"},
                    },
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "readOnlyRootFilesystem": True,
                        "capabilities": {"drop": ["ALL"]},
                    },
                    "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                }
            ],
            "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "16Mi"}}],
        },
    }


def nodes_with_image(core: Any, image: str) -> tuple[list[str], list[str]]:
    """(nodes whose kubelet reports ``image``, all nodes); names compared as containerd does
    (``codelab/locust:1`` is ``docker.io/codelab/locust:1``)."""
    wanted = {image, _normalize(image)}
    having, names = [], []
    for node in core.list_node().items:
        name = node.metadata.name
        names.append(name)
        for entry in (node.status.images if node.status else None) or []:
            if wanted & {_normalize(n) for n in entry.names or []}:
                having.append(name)
                break
    return having, names


def _normalize(ref: str) -> str:
    first = ref.split("/", 1)[0]
    if "/" not in ref:
        ref = f"docker.io/library/{ref}"
    elif "." not in first and ":" not in first and first != "localhost":
        ref = f"docker.io/{ref}"
    return ref


class WorkerPods:
    """N Locust worker pods in a namespace for one run; always deleted on exit.

    ``with WorkerPods(core, ns, 2, image=..., master_host=..., master_port=...) as pods:``
    creates them; ``pods.describe()`` says what they look like (for failure messages).
    """

    def __init__(
        self,
        core: Any,
        namespace: str,
        count: int,
        *,
        image: str,
        master_host: str,
        master_port: int,
        env: Mapping[str, str] | None = None,
        secret_env: Mapping[str, tuple[str, str]] | None = None,
    ) -> None:
        if not 1 <= count <= MAX_WORKERS:
            raise ValueError(f"worker pods must be in 1..{MAX_WORKERS}, not {count}")
        self.core = core
        self.namespace = namespace
        self.count = count
        self.image = image
        self.master_host = master_host
        self.master_port = master_port
        self.env = dict(env or {})
        self.secret_env = dict(secret_env or {})
        self.run_label = secrets.token_hex(4)
        self.names = [f"locust-worker-{self.run_label}-{i}" for i in range(count)]

    def __enter__(self) -> WorkerPods:
        for name in self.names:
            self.core.create_namespaced_pod(
                self.namespace,
                worker_pod_manifest(
                    name,
                    image=self.image,
                    master_host=self.master_host,
                    master_port=self.master_port,
                    env=self.env,
                    secret_env=self.secret_env,
                    run_label=self.run_label,
                ),
            )
        return self

    def describe(self) -> str:
        from pytest_codelab.diagnostics import pod_summary

        pods = self.core.list_namespaced_pod(
            self.namespace, label_selector=f"codelab.dev/load-run={self.run_label}"
        ).items
        return "; ".join(pod_summary(p) for p in pods) or "no worker pods"

    def logs(self, lines: int = 5) -> str:
        out = []
        for name in self.names:
            with contextlib.suppress(Exception):
                text = self.core.read_namespaced_pod_log(
                    name, self.namespace, tail_lines=lines, _request_timeout=10
                )
                out.append(f"{name}: " + " | ".join(str(text).strip().splitlines()))
        return "\n".join(out)

    def __exit__(self, *exc: object) -> None:
        from kubernetes.client.exceptions import ApiException

        for name in self.names:
            with contextlib.suppress(ApiException):
                self.core.delete_namespaced_pod(name, self.namespace, grace_period_seconds=0)


@contextlib.contextmanager
def distributed(
    spec: LoadSpec,
    out_dir: Path,
    core: Any,
    namespace: str,
    *,
    image: str,
    master_host: str,
    secret_env: Mapping[str, tuple[str, str]],
    pod_env: Mapping[str, str],
) -> Iterator[tuple[LocustRun, WorkerPods]]:
    """A master on this host (bound to ``spec.master_bind_host``) and ``spec.remote_workers``
    worker pods connecting to ``master_host``; both are torn down on exit."""
    run = LocustRun(spec, out_dir)
    pods = WorkerPods(
        core,
        namespace,
        spec.remote_workers,
        image=image,
        master_host=master_host,
        master_port=run.master_port,
        env=pod_env,
        secret_env=secret_env,
    )
    with run, pods:
        yield run, pods


def served_pods(result: LoadResult, prefix: str, header: str) -> dict[str, Mapping[str, float]]:
    """Pods named ``prefix-...`` that answered under ``header``."""
    return {pod: e for pod, e in result.pods(header).items() if pod.startswith(prefix + "-")}


def summarize(results: Sequence[LoadResult]) -> str:
    return "\n".join(r.describe() for r in results)
