"""The local provider turns the gate's Settings into engine calls (the engine faked)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pytest_codelab.engine import versions
from pytest_codelab.engine.errors import EngineError
from pytest_codelab.engine.layout import Layout
from pytest_codelab.engine.timeouts import Timeouts
from pytest_codelab.errors import ProviderUnavailable
from pytest_codelab.providers import local
from pytest_codelab.settings import Settings


class FakeEngine:
    """Records the engine calls the provider makes; ``running`` says whether a cluster is."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, running: bool) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.running = running
        m = monkeypatch
        m.setattr(local.status, "running_cluster", lambda layout: object() if running else None)
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
    assert calls["up"] == {"extras": [], "timeout_scale": 2.5}
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
