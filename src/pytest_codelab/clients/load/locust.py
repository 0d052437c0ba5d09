"""Run Locust headless as a subprocess.

``LocustRun`` starts ``python -m locust -f LOCUSTFILE --headless -u N -r R -t T --host URL
--csv PREFIX --csv-full-history --html FILE`` (optionally as a master with local worker
processes, or waiting for worker pods, see :mod:`pytest_codelab.clients.load.workers`), and is
bounded whatever the caller forgets: a deadline kills the process group, and leaving the
``with`` block (test teardown) stops it: SIGINT (Locust writes its CSV and HTML reports), then
SIGTERM, then SIGKILL. ``result()`` reads what it measured
(:mod:`pytest_codelab.clients.load.results`).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from pytest_codelab.clients.load import spec as limits
from pytest_codelab.clients.load.results import (
    LoadResult,
    Point,
    parse_failures,
    parse_final_stats,
    parse_history,
    parse_stats,
    tail,
)
from pytest_codelab.clients.load.spec import (
    CA_FILE_ENV,
    SERVED_BY_ENV,
    LoadSpec,
    default_locustfile,
)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on at ``host``."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


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
            "ca": Path(p + "_ca.pem"),
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
        env.pop(CA_FILE_ENV, None)  # only the spec's trust, never one inherited by chance
        if self.spec.ca_pem:
            env[CA_FILE_ENV] = str(self.files["ca"])
        env["PYTHONUNBUFFERED"] = "1"
        return env

    # life cycle ------------------------------------------------------------------------

    def start(self) -> LocustRun:
        if self._master is not None:
            raise RuntimeError("locust run already started")
        self.out_dir.mkdir(parents=True, exist_ok=True)
        for path in self.files.values():
            path.unlink(missing_ok=True)
        if self.spec.ca_pem:  # certificates, no secret: kept beside the results
            self.files["ca"].write_text(self.spec.ca_pem, encoding="utf-8")
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
        escalated = _terminate(self._master, signal.SIGINT, limits.STOP_GRACE)
        if escalated:
            reason += f" (did not exit {limits.STOP_GRACE:g}s after SIGINT: {escalated})"
        self._finish(reason)

    def _finish(self, reason: str) -> None:
        if self.ended is None:
            self.ended = time.time()
            self.stopped = reason
        for worker in self._workers:
            _terminate(worker, signal.SIGINT, limits.KILL_GRACE)

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
            log_tail=tail(files["log"]) or tail(files["output"]),
        )


def _terminate(process: subprocess.Popen[bytes], first: int, grace: float) -> str:
    """Signal the process group, escalating to SIGTERM and SIGKILL; '' if the first sufficed."""
    steps = (
        (first, grace),
        (signal.SIGTERM, limits.KILL_GRACE),
        (signal.SIGKILL, limits.KILL_GRACE),
    )
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
