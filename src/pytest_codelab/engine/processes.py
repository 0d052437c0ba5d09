"""Start, find and stop the cluster's processes.

Each component runs inside the cluster's network namespace (``nsenter --net``, which
keeps the host's mount namespace so kubelet's volume mounts are visible to containerd),
logs to its own file and leaves a pid file. Stopping never trusts pid files alone: it
also finds every process running one of the engine's binaries or living in the pods'
cgroups, so a run killed half-way is still cleaned up.

A recorded pid is trusted only with its :class:`Identity` (the executable and the start
time the kernel gives it): pids are reused, and a record outliving its cluster (a reboot, a
killed ``down``) may name somebody else's process, which the engine must never signal.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_codelab.engine.errors import EngineError
from pytest_codelab.engine.layout import NETNS, WORKER_PREFIX, Layout
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


#: The launcher every component is started through (it execs the component's binary).
LAUNCHER = "nsenter"
_DELETED = " (deleted)"


@dataclass(frozen=True)
class Identity:
    """What makes a pid the process the engine started: the binary it runs and its start
    time (clock ticks after boot, /proc/<pid>/stat field 22) in this boot."""

    exe: str
    start_ticks: int
    boot_id: str

    def to_dict(self) -> dict[str, Any]:
        return {"exe": self.exe, "start_ticks": self.start_ticks, "boot_id": self.boot_id}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Identity | None:
        """The identity a record holds, or None when it holds none usable."""
        try:
            return cls(str(doc["exe"]), int(doc["start_ticks"]), str(doc["boot_id"]))
        except (KeyError, TypeError, ValueError):
            return None


def boot_id() -> str:
    """This boot's id: start times count from boot, so they compare only within one."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def start_ticks(pid: int) -> int | None:
    """The start time of ``pid`` in clock ticks after boot, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            # After the command name (which may hold spaces and parentheses) comes field 3,
            # the state; field 22, the start time, is the 20th from there.
            return int(f.read().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def exe_of(pid: int) -> str | None:
    """The executable ``pid`` runs (a replaced binary keeps its path), or None."""
    try:
        exe = os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return None
    return exe.removesuffix(_DELETED)


def _launched(pid: int) -> str | None:
    """The binary a launcher process is about to exec: the word after ``--`` in its
    command line, resolved like the kernel will (the record may be taken before exec)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return None
    if os.path.basename(argv[0]) == LAUNCHER and "--" in argv:
        argv = argv[argv.index("--") + 1 :]
    if not argv or not argv[0]:
        return None
    found = argv[0] if "/" in argv[0] else shutil.which(argv[0])
    return os.path.realpath(found) if found else None


def identify(pid: int) -> Identity | None:
    """The identity of the live process ``pid`` (the component, not its launcher), or None."""
    ticks, exe = start_ticks(pid), _exe_past_launcher(pid)
    if ticks is None or exe is None:
        return None
    return Identity(exe, ticks, boot_id())


def _exe_past_launcher(pid: int, tries: int = 1000) -> str | None:
    """The binary ``pid`` runs or, while it is still the launcher, the one it execs. While
    the exec happens, the command line reads empty for an instant: read again (a bounded
    number of times, yielding the processor: the exec takes microseconds)."""
    for _ in range(tries):
        exe = exe_of(pid)
        if exe is None or os.path.basename(exe) != LAUNCHER:
            return exe
        launched = _launched(pid)
        if launched is not None:
            return launched
        os.sched_yield()
    return exe_of(pid)


def ours(pid: int, recorded: Identity | None, bin_dir: Path) -> bool:
    """True when ``pid`` is still the process the record describes.

    With an identity: same boot, same start time, same executable. A record written before
    identities were kept has none: then the pid is ours only if it runs one of the engine's
    own binaries (``bin_dir``), which ``down`` stops anyway.
    """
    if not alive(pid):
        return False
    now = identify(pid)
    if now is None:
        return False
    if recorded is None:
        return now.exe.startswith(str(bin_dir).rstrip("/") + "/")
    return now == recorded


