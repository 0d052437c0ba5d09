"""The cluster record that ``up`` writes and ``down``/``status`` read."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_codelab.engine import processes
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


# --------------------------------------------------------------------------- stale records


def _sleep() -> subprocess.Popen[bytes]:
    """An unrelated live process a stale record can point at."""
    return subprocess.Popen(["sleep", "60"])


def _stale_record(layout: Layout, pid: int, identity: dict[str, object] | None) -> None:
    """A record as an earlier cluster left it, naming ``pid`` for two components."""
    layout.state.mkdir(exist_ok=True)
    doc: dict[str, object] = {"components": {"kube-apiserver": pid, "kubelet": pid}}
    if identity is not None:
        doc["identities"] = {str(pid): identity}
    layout.lock.write_text(json.dumps(doc))


def test_save_records_the_identity_of_each_pid(tmp_path: Path) -> None:
    layout = _layout(tmp_path)
    layout.state.mkdir()
    Cluster(layout, {"kube-apiserver": os.getpid()}).save()
    again = Cluster.load(layout)
    assert again is not None
    identity = again.identities[os.getpid()]
    assert identity.exe == os.path.realpath(sys.executable)
    assert identity.start_ticks == processes.start_ticks(os.getpid())
    assert identity.boot_id == processes.boot_id() != ""


@pytest.mark.parametrize("kind", ["old record", "reused pid"])
def test_a_pid_that_is_not_the_engines_is_not_running(tmp_path: Path, kind: str) -> None:
    layout = _layout(tmp_path)
    proc = _sleep()
    try:
        identity = None
        if kind == "reused pid":  # the same binary, started at another time
            real = processes.identify(proc.pid)
            assert real is not None
            identity = {**real.to_dict(), "start_ticks": real.start_ticks - 1}
        _stale_record(layout, proc.pid, identity)
        cluster = Cluster.load(layout)
        assert cluster is not None
        assert not cluster.running()
        assert cluster.foreign() == {"kube-apiserver": proc.pid, "kubelet": proc.pid}
    finally:
        proc.kill()
        proc.wait()


def test_an_old_record_of_an_engine_binary_is_ours(tmp_path: Path) -> None:
    layout = _layout(tmp_path)
    layout.bin.mkdir()
    binary = layout.bin / "kube-apiserver"
    shutil.copy(shutil.which("sleep") or "/bin/sleep", binary)
    proc = subprocess.Popen([str(binary), "60"])
    try:
        _stale_record(layout, proc.pid, None)
        cluster = Cluster.load(layout)
        assert cluster is not None and cluster.running() and cluster.foreign() == {}
    finally:
        proc.kill()
        proc.wait()


def test_malformed_identities_count_as_none(tmp_path: Path) -> None:
    layout = _layout(tmp_path)
    _stale_record(layout, os.getpid(), {"exe": "/x", "start_ticks": "soon"})
    cluster = Cluster.load(layout)
    assert cluster is not None and cluster.identities == {} and not cluster.running()
