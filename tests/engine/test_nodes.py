"""The node-loss API refuses what is no worker, finds a node's own shims only, and is what
the CLI's ``node stop|start`` runs."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from pytest_codelab.engine import cli, nodes
from pytest_codelab.engine.errors import EngineError
from pytest_codelab.engine.layout import Layout, Node
from pytest_codelab.engine.state import Cluster
from pytest_codelab.engine.timeouts import Timeouts


def _layout(tmp_path: Path) -> Layout:
    return Layout(state=tmp_path / "state", cache=tmp_path / "cache", bin=tmp_path / "bin")


def test_no_running_cluster_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(EngineError, match="no local cluster is running"):
        nodes.worker_names(_layout(tmp_path))
    with pytest.raises(EngineError, match="no local cluster is running"):
        nodes.stop_node(_layout(tmp_path), "codelab-w1", Timeouts())


@pytest.mark.parametrize("name", ["codelab", "codelab-w4", "kind-worker"])
def test_only_a_worker_of_this_cluster_can_be_lost(tmp_path: Path, name: str) -> None:
    cluster = Cluster(_layout(tmp_path), workers=3)
    with pytest.raises(EngineError, match="workers: codelab-w1, codelab-w2, codelab-w3"):
        nodes.worker(cluster, name)
    assert nodes.worker(cluster, "codelab-w3") == Node(3)


def test_shims_are_told_apart_by_their_containerds_socket(tmp_path: Path) -> None:
    """A shim of another node (or of another containerd) is not killed with this node."""
    lay = _layout(tmp_path)
    lay.bin.mkdir(parents=True)
    shim = lay.bin / "containerd-shim-runc-v2"
    shim.symlink_to("/bin/sleep")  # a link to another binary is no shim
    assert nodes.shim_pids(lay, Node(1)) == []
    fake = lay.bin / "containerd-shim-runc-v2"
    fake.unlink()
    fake.write_bytes(Path("/bin/sh").read_bytes())
    fake.chmod(0o755)
    own = str(lay.node_containerd_socket(Node(1)))
    other = str(lay.node_containerd_socket(Node(2)))
    # A copy of sh blocked on a builtin read: it stays the process its exe names.
    wait = ["-c", "read x", "-address"]
    mine = subprocess.Popen([str(fake), *wait, own], stdin=subprocess.PIPE)
    theirs = subprocess.Popen([str(fake), *wait, other], stdin=subprocess.PIPE)
    try:
        assert nodes.shim_pids(lay, Node(1)) == [mine.pid]
    finally:
        for p in (mine, theirs):
            p.kill()
            p.wait()


def test_cli_node_verbs_reach_the_api(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, str, float]] = []
    monkeypatch.setattr(
        nodes, "main_node", lambda verb, name, scale: seen.append((verb, name, scale))
    )
    assert cli.main(["node", "stop", "codelab-w2", "--timeout-scale", "2"]) == 0
    assert cli.main(["node", "start", "codelab-w2"]) == 0
    assert seen == [("stop", "codelab-w2", 2.0), ("start", "codelab-w2", 1.0)]


def test_up_takes_a_worker_count() -> None:
    assert cli.parser().parse_args(["up"]).workers == 3
    assert cli.parser().parse_args(["up", "--workers", "1"]).workers == 1
    with pytest.raises(SystemExit):
        cli.parser().parse_args(["up", "--workers", "0"])
