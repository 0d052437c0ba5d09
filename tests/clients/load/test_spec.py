"""The bounds of a load run."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_codelab.clients.load import spec as limits
from pytest_codelab.clients.load.locust import LocustRun
from pytest_codelab.clients.load.spec import LoadSpec


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"users": 0}, "users must be in"),
        ({"users": limits.MAX_USERS + 1}, "users must be in"),
        ({"spawn_rate": 0}, "spawn rate"),
        ({"run_time": limits.MAX_RUN_TIME + 1}, "run time"),
        ({"local_workers": limits.MAX_WORKERS + 1}, "workers"),
        ({"host": "http://8.8.8.8"}, "not a loopback or cluster address"),
        ({"host": "ftp://127.0.0.1"}, "http(s)://"),
        ({"name": "../x"}, "run name"),
    ],
)
def test_bounds_are_enforced(change: dict[str, object], message: str, tmp_path: Path) -> None:
    values: dict[str, object] = {
        "host": "http://127.0.0.1:9",
        "users": 1,
        "spawn_rate": 1.0,
        "run_time": 1.0,
    }
    values.update(change)
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        LocustRun(LoadSpec(**values), tmp_path)  # type: ignore[arg-type]
