"""Continuous traffic against a real HTTP server on 127.0.0.1 (no cluster)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pytest

from pytest_codelab.clients import traffic
from pytest_codelab.clients.ingress import IngressClient
from pytest_codelab.clients.traffic import Traffic

if TYPE_CHECKING:
    from clients.conftest import State


# --------------------------------------------------------------------- addresses


# --------------------------------------------------------------------- single requests


# --------------------------------------------------------------------- uploads


# --------------------------------------------------------------------- TLS


# --------------------------------------------------------------------- continuous traffic


def test_traffic_is_bounded_in_count(http_url: str) -> None:
    with Traffic(IngressClient(http_url), "/version", interval=0, max_requests=7) as run:
        run.wait_for(7, timeout=10)
        time.sleep(0.1)
    report = run.report()
    assert len(report.results) == 7
    assert "limit of 7 requests" in report.stopped
    assert [r.seq for r in report.results] == list(range(1, 8))


def test_traffic_is_bounded_in_time(http_url: str) -> None:
    run = Traffic(IngressClient(http_url), "/slow", interval=0, max_seconds=0.5).start()
    time.sleep(1.2)
    assert not run.running
    report = run.stop()
    assert "limit of 0.5s" in report.stopped
    assert 1 <= len(report.results) <= 4


@pytest.mark.parametrize(
    "kwargs", [{"max_requests": 0}, {"max_requests": 10**9}, {"max_seconds": 10**6}]
)
def test_traffic_bounds_are_checked(http_url: str, kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Traffic(IngressClient(http_url), "/", **kwargs)  # type: ignore[arg-type]


def test_traffic_records_failures_with_timestamps_and_markers(http_url: str, state: State) -> None:
    with traffic.running(
        Traffic(IngressClient(http_url), "/version", interval=0.01), timeout=30
    ) as run:
        run.wait_for(5, timeout=10)
        run.mark("outage")
        state.status = 503
        time.sleep(0.15)
        state.status = 200
        run.mark("recovered")
        run.wait_for(len(run.results()) + 5, timeout=10)
    report = run.report()
    assert report.failures, report.describe()
    assert all(f.status == 503 for f in report.failures)
    outage_at = report.marker("outage").at
    # A request in flight when the status flipped may fail: only those that ended before
    # the mark were certainly served healthy.
    before = [r for r in report.between(None, "outage") if r.started + r.elapsed < outage_at]
    assert before and all(r.ok for r in before)
    outage = report.between("outage", "recovered")
    assert outage and all(report.marker("outage").at <= r.started for r in outage)
    text = report.describe(limit=2)
    assert "failed" in text and "HTTP 503" in text and "markers: outage at +" in text
    assert "more failures" in text or len(report.failures) <= 2
    times = [r.started for r in report.results]
    assert times == sorted(times)


def test_transitions_show_the_versions_in_order(http_url: str, state: State) -> None:
    with traffic.running(
        Traffic(IngressClient(http_url), "/version", interval=0.01), timeout=30
    ) as run:
        run.wait_for(3, timeout=10)
        state.version = "1.1.0"
        run.wait_for(len(run.results()) + 3, timeout=10)
    runs = run.report().transitions(lambda r: r.get("version"))
    assert [value for value, _ in runs] == ["1.0.0", "1.1.0"]
    assert all(count >= 1 for _, count in runs)


def test_traffic_against_a_dead_target_records_errors(closed_port: int) -> None:
    target = IngressClient(f"http://127.0.0.1:{closed_port}")
    with Traffic(target, "/", interval=0, max_requests=3) as run:
        run.wait_for(3, timeout=10)
    report = run.report()
    assert len(report.failures) == 3
    assert "3 failed" in report.summary()
    assert "statuses {error: 3}" in report.summary()


def test_traffic_sends_its_body_and_headers_with_every_request(http_url: str) -> None:
    """A POST path (a session through the Ingress) gets the same body every time."""
    body = b'{"prompt": "x"}'
    run = Traffic(
        IngressClient(http_url),
        "/upload",
        method="POST",
        body=body,
        headers={"Content-Type": "application/json"},
        interval=0,
        max_requests=3,
    )
    with run:
        run.wait_for(3, timeout=10)
    results = run.report().results
    assert len(results) == 3
    assert all(r.ok and r.get("received") == len(body) for r in results), results
