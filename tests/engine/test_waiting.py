"""The engine's own deadline helper: polls, and says what it last saw when time runs out."""

from __future__ import annotations

import pytest

from pytest_codelab.engine.errors import EngineError
from pytest_codelab.engine.waiting import poll, wait_until


def test_poll_returns_the_observation_that_met_the_condition() -> None:
    seen = iter([(False, "starting"), (False, ""), (True, "ready")])
    assert poll(lambda: next(seen), timeout=5, interval=0) == (True, "ready")


def test_poll_gives_up_with_the_last_observation() -> None:
    assert poll(lambda: (False, "no socket yet"), timeout=0.05, interval=0.01) == (
        False,
        "no socket yet",
    )
    assert poll(lambda: (False, ""), timeout=0, interval=0) == (False, "nothing observed")


def test_wait_until_raises_an_engine_error_naming_what_and_the_last_observation() -> None:
    with pytest.raises(EngineError) as err:
        wait_until(lambda: (False, "HTTP 503"), timeout=0.05, what="etcd to be ready", interval=0)
    assert str(err.value) == (
        "timed out after 0.05s waiting for etcd to be ready; last seen: HTTP 503"
    )


def test_a_probe_error_propagates_at_once() -> None:
    def probe() -> tuple[bool, str]:
        raise EngineError("etcd exited during start-up")

    with pytest.raises(EngineError, match="exited"):
        wait_until(probe, timeout=60, what="etcd")