def describe(pid: int) -> str:
    """What ``pid`` runs now, for a message about a process the engine leaves alone."""
    now = identify(pid)
    return f"pid {pid} runs {now.exe}" if now else f"pid {pid} is gone"


#: Go's garbage-collection target for the engine's components (see start()).
GOGC = "50"


def start(
    layout: Layout,
    name: str,
    argv: list[str],
    env: dict[str, str] | None = None,
    netns: str = NETNS,
) -> Component:
    """Start ``argv`` in a node's network namespace (the control plane's unless ``netns``
    names another), detached, logging to a file."""
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
    cmd = ["nsenter", f"--net=/run/netns/{netns}", "--", *argv]
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


def hierarchies() -> list[Path]:
    """The cgroup v1 hierarchies (and a cgroup v2 mount) under /sys/fs/cgroup."""
    if not CGROUP_ROOT.exists():
        return []
    return sorted(h for h in CGROUP_ROOT.iterdir() if h.is_dir() and not h.is_symlink())


def is_node_cgroup(name: str) -> bool:
    """True for the name of a node's cgroup subtree (``codelab``, ``codelab-w<i>``)."""
    suffix = name.removeprefix(WORKER_PREFIX)
    return name == NETNS or (name.startswith(WORKER_PREFIX) and suffix.isdigit())


def node_cgroup_tops(node_root: str | None = None) -> list[Path]:
    """Every node's cgroup subtree (or only ``node_root``'s, e.g. ``/codelab-w1``)."""
    tops = []
    for hierarchy in hierarchies():
        if node_root is not None:
            tops.append(hierarchy / node_root.strip("/"))
        else:
            tops.extend(d for d in hierarchy.iterdir() if d.is_dir() and is_node_cgroup(d.name))
    return [t for t in tops if t.is_dir()]


def make_node_cgroup(node_root: str) -> None:
    """Create a node's cgroup subtree in every hierarchy (kubelet refuses a missing
    ``cgroupRoot``); a new cpuset starts empty, so it gets its parent's CPUs and memory."""
    for hierarchy in hierarchies():
        top = hierarchy / node_root.strip("/")
        top.mkdir(exist_ok=True)
        for key in ("cpuset.cpus", "cpuset.mems"):
            if (top / key).exists() and not (top / key).read_text().strip():
                (top / key).write_text((hierarchy / key).read_text())


def pod_cgroup_dirs(node_root: str | None = None) -> list[Path]:
    """Every cgroup directory kubelets made for pods, deepest first: under each node's
    subtree (or only ``node_root``'s), and under a top-level ``kubepods`` left by a
    one-node cluster of an earlier version."""
    dirs: list[Path] = []
    tops = [t / POD_CGROUP for t in node_cgroup_tops(node_root)]
    if node_root is None:
        tops += [h / POD_CGROUP for h in hierarchies()]
    for top in tops:
        if top.is_dir():
            dirs.extend(p for p in top.rglob("*") if p.is_dir())
            dirs.append(top)
    return sorted(set(dirs), key=lambda p: len(p.parts), reverse=True)


def pod_pids(node_root: str | None = None) -> set[int]:
    """Pids of every process in a pod cgroup (containers and pause processes) of every
    node, or of the node whose cgroup subtree is ``node_root``."""
    pids: set[int] = set()
    for d in pod_cgroup_dirs(node_root):
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
    """Kill whatever is left in pod cgroups and remove the cgroups, deepest first, then
    the nodes' own subtrees."""
    stop(pod_pids(), grace=0, kill_wait=kill_wait, what="pod processes")
    for d in [*pod_cgroup_dirs(), *node_cgroup_tops()]:
        try:
            d.rmdir()
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise EngineError(f"could not remove cgroup {d}: {exc}") from exc
