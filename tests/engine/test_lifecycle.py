"""The local engine's life cycle: up with three workers (four nodes Ready), a refused second
up, status, a worker lost and brought back, and a down that leaves nothing behind (process,
mount, interface, namespace, packet-filter rule, cgroup, sysctl).

These start and stop the real cluster, so they run in their own pytest invocation with no
``--codelab-cluster`` (see scripts/test.sh), as root, with the engine built.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from pytest_codelab.engine import addons, cli, nodes, processes
from pytest_codelab.engine.down import down, mount_points
from pytest_codelab.engine.errors import EngineError
from pytest_codelab.engine.layout import SWITCH_NETNS, Layout
from pytest_codelab.engine.timeouts import Timeouts
from pytest_codelab.engine.up import KUBELET_SYSCTLS, up

WORKERS = 3

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="the engine needs root"),
    pytest.mark.skipif(
        os.environ.get("CODELAB_ENGINE_TESTS") != "1",
        reason="engine life-cycle tests start a real cluster: set CODELAB_ENGINE_TESTS=1",
    ),
]


def _out(*cmd: str) -> str:
    return subprocess.run(cmd, capture_output=True, text=True).stdout


@dataclass(frozen=True)
class HostSnapshot:
    """What the host looks like, in the respects ``down`` promises to restore."""

    engine_processes: frozenset[int]
    mounts: frozenset[str]
    links: frozenset[str]
    netns: frozenset[str]
    iptables: str
    nft: str
    pod_cgroups: frozenset[str]
    node_cgroups: frozenset[str]
    sysctls: tuple[tuple[str, str], ...]
    state_exists: bool

    @classmethod
    def take(cls, layout: Layout) -> HostSnapshot:
        return cls(
            engine_processes=frozenset(processes.engine_pids(layout)),
            mounts=frozenset(mount_points()),
            links=frozenset(
                line.split(":")[1].strip().split("@")[0]
                for line in _out("ip", "-o", "link").splitlines()
            ),
            netns=frozenset(_out("ip", "netns", "list").split()),
            iptables=_out("iptables-save").strip(),
            nft=_out("nft", "list", "ruleset").strip() if Path("/usr/sbin/nft").exists() else "",
            pod_cgroups=frozenset(str(p) for p in processes.pod_cgroup_dirs()),
            node_cgroups=frozenset(str(p) for p in processes.node_cgroup_tops()),
            sysctls=tuple((k, Path("/proc/sys", k).read_text().strip()) for k in KUBELET_SYSCTLS),
            state_exists=layout.state.exists(),
        )


def _strip_comments(rules: str) -> str:
    return "\n".join(line for line in rules.splitlines() if not line.startswith("#"))


@pytest.fixture(scope="module")
def layout() -> Layout:
    """The default layout; the test refuses to run over a cluster someone else started."""
    lay = Layout.default()
    if lay.lock.exists():
        pytest.skip(f"a local cluster is already running ({lay.kubeconfig}); not touching it")
    return lay


def test_up_refuses_second_and_down_leaves_nothing(
    layout: Layout, capsys: pytest.CaptureFixture[str]
) -> None:
    before = HostSnapshot.take(layout)
    assert not before.state_exists
    try:
        cluster = up(layout, workers=WORKERS)  # with add-ons: pods, mounts, cgroups, pod netns
        assert layout.kubeconfig.exists()
        assert cluster.running()
        assert "kubeconfig" in capsys.readouterr().out
        assert _ready_nodes(layout) == ["codelab", "codelab-w1", "codelab-w2", "codelab-w3"]
        # A second up while one runs is refused, in one line that says what to do.
        with pytest.raises(EngineError, match="already running.*codelab-cluster down"):
            up(layout, with_addons=False)
        assert cli.main(["status"]) == 0
        assert str(layout.kubeconfig) in capsys.readouterr().out
        during = HostSnapshot.take(layout)
        assert during.engine_processes, "up started no engine process"
        assert {"codelab", SWITCH_NETNS, "codelab-w1", "codelab-w3"} <= during.netns
        _lose_and_bring_back(layout, "codelab-w2")
    finally:
        assert down(layout)
    after = HostSnapshot.take(layout)
    assert after.engine_processes == before.engine_processes
    assert after.mounts == before.mounts, f"mounts left: {sorted(after.mounts - before.mounts)}"
    assert after.links == before.links, f"links left: {sorted(after.links - before.links)}"
    assert after.netns == before.netns
    assert _strip_comments(after.iptables) == _strip_comments(before.iptables)
    assert after.nft == before.nft
    assert after.pod_cgroups == before.pod_cgroups
    assert after.node_cgroups == before.node_cgroups
    assert after.sysctls == before.sysctls
    assert not after.state_exists
    assert cli.main(["status"]) == 3


def _ready_nodes(layout: Layout) -> list[str]:
    out = addons.kubectl(
        layout,
        "get",
        "nodes",
        "-o",
        'jsonpath={range .items[?(@.status.conditions[-1].status=="True")]}{.metadata.name} {end}',
        timeout=Timeouts().kubectl,
    )
    return sorted(out.split())


def _lose_and_bring_back(layout: Layout, name: str) -> None:
    """A lost worker runs nothing of its own (its link down); started, it is Ready again."""
    t = Timeouts()
    assert name in nodes.worker_names(layout)
    nodes.stop_node(layout, name, t)
    own = str(layout.nodes_dir / name)
    left = [p for p in processes.engine_pids(layout) if own in _cmdline(p)]
    assert not left, f"{name} still runs {left}"
    assert not processes.pod_pids(f"/{name}"), f"{name}'s pods still run"
    link = _out("ip", "-n", SWITCH_NETNS, "-o", "link", "show", f"port{name[-1]}")
    assert "state DOWN" in link
    nodes.start_node(layout, name, t)
    assert name in _ready_nodes(layout)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""
