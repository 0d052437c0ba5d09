"""The running cluster's record and the machine-wide lock of ``up`` and ``down``.

Apart from ``up`` so that ``down`` and ``status`` read the record without importing the
start-up sequence: ``up`` may import ``down`` (to undo a failed start), never the reverse.
"""

from __future__ import annotations

import fcntl
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

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

    def save(self) -> None:
        """Write the record (the cluster's lock: a second ``up`` finds it)."""
        doc = {
            "components": self.components,
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
        )

    def running(self) -> bool:
        """True when the API server the record names is still alive."""
        pid = self.components.get("kube-apiserver")
        return pid is not None and processes.alive(pid)


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
