"""Polling with a deadline, for the engine's readiness waits.

Why its own: the engine is standalone (it imports nothing of the gate), so it cannot use
the gate's ``pytest_codelab.k8s.waiting``. A wait here polls a probe that says in words what
it saw, and a timeout raises an EngineError repeating the last observation, so a failed
``up`` tells what the component looked like, not just that time ran out.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from pytest_codelab.engine.errors import EngineError

Probe = Callable[[], tuple[bool, str]]


def timed_out(timeout: float, what: str, last: str) -> str:
    """The one-line message of a wait that ran out of time."""
    return f"timed out after {timeout:g}s waiting for {what}; last seen: {last}"


def poll(probe: Probe, *, timeout: float, interval: float) -> tuple[bool, str]:
    """Call ``probe`` until it returns ``(True, observation)`` or ``timeout`` seconds pass;
    ``(met, last observation)``. Exceptions of the probe propagate at once."""
    deadline = time.monotonic() + timeout
    last = "nothing observed"
    while True:
        ok, observation = probe()
        if ok:
            return True, observation
        last = observation or last
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False, last
        time.sleep(min(interval, remaining))


def wait_until(probe: Probe, *, timeout: float, what: str, interval: float = 1.0) -> str:
    """:func:`poll`, raising an EngineError naming ``what`` and the last observation when
    the time is up; returns the observation that met the condition."""
    met, last = poll(probe, timeout=timeout, interval=interval)
    if not met:
        raise EngineError(timed_out(timeout, what, last))
    return last
