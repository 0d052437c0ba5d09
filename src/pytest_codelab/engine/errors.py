"""The engine's one error type: a one-line message, plus the command and output behind it."""

from __future__ import annotations

import shlex


class EngineError(Exception):
    """A failure of the local engine, with what a person needs to rerun or read it.

    ``str()`` is one line; ``detail`` holds the failed command's output tail or the
    failing component's last log lines, printed below that line by the CLI.
    """

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail

    @classmethod
    def from_command(cls, cmd: list[str], code: int, output: str, tail: int = 30) -> EngineError:
        """An error naming the command that failed, its exit code and the end of its output."""
        last = "\n".join(output.strip().splitlines()[-tail:])
        return cls(f"command failed (exit {code}): {shlex.join(cmd)}", last)
