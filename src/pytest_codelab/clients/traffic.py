"""Continuous traffic: requests one after another while a test disrupts the stack.

``Traffic`` is a background thread that sends one request after another (through an
:class:`~pytest_codelab.clients.ingress.IngressClient`) while a test disrupts the stack (a
rolling update, an undo) and records every result with its timestamps, so the test can assert
that no request failed and say which ones did, when and how.

Safety rail: traffic is bounded both in count and in time, whatever the caller forgets to stop.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from pytest_codelab.clients.ingress import IngressClient, Result, Session, default_expect
from pytest_codelab.k8s.waiting import try_until

#: Hard bounds of a Traffic run unless the caller asks for less.
MAX_REQUESTS = 20000
MAX_SECONDS = 900.0


@dataclass(frozen=True)
class Marker:
    """A moment the test named while traffic ran ("rollout started")."""

    label: str
    at: float
    wall: float


@dataclass(frozen=True)
class TrafficReport:
    """Every result of a Traffic run, in order, with the test's markers and why it stopped."""

    target: str
    path: str
    results: tuple[Result, ...]
    markers: tuple[Marker, ...] = ()
    stopped: str = "stopped"

    @property
    def failures(self) -> list[Result]:
        return [r for r in self.results if not r.ok]

    @property
    def duration(self) -> float:
        if not self.results:
            return 0.0
        last = self.results[-1]
        return last.started + last.elapsed - self.results[0].started

    def between(self, start: str | None = None, end: str | None = None) -> list[Result]:
        """Results that started between two markers (None: the beginning / the end)."""
        lo = self.marker(start).at if start else float("-inf")
        hi = self.marker(end).at if end else float("inf")
        return [r for r in self.results if lo <= r.started < hi]

    def marker(self, label: str) -> Marker:
        for marker in self.markers:
            if marker.label == label:
                return marker
        raise KeyError(f"no marker {label!r}; markers: {[m.label for m in self.markers]}")

    def transitions(self, key: Callable[[Result], Any]) -> list[tuple[Any, int]]:
        """Runs of equal ``key`` over successful results: ``[(value, count), ...]`` in order
        (e.g. the versions seen while a rollout replaced pods)."""
        runs: list[tuple[Any, int]] = []
        for result in self.results:
            if not result.ok:
                continue
            value = key(result)
            if runs and runs[-1][0] == value:
                runs[-1] = (value, runs[-1][1] + 1)
            else:
                runs.append((value, 1))
        return runs

    def summary(self) -> str:
        statuses = Counter(r.status if r.status is not None else "error" for r in self.results)
        counts = ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items(), key=str))
        retried = sum(r.retried for r in self.results)
        extra = f", {retried} retried on a stale keep-alive connection" if retried else ""
        return (
            f"{len(self.results)} requests {self.path} to {self.target} in "
            f"{self.duration:.1f}s ({self.stopped}), {len(self.failures)} failed; "
            f"statuses {{{counts}}}{extra}"
        )

    def describe(self, limit: int = 10) -> str:
        """The summary, the markers and the first failures: an assertion message."""
        lines = [self.summary()]
        if self.results and self.markers:
            t0 = self.results[0].started
            lines.append(
                "markers: " + ", ".join(f"{m.label} at +{m.at - t0:.1f}s" for m in self.markers)
            )
        failures = self.failures
        for result in failures[:limit]:
            lines.append("  " + result.describe())
        if len(failures) > limit:
            lines.append(f"  ... and {len(failures) - limit} more failures")
        return "\n".join(lines)


class Traffic:
    """Requests to ``path`` one after another in a background thread, every result kept.

    ``with Traffic(client, "/api/v1/whoami") as traffic: ...; report = traffic.report()``.
    Bounded: it stops by itself after ``max_requests`` requests or ``max_seconds``
    (reported in ``TrafficReport.stopped``); ``interval`` is the pause between requests;
    ``body`` and ``headers`` go with every request (a POST path, a JSON body).
    """

    def __init__(
        self,
        target: IngressClient,
        path: str,
        *,
        method: str = "GET",
        interval: float = 0.05,
        max_requests: int = 5000,
        max_seconds: float = 600.0,
        expect: Callable[[Result], bool] = default_expect,
        keepalive: bool = True,
        timeout: float | None = None,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if not 0 < max_requests <= MAX_REQUESTS:
            raise ValueError(f"max_requests must be in 1..{MAX_REQUESTS}, not {max_requests}")
        if not 0 < max_seconds <= MAX_SECONDS:
            raise ValueError(f"max_seconds must be in (0, {MAX_SECONDS:g}], not {max_seconds}")
        if interval < 0:
            raise ValueError(f"interval must be 0 or more, not {interval}")
        self.target = target
        self.path = path
        self.method = method
        self.interval = interval
        self.max_requests = max_requests
        self.max_seconds = max_seconds
        self.expect = expect
        self.keepalive = keepalive
        self.timeout = timeout
        self.body = body
        self.headers = dict(headers or {})
        self._results: list[Result] = []
        self._markers: list[Marker] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._stopped = "not started"

    def start(self) -> Traffic:
        if self._thread is not None:
            raise RuntimeError("traffic already started")
        self._stopped = "running"
        self._thread = threading.Thread(target=self._run, name="codelab-traffic", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> TrafficReport:
        """Stop (waiting for the request in flight) and return the report."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        return self.report()

    def __enter__(self) -> Traffic:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def mark(self, label: str) -> Marker:
        """Record a named moment, to split the results later (``report.between``)."""
        marker = Marker(label, time.monotonic(), time.time())
        with self._lock:
            self._markers.append(marker)
        return marker

    def results(self) -> list[Result]:
        with self._lock:
            return list(self._results)

    def report(self) -> TrafficReport:
        with self._lock:
            return TrafficReport(
                self.target.describe(),
                self.path,
                tuple(self._results),
                tuple(self._markers),
                self._stopped,
            )

    def wait_for(self, count: int, timeout: float) -> list[Result]:
        """Block until at least ``count`` results exist (or the traffic ended / timeout)."""

        def enough() -> tuple[bool, str]:
            seen = len(self.results())
            return seen >= count or not self.running, f"{seen} results"

        try_until(enough, timeout=timeout, interval=0.02)  # the caller judges what it got
        return self.results()

    def _run(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        with Session(self.target, keepalive=self.keepalive) as session:
            while not self._stop.is_set():
                if len(self._results) >= self.max_requests:
                    self._stopped = f"limit of {self.max_requests} requests reached"
                    return
                if time.monotonic() >= deadline:
                    self._stopped = f"limit of {self.max_seconds:g}s reached"
                    return
                result = session.request(
                    self.method,
                    self.path,
                    body=self.body,
                    headers=self.headers,
                    expect=self.expect,
                    timeout=self.timeout,
                )
                with self._lock:
                    self._results.append(result)
                if self.interval:
                    self._stop.wait(self.interval)
        self._stopped = "stopped"


@contextlib.contextmanager
def running(traffic: Traffic, *, timeout: float, warmup: int = 1) -> Iterator[Traffic]:
    """Start ``traffic``, wait up to ``timeout`` for ``warmup`` results, yield it; always stop
    it."""
    traffic.start()
    try:
        traffic.wait_for(warmup, timeout)
        yield traffic
    finally:
        traffic.stop()
