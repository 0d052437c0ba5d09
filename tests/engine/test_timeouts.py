"""Every engine deadline is a named base value, scaled by one factor."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest

from pytest_codelab.engine import timeouts
from pytest_codelab.engine.timeouts import Timeouts, seconds_flag

ENGINE = Path(timeouts.__file__).parent


def test_scaled_multiplies_every_deadline() -> None:
    base, slow = Timeouts(), Timeouts().scaled(2.5)
    for f in dataclasses.fields(Timeouts):
        assert getattr(slow, f.name) == getattr(base, f.name) * 2.5
    assert Timeouts().scaled(1.0) == base


@pytest.mark.parametrize("factor", [0, -1, float("nan")])
def test_scale_must_be_positive(factor: float) -> None:
    with pytest.raises(ValueError, match="greater than 0"):
        Timeouts().scaled(factor)


def test_seconds_flag_is_whole_seconds() -> None:
    assert seconds_flag(120.0) == "120s"
    assert seconds_flag(180.4) == "180s"
    assert seconds_flag(0.2) == "1s"


def _deadline_literals(path: Path) -> list[str]:
    """``timeout=<number>`` / ``grace=<number>`` keyword arguments with a literal number."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.keyword) and node.arg in ("timeout", "grace", "kill_wait"):
            value = node.value
            if isinstance(value, ast.Constant) and isinstance(value.value, int | float):
                if value.value:  # grace=0: no wait at all
                    found.append(f"{path.name}:{node.lineno} {node.arg}={value.value}")
    return found


def test_no_literal_deadline_is_left_in_the_engine() -> None:
    literals = [hit for f in sorted(ENGINE.rglob("*.py")) for hit in _deadline_literals(f)]
    assert not literals, "name these in engine/timeouts.py: " + ", ".join(literals)
