"""Errors of the gate: bad input in one line, test outcomes as assertions."""

from __future__ import annotations

from pytest_codelab.errors import (
    AccessDenied,
    GateError,
    KubeconfigError,
    RolloutFailed,
    StackNotReady,
    WaitTimeout,
)


def test_gate_errors_are_one_line() -> None:
    err = KubeconfigError("kubeconfig broken:\n  line 3\n\tbad")
    assert str(err) == err.message == "kubeconfig broken: line 3 bad"
    assert isinstance(err, GateError) and isinstance(AccessDenied("x"), GateError)


def test_test_outcome_errors_are_assertions() -> None:
    """Timeouts and unready stacks are test failures, not errors in the test's code."""
    for cls in (WaitTimeout, RolloutFailed, StackNotReady):
        assert issubclass(cls, AssertionError)
