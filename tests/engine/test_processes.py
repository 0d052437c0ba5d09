"""Stopping processes: SIGTERM, a grace period, SIGKILL, each wait bounded."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pytest_codelab.engine import processes
from pytest_codelab.engine.errors import EngineError


def _child(ignore_term: bool) -> subprocess.Popen[bytes]:
    code = "import signal, time\n"
    if ignore_term:
        code += "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    code += "print('up', flush=True)\ntime.sleep(60)\n"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline() == b"up\n"
    return proc


@pytest.mark.parametrize("ignore_term", [False, True])
def test_stop_terminates_then_kills(ignore_term: bool) -> None:
    proc = _child(ignore_term)
    started = time.monotonic()
    # The child is reaped by Popen.wait in a thread-free way: poll() after stop.
    processes.stop([proc.pid], grace=0.3, kill_wait=5, what="child")
    proc.wait(timeout=5)
    assert time.monotonic() - started < 5
    assert proc.returncode == (-9 if ignore_term else -15)


def test_stop_names_what_survives(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(processes, "alive", lambda pid: True)
    monkeypatch.setattr(processes, "signal_all", lambda pids, sig: None)
    with pytest.raises(EngineError, match=r"could not stop ghost: pids \[4242\] survive SIGKILL"):
        processes.stop([4242], grace=0, kill_wait=0.05, what="ghost")


def test_identify_names_the_binary_a_launcher_execs() -> None:
    """Recorded right after the start, the pid may still be nsenter: the identity is the
    component's binary either way (what /proc/<pid>/exe shows once it runs)."""
    proc = subprocess.Popen([processes.LAUNCHER, "--", "sleep", "60"])
    try:
        identity = processes.identify(proc.pid)
        assert identity is not None
        assert identity.exe == os.path.realpath(shutil.which("sleep") or "/bin/sleep")
        assert identity.start_ticks == processes.start_ticks(proc.pid)
        assert processes.ours(proc.pid, identity, Path("/nonexistent"))
        moved = processes.Identity(identity.exe, identity.start_ticks + 1, identity.boot_id)
        assert not processes.ours(proc.pid, moved, Path("/nonexistent"))
    finally:
        proc.kill()
        proc.wait()
    assert processes.identify(proc.pid) is None
    assert processes.describe(proc.pid) == f"pid {proc.pid} is gone"
