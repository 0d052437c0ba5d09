"""The image code's error, and the one way it runs a host command (mmdebstrap, apt, ctr)."""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from pytest_codelab.engine.errors import EngineError


class ImageError(EngineError):
    """An image could not be built or imported; ``detail`` holds the command's output."""


def run(
    cmd: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float | None = None,
) -> str:
    """Run a command; on failure raise ImageError naming it, with its output tail."""
    try:
        proc = subprocess.run(
            list(cmd),
            env=dict(env) if env is not None else None,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError as exc:
        raise ImageError(f"command not found: {cmd[0]} (in: {shlex.join(cmd)})") from exc
    except subprocess.TimeoutExpired as exc:
        out = exc.output if isinstance(exc.output, str) else ""
        raise ImageError(f"command timed out after {timeout}s: {shlex.join(cmd)}", out) from exc
    if proc.returncode != 0:
        raise ImageError.from_command(list(cmd), proc.returncode, proc.stdout)
    return proc.stdout
