"""``codelab-cluster status`` on a record whose pids are no longer the engine's."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_codelab.engine import processes
from pytest_codelab.engine.layout import Layout
from pytest_codelab.engine.state import Cluster
from pytest_codelab.engine.status import print_status


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    """An unrelated live process (not the engine's) a stale record points at."""
    proc = subprocess.Popen(["sleep", "60"])
    yield proc
    proc.kill()
    proc.wait()


def _layout(tmp_path: Path) -> Layout:
    return Layout(state=tmp_path / "state", cache=tmp_path / "cache", bin=tmp_path / "bin")


def test_status_names_a_stale_record_and_leaves_its_process(
    tmp_path: Path, sleeper: subprocess.Popen[bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    layout = _layout(tmp_path)
    layout.state.mkdir()
    layout.lock.write_text(json.dumps({"components": {"kube-apiserver": sleeper.pid}}))
    assert print_status(layout) == 3
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("local cluster: not running")
    assert out[1] == (
        f"stale record {layout.lock}: kube-apiserver pid {sleeper.pid} runs "
        f"{processes.exe_of(sleeper.pid)}, not the engine's process; left alone "
        "(`codelab-cluster down` removes the record)"
    )
    assert sleeper.poll() is None


def test_status_of_a_running_cluster_marks_a_reused_pid(
    tmp_path: Path, sleeper: subprocess.Popen[bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    layout = _layout(tmp_path)
    layout.state.mkdir()
    other = subprocess.Popen(["sleep", "60"])
    try:
        cluster = Cluster(layout, {"kube-apiserver": sleeper.pid})
        cluster.save()  # the API server's identity is recorded: it is "ours"
        # kubelet's pid was recorded with another process's identity: reused since.
        real = processes.identify(other.pid)
        assert real is not None
        cluster.components["kubelet"] = other.pid
        cluster.identities[other.pid] = processes.Identity(
            real.exe, real.start_ticks + 7, real.boot_id
        )
        cluster.save()
        assert print_status(layout) == 0
        lines = capsys.readouterr().out.splitlines()
        assert f"  kube-apiserver           pid {sleeper.pid:<8} running" in lines
        assert any(
            line.startswith("  kubelet ") and f"NOT OURS (pid {other.pid} runs " in line
            for line in lines
        ), lines
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()
