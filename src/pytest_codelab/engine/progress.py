"""Progress lines for long engine steps: what starts, how it ended, how long it took."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager


class Step:
    """A running step; ``note`` sets the word printed when it ends (e.g. cached, built)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.outcome = "ok"

    def note(self, outcome: str) -> None:
        """Record how the step ended."""
        self.outcome = outcome


@contextmanager
def step(name: str, prefix: str = "codelab") -> Iterator[Step]:
    """Print ``[prefix] name ...`` now and ``... outcome (N.Ns)`` when the block ends."""
    s = Step(name)
    started = time.monotonic()
    print(f"[{prefix}] {name} ...", file=sys.stderr, flush=True)
    try:
        yield s
    except BaseException:
        print(
            f"[{prefix}] {name}: FAILED ({time.monotonic() - started:.1f}s)",
            file=sys.stderr,
            flush=True,
        )
        raise
    print(
        f"[{prefix}] {name}: {s.outcome} ({time.monotonic() - started:.1f}s)",
        file=sys.stderr,
        flush=True,
    )
