"""Start, find and stop the cluster's processes.

Each component runs inside the cluster's network namespace (``nsenter --net``, which
keeps the host's mount namespace so kubelet's volume mounts are visible to containerd),
logs to its own file and leaves a pid file. Stopping never trusts pid files alone: it
also finds every process running one of the engine's binaries or living in the pods'
cgroups, so a run killed half-way is still cleaned up.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pytest_codelab.engine.errors import EngineError
from pytest_codelab.engine.layout import NETNS, Layout
from pytest_codelab.engine.waiting import poll

#: cgroup v1 hierarchies kubelet creates pod cgroups in (cgroupfs driver).
CGROUP_ROOT = Path("/sys/fs/cgroup")
POD_CGROUP = "kubepods"


@dataclass(frozen=True)
class Component:
    """A running component: its name, pid and log file."""

    name: str
    pid: int
    log: Path


#: Go's garbage-collection target for the engine's components (see start()).
GOGC = "50"


def start(
    layout: Layout, name: str, argv: list[str], env: dict[str, str] | None = None
) -> Component:
    """Start ``argv`` in the cluster's network namespace, detached, logging to a file."""
    layout.logs.mkdir(parents=True, exist_ok=True)
    layout.pids.mkdir(parents=True, exist_ok=True)
    log = layout.logs / f"{name}.log"
    full_env = dict(os.environ)
    full_env["PATH"] = f"{layout.bin}:{full_env.get('PATH', '/usr/bin:/bin')}"
    # Every component is a Go program: collecting at 50% heap growth instead of 100% keeps
    # the idle cluster under 1 GiB resident for a little CPU (GOGC in the caller's
    # environment wins).
    full_env.setdefault("GOGC", GOGC)
    full_env.update(env or {})
    cmd = ["nsenter", f"--net=/run/netns/{NETNS}", "--", *argv]
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=full_env,
            start_new_session=True,
        )
    (layout.pids / name).write_text(str(proc.pid))
    return Component(name, proc.pid, log)


def alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def log_tail(path: Path, lines: int = 25) -> str:
    """The last lines of a component's log, for error messages."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def check_running(component: Component) -> None:
    """Raise an EngineError naming the component and its last log lines if it died."""
    if not alive(component.pid):
        raise EngineError(
            f"{component.name} exited during start-up (log: {component.log})",
            log_tail(component.log),
        )


def engine_pids(layout: Layout) -> list[int]:
    """Pids of processes running a binary from the engine's bin folder."""
    found = []
    prefix = str(layout.bin) + "/"
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            exe = os.readlink(entry / "exe")
        except OSError:
            continue
        if exe.startswith(prefix):
            found.append(int(entry.name))
    return found


def pod_cgroup_dirs() -> list[Path]:
    """Every cgroup directory kubelet made for pods, deepest first."""
    dirs: list[Path] = []
    if not CGROUP_ROOT.exists():
        return dirs
    for hierarchy in CGROUP_ROOT.iterdir():
        top = hierarchy / POD_CGROUP
        if top.is_dir():
            dirs.extend(p for p in top.rglob("*") if p.is_dir())
            dirs.append(top)
    return sorted(set(dirs), key=lambda p: len(p.parts), reverse=True)


def pod_pids() -> set[int]:
    """Pids of every process in a pod cgroup (containers and pause processes)."""
    pids: set[int] = set()
    for d in pod_cgroup_dirs():
        try:
            text = (d / "cgroup.procs").read_text()
        except OSError:
            continue
        pids.update(int(x) for x in text.split())
    return pids


def signal_all(pids: Iterable[int], sig: int) -> None:
    """Send ``sig`` to each pid that still exists."""
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def stop(pids: Iterable[int], *, grace: float, kill_wait: float, what: str) -> None:
    """SIGTERM, wait up to ``grace`` seconds, then SIGKILL what is left and wait up to
    ``kill_wait`` seconds until it is gone."""
    pending = {p for p in pids if alive(p)}

    def gone() -> tuple[bool, str]:
        pending.intersection_update({p for p in pending if alive(p)})
        return not pending, f"pids {sorted(pending)} alive"

    signal_all(pending, signal.SIGTERM)
    poll(gone, timeout=grace, interval=0.05)
    signal_all(pending, signal.SIGKILL)
    poll(gone, timeout=kill_wait, interval=0.05)
    if pending:
        raise EngineError(f"could not stop {what}: pids {sorted(pending)} survive SIGKILL")


def remove_pod_cgroups(kill_wait: float) -> None:
    """Kill whatever is left in pod cgroups and remove the cgroups, deepest first."""
    stop(pod_pids(), grace=0, kill_wait=kill_wait, what="pod processes")
    for d in pod_cgroup_dirs():
        try:
            d.rmdir()
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise EngineError(f"could not remove cgroup {d}: {exc}") from exc
