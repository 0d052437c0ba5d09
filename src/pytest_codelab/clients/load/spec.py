"""One bounded Locust run, described: the target, the load, how it is distributed.

Bounded whatever the caller asks: users, spawn rate, run time and workers have hard maxima
(2-core machines share the CPU with the cluster under test), and the target must be a
loopback or cluster address. Secrets reach Locust only through ``LoadSpec.env`` (or, for
pods, ``secretKeyRef``); they are never on a command line, in a log line of the gate or in a
result."""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pytest_codelab.clients.ingress import check_address
from pytest_codelab.resources import bundled_path

#: Hard bounds of one run (2-core machines share the CPU with the cluster under test).
MAX_USERS = 200
MAX_SPAWN_RATE = 50.0
MAX_RUN_TIME = 90.0
MAX_WORKERS = 8
#: Seconds Locust gets to start (import, connect) before the run-time clock is considered late.
START_GRACE = 30.0
#: Seconds after SIGINT before SIGTERM, and after SIGTERM before SIGKILL.
STOP_GRACE = 15.0
KILL_GRACE = 5.0


#: Environment variables the locustfile reads (see loadtests/codelab.py).
SERVED_BY_ENV = "CODELAB_LOAD_SERVED_BY_FILE"
SECRET_ENV = "CODELAB_OAUTH_CLIENT_SECRET"
CA_FILE_ENV = "CODELAB_LOAD_CA_FILE"


def default_locustfile() -> Path:
    """The bundled CodeLab locustfile (``loadtests/codelab.py``)."""
    return bundled_path("loadtests") / "codelab.py"


@dataclass(frozen=True)
class LoadSpec:
    """One Locust run: the target, the bounded load, and how it is distributed.

    ``env`` is added to the environment of Locust (the place for the client secret and the
    locustfile's settings); ``local_workers`` worker processes run on this host, and the master
    waits for ``local_workers + remote_workers`` workers (remote ones: pods) before it starts.
    ``ca_pem``: the CA certificates the users trust besides the system's (the run's
    ``Trust.pem``); they reach every process and pod as the file ``CODELAB_LOAD_CA_FILE``.
    """

    host: str
    users: int
    spawn_rate: float
    run_time: float
    locustfile: Path | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    name: str = "load"
    local_workers: int = 0
    remote_workers: int = 0
    master_bind_host: str = "127.0.0.1"
    master_port: int = 0
    expect_workers_wait: float = 60.0
    stop_timeout: float = 0.0
    user_classes: tuple[str, ...] = ()
    ca_pem: str = ""

    @property
    def workers(self) -> int:
        return self.local_workers + self.remote_workers

    @property
    def distributed(self) -> bool:
        return self.workers > 0

    def validate(self) -> None:
        """ValueError for anything out of bounds or not aimed at a loopback/cluster address."""
        parts = urllib.parse.urlsplit(self.host)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"load host must be http(s)://ADDRESS[:PORT], not {self.host!r}")
        check_address(parts.hostname)
        if not 1 <= self.users <= MAX_USERS:
            raise ValueError(f"users must be in 1..{MAX_USERS}, not {self.users}")
        if not 0 < self.spawn_rate <= MAX_SPAWN_RATE:
            raise ValueError(
                f"spawn rate must be in (0, {MAX_SPAWN_RATE:g}], not {self.spawn_rate}"
            )
        if not 0 < self.run_time <= MAX_RUN_TIME:
            raise ValueError(f"run time must be in (0, {MAX_RUN_TIME:g}] s, not {self.run_time}")
        if not 0 <= self.workers <= MAX_WORKERS or min(self.local_workers, self.remote_workers) < 0:
            raise ValueError(f"workers must be in 0..{MAX_WORKERS}, not {self.workers}")
        if not self.name.replace("-", "").replace("_", "").isalnum():
            raise ValueError(f"run name must be letters, digits, - and _, not {self.name!r}")

    @property
    def deadline(self) -> float:
        """Seconds after start when the run is overdue and gets killed."""
        wait = self.expect_workers_wait if self.distributed else 0.0
        return START_GRACE + wait + self.run_time + self.stop_timeout + STOP_GRACE
