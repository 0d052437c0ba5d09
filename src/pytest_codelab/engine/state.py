"""The running cluster's record and the machine-wide lock of ``up`` and ``down``.

Apart from ``up`` so that ``down`` and ``status`` read the record without importing the
start-up sequence: ``up`` may import ``down`` (to undo a failed start), never the reverse.

The record keeps, beside each component's pid, that process's identity (executable and start
time, :class:`~pytest_codelab.engine.processes.Identity`), taken when the pid is recorded: a
pid whose process no longer matches is not the engine's, and ``status`` and ``down`` say so
and leave it alone. A record from before identities were kept counts a pid as the engine's
only while it runs one of the engine's binaries.
"""

from __future__ import annotations

import fcntl
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from pytest_codelab.engine import processes
from pytest_codelab.engine.layout import Layout


@dataclass
class Cluster:
    """What ``up`` started: recorded in the state folder so ``down`` and ``status`` find it."""

    layout: Layout
    components: dict[str, int] = field(default_factory=dict)
    sysctls: dict[str, str] = field(default_factory=dict)
    created_log_dir: bool = False
    started_at: float = 0.0
    identities: dict[int, processes.Identity] = field(default_factory=dict)
    #: Worker nodes beside the control plane (0 in a record from a one-node cluster).
    workers: int = 0

    def save(self) -> None:
        """Write the record (the cluster's lock: a second ``up`` finds it), with the
        identity of each pid recorded since the last save (``up`` saves right after each
        start, while the pid is certainly its own)."""
        for pid in self.components.values():
            if pid not in self.identities:
                found = processes.identify(pid)
                if found is not None:
                    self.identities[pid] = found
        doc = {
            "components": self.components,
            "identities": {str(pid): i.to_dict() for pid, i in self.identities.items()},
            "workers": self.workers,
            "sysctls": self.sysctls,
            "created_log_dir": self.created_log_dir,
            "started_at": self.started_at,
            "kubeconfig": str(self.layout.kubeconfig),
            "server": self.layout.server,
            "ingress_url": self.layout.ingress_url,
        }
        self.layout.lock.write_text(json.dumps(doc, indent=2))

    @classmethod
    def load(cls, layout: Layout) -> Cluster | None:
        """The record of a cluster started earlier, if any."""
        try:
            doc = json.loads(layout.lock.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        return cls(
            layout,
            {k: int(v) for k, v in doc.get("components", {}).items()},
            dict(doc.get("sysctls", {})),
            bool(doc.get("created_log_dir")),
            float(doc.get("started_at", 0.0)),
            _identities(doc.get("identities")),
            int(doc.get("workers", 0)),
        )

    def ours(self, name: str) -> bool:
        """True when component ``name``'s recorded pid is alive and still the process the
        engine started (see the module docstring)."""
        pid = self.components.get(name)
        return pid is not None and processes.ours(pid, self.identities.get(pid), self.layout.bin)

    def foreign(self) -> dict[str, int]:
        """Components whose recorded pid is alive but runs something else: never signalled.

        A pid whose identity cannot be read (a component exiting as ``down`` stops its
        neighbours) is not reported as someone else's: it is on its way out.
        """
        return {
            name: pid
            for name, pid in self.components.items()
            if processes.alive(pid) and processes.identify(pid) is not None and not self.ours(name)
        }

    def running(self) -> bool:
        """True when the API server the record names is alive and the engine's."""
        return self.ours("kube-apiserver")


def _identities(raw: Any) -> dict[int, processes.Identity]:
    """The identities of a record (malformed entries dropped: their pids are not ours)."""
    found: dict[int, processes.Identity] = {}
    if not isinstance(raw, dict):
        return found
    for pid, doc in raw.items():
        identity = processes.Identity.from_dict(doc) if isinstance(doc, dict) else None
        if identity is not None and str(pid).isdigit():
            found[int(pid)] = identity
    return found


@contextmanager
def exclusive(layout: Layout) -> Iterator[None]:
    """Serialize ``up`` and ``down`` on this machine (a second caller waits, then sees)."""
    layout.state.parent.mkdir(parents=True, exist_ok=True)
    lock_path = layout.state.parent / f".{layout.state.name}.lock"
    with open(lock_path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
