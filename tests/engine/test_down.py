"""``down`` stops the recorded components that are the engine's, and only those."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from pytest_codelab.engine.down import stop_components
from pytest_codelab.engine.layout import Layout
from pytest_codelab.engine.state import Cluster
from pytest_codelab.engine.timeouts import Timeouts


def test_down_never_signals_a_process_the_record_no_longer_owns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    layout = Layout(state=tmp_path / "state", cache=tmp_path / "cache", bin=tmp_path / "bin")
    layout.state.mkdir()
    unrelated = subprocess.Popen(["sleep", "60"])
    ours = subprocess.Popen(["sleep", "60"])
    try:
        cluster = Cluster(layout, {"kubelet": ours.pid})
        cluster.save()  # kubelet recorded with its identity, as up does
        doc = json.loads(layout.lock.read_text())
        # An old record (no identity) naming an unrelated process for kube-proxy.
        doc["components"]["kube-proxy"] = unrelated.pid
        layout.lock.write_text(json.dumps(doc))
        loaded = Cluster.load(layout)
        assert loaded is not None
        stop_components(loaded, Timeouts().scaled(1.0))
        assert ours.wait(timeout=10) is not None
        with pytest.raises(subprocess.TimeoutExpired):  # still alive half a second later
            unrelated.wait(timeout=0.5)
        out = capsys.readouterr().out
        assert f"kube-proxy: recorded pid {unrelated.pid} runs " in out
        assert "not the engine's process; left alone" in out
    finally:
        for proc in (unrelated, ours):
            proc.kill()
            proc.wait()


def test_every_nodes_agents_stop_together_kind_by_kind() -> None:
    from pytest_codelab.engine.down import STOP_ORDER, by_kind

    names = ["kube-proxy@codelab-w1", "kubelet", "etcd", "kubelet@codelab-w2", "kube-proxy"]
    groups = dict(by_kind(names, STOP_ORDER))
    assert list(groups)[:2] == ["kubelet", "kube-proxy"]
    assert groups["kubelet"] == ["kubelet", "kubelet@codelab-w2"]
    assert groups["kube-proxy"] == ["kube-proxy@codelab-w1", "kube-proxy"]
    assert all("etcd" not in g for g in groups.values())


def test_down_finds_the_namespaces_of_any_number_of_nodes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pytest_codelab.engine import down as down_module

    run = tmp_path / "netns"
    run.mkdir()
    for name in ("codelab", "codelab-w1", "codelab-w17", "codelab-switch", "other", "codelab-x"):
        (run / name).touch()
    monkeypatch.setattr(down_module, "NETNS_DIR", run)
    assert down_module.cluster_netns() == ["codelab", "codelab-switch", "codelab-w1", "codelab-w17"]
