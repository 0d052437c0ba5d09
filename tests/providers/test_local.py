"""The local provider turns the gate's Settings into engine calls (the engine faked)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from pytest_codelab.engine import versions
from pytest_codelab.engine.errors import EngineError
from pytest_codelab.engine.layout import Layout
from pytest_codelab.engine.timeouts import Timeouts
from pytest_codelab.errors import ProviderUnavailable
from pytest_codelab.providers import local
from pytest_codelab.providers.base import NodeControl
from pytest_codelab.settings import Settings


class FakeEngine:
    """Records the engine calls the provider makes; ``running`` says whether a cluster is."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, running: bool, workers: int = 3) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.running = running
        m = monkeypatch
        record = SimpleNamespace(workers=workers)
        m.setattr(local.status, "running_cluster", lambda layout: record if running else None)
        m.setattr(local.build, "build", lambda names=None, addons=(): self.add("build", names))
        m.setattr(
            local.recipes, "build_engine_images", lambda timeouts: self.add("images", timeouts)
        )
        m.setattr(local.up, "up", lambda layout, **kw: self.add("up", kw))
        m.setattr(local.up, "install_extras", lambda layout, extras, **kw: self.add("extras", kw))
        m.setattr(local.loading, "load_codelab_images", lambda layout, t: self.add("codelab", t))
        m.setattr(local, "down", lambda layout, **kw: self.add("down", kw))

    def add(self, name: str, arg: Any) -> None:
        self.calls.append((name, arg))

    def names(self) -> list[str]:
        return [n for n, _ in self.calls]


def _layout(tmp_path: Path) -> Layout:
    return Layout(state=tmp_path / "state", cache=tmp_path / "cache", bin=tmp_path / "bin")


def test_starts_a_cluster_with_the_gates_timeout_scale_and_stops_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = FakeEngine(monkeypatch, running=False)
    provider = local.LocalCluster(Settings(cluster="local", timeout_scale=2.5), _layout(tmp_path))
    handle = provider.start()
    assert engine.names() == ["build", "images", "up", "codelab"]
    calls = dict(engine.calls)
    assert calls["up"] == {"extras": [], "timeout_scale": 2.5, "workers": 3}
    assert calls["images"] == calls["codelab"] == Timeouts().scaled(2.5)
    assert handle.created and handle.name == "local" and handle.context == "codelab"
    assert handle.kubeconfig == tmp_path / "state" / "kubeconfig"
    assert handle.load_image == versions.LOCUST_IMAGE
    provider.stop()
    assert engine.calls[-1] == ("down", {"timeout_scale": 2.5})


def test_reuses_a_running_cluster_and_adds_velero(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = FakeEngine(monkeypatch, running=True)
    settings = Settings(cluster="local", local_velero=True)
    provider = local.LocalCluster(settings, _layout(tmp_path))
    assert not provider.start().created
    assert engine.names() == ["build", "extras", "codelab"]
    assert engine.calls[0] == ("build", ["velero", "velero-plugin-for-aws", "minio"])
    assert engine.calls[1] == ("extras", {"timeout_scale": 1.0})
    provider.stop()  # never stops what it did not start
    assert "down" not in engine.names()


def test_engine_errors_become_one_provider_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    FakeEngine(monkeypatch, running=False)

    def fail(layout: Layout, **kw: Any) -> None:
        raise EngineError("etcd exited during start-up", "last log line")

    monkeypatch.setattr(local.up, "up", fail)
    with pytest.raises(ProviderUnavailable) as err:
        local.LocalCluster(Settings(cluster="local"), _layout(tmp_path)).start()
    assert err.value.message == "local cluster: etcd exited during start-up last log line"


def test_local_extras_join_the_addons_option_and_the_velero_shorthand() -> None:
    assert local.local_extras(Settings(cluster="local")) == []
    both = Settings(cluster="local", local_velero=True, local_addons=("vpa", "cert-manager"))
    assert local.local_extras(both) == ["velero", "cert-manager", "vpa"]  # engine order


def test_the_handle_says_where_pebble_publishes_its_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    FakeEngine(monkeypatch, running=True)
    handle = local.LocalCluster(Settings(cluster="local"), _layout(tmp_path)).start()
    assert handle.issuer_root_proxy == ("cert-manager", "https:pebble:management", "roots/0")


def test_starts_the_asked_number_of_workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = FakeEngine(monkeypatch, running=False)
    local.LocalCluster(Settings(cluster="local", local_workers=1), _layout(tmp_path)).start()
    assert dict(engine.calls)["up"]["workers"] == 1


def test_reusing_a_cluster_of_another_size_says_so_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = FakeEngine(monkeypatch, running=True, workers=1)
    provider = local.LocalCluster(Settings(cluster="local", local_workers=3), _layout(tmp_path))
    assert not provider.start().created
    assert "up" not in engine.names()
    (line,) = [x for x in capsys.readouterr().out.splitlines() if "reusing" in x]
    assert "1 workers" in line and "--codelab-local-workers=3" in line


def test_node_loss_goes_to_the_engine_and_its_errors_become_provider_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[str, str, Timeouts]] = []
    monkeypatch.setattr(local.nodes, "stop_node", lambda lay, n, t: calls.append(("stop", n, t)))
    monkeypatch.setattr(local.nodes, "start_node", lambda lay, n, t: calls.append(("start", n, t)))
    provider = local.LocalCluster(Settings(cluster="local", timeout_scale=2.0), _layout(tmp_path))
    assert isinstance(provider, NodeControl)
    provider.stop_node("codelab-w2")
    provider.start_node("codelab-w2")
    assert calls == [
        ("stop", "codelab-w2", Timeouts().scaled(2.0)),
        ("start", "codelab-w2", Timeouts().scaled(2.0)),
    ]

    def refuse(lay: Layout, name: str, t: Timeouts) -> None:
        raise EngineError(f"{name!r} is not a worker of the local cluster", "detail line")

    monkeypatch.setattr(local.nodes, "stop_node", refuse)
    with pytest.raises(ProviderUnavailable, match="local cluster: 'codelab' is not a worker"):
        provider.stop_node("codelab")
