"""The cluster record that ``up`` writes and ``down``/``status`` read."""

from __future__ import annotations

import os
from pathlib import Path

from pytest_codelab.engine.layout import Layout
from pytest_codelab.engine.state import Cluster, exclusive


def _layout(tmp_path: Path) -> Layout:
    return Layout(state=tmp_path / "state", cache=tmp_path / "cache", bin=tmp_path / "bin")


def test_record_round_trips(tmp_path: Path) -> None:
    layout = _layout(tmp_path)
    layout.state.mkdir()
    cluster = Cluster(layout, {"kube-apiserver": os.getpid()}, {"kernel/panic": "0"}, True, 1.5)
    cluster.save()
    again = Cluster.load(layout)
    assert again == cluster and again.running()


def test_no_record_or_a_dead_api_server(tmp_path: Path) -> None:
    layout = _layout(tmp_path)
    assert Cluster.load(layout) is None
    layout.state.mkdir()
    layout.lock.write_text("{not json")
    assert Cluster.load(layout) is None
    assert not Cluster(layout, {"kube-apiserver": 2**22 + 1}).running()
    assert not Cluster(layout).running()


def test_exclusive_takes_a_lock_beside_the_state_folder(tmp_path: Path) -> None:
    layout = _layout(tmp_path)
    with exclusive(layout):
        assert (tmp_path / ".state.lock").exists()
    with exclusive(layout):  # released: taken again at once
        pass
