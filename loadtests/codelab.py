"""CodeLab client traffic for Locust: a token from auth-service, then API calls through the Ingress.

Run by the gate (``pytest_codelab.clients.load``) headless against the Ingress address, e.g.::

    CODELAB_INGRESS_HOST=codelab.example.com CODELAB_OAUTH_CLIENT_SECRET=... \\
    python -m locust -f loadtests/codelab.py --headless -u 20 -r 5 -t 60s \\
        --host https://172.31.254.2 --csv out/load --html out/load.html

Each user gets a bearer token in ``on_start`` (client credentials, ``POST /oauth/token``), then
mixes ``GET /api/v1/whoami`` (cheap: gateway + agent-runtime), ``GET /api/v1/work?n=N`` (CPU on
agent-runtime, linear in N: what drives its HPA), ``GET /oauth/work?n=N`` (the same CPU on
auth-service, through the Ingress's ``/oauth``: what drives auth-service's HPA; weight 0 unless
the mix names it) and, occasionally, ``POST /api/v1/sessions`` (PostgreSQL, Redis and the LLM
proxy). Requests go to the Ingress *address* with the product host
in the ``Host`` header and the TLS SNI, as a client that resolves the host would, and verify the
served certificate as such a client does: the chain up to the system CAs or the gate's extra CAs,
and the host name. A rejected certificate is a failed request naming the host and the reason.

Configuration (environment, so that master and worker processes or pods agree):

- ``CODELAB_INGRESS_HOST``: Host header, TLS SNI and the name the certificate must hold (the
  Ingress host); default none (the address).
- ``CODELAB_LOAD_CA_FILE``: PEM file of CA certificates trusted besides the system's (the gate
  writes its trust store's extra certificates there: the stack's issuer root,
  ``--codelab-ca-file``); default none. An intermediate there is enough (partial chains).
- ``CODELAB_OAUTH_CLIENT_ID``: client_id for /oauth/token; default ``pytest-codelab-load``.
- ``CODELAB_OAUTH_CLIENT_SECRET``: client_secret; required, never logged nor reported.
- ``CODELAB_LOAD_WORK_ROUNDS``: N of ``/api/v1/work`` and ``/oauth/work``; default 200000.
- ``CODELAB_LOAD_MIX``: task weights ``whoami=W,work=W,session=W,auth=W``; default 4, 4, 1, 0.
- ``CODELAB_LOAD_WAIT``: pause between tasks of a user, ``MIN-MAX`` seconds; default 0.2-1.0.
- ``CODELAB_LOAD_SERVED_BY_FILE``: JSON file the master (or single process) writes at exit:
  the pods that answered (``X-Served-By``, ``X-Upstream-Served-By``) with counts and times,
  and how many workers connected.
"""

from __future__ import annotations

import json
import os
import ssl
import threading
import time
import urllib.parse
from collections.abc import Mapping
from typing import Any

import gevent.ssl
from locust import FastHttpUser, between, events, task
from locust.runners import MasterRunner, WorkerRunner

#: Response headers naming the pod that answered: the first hop (gateway or auth-service) and
#: the upstream agent-runtime pod behind the gateway.
SERVED_BY_HEADERS = ("X-Served-By", "X-Upstream-Served-By")
TOKEN_PATH = "/oauth/token"


def _env(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip()
    return value or default


def parse_mix(text: str) -> dict[str, int]:
    """``"whoami=4,work=4,session=1,auth=0"`` -> weights; unknown names are an error."""
    weights = {"whoami": 4, "work": 4, "session": 1, "auth": 0}
    for item in filter(None, (p.strip() for p in text.split(","))):
        name, _, value = item.partition("=")
        if name not in weights or not value.strip().isdigit():
            raise ValueError(
                f"CODELAB_LOAD_MIX: bad item {item!r}; use whoami=N,work=N,session=N,auth=N"
            )
        weights[name] = int(value)
    if not any(weights.values()):
        raise ValueError("CODELAB_LOAD_MIX: every weight is 0")
    return weights


def parse_wait(text: str) -> tuple[float, float]:
    """``"0.2-1.0"`` -> (0.2, 1.0); a single number means a constant pause."""
    low, _, high = text.partition("-")
    lo = float(low)
    hi = float(high) if high else lo
    if lo < 0 or hi < lo:
        raise ValueError(f"CODELAB_LOAD_WAIT: {text!r} is not MIN-MAX seconds with 0 <= MIN <= MAX")
    return lo, hi


INGRESS_HOST = os.environ.get("CODELAB_INGRESS_HOST", "").strip()
CA_FILE = os.environ.get("CODELAB_LOAD_CA_FILE", "").strip()
CLIENT_ID = _env("CODELAB_OAUTH_CLIENT_ID", "pytest-codelab-load")
WORK_ROUNDS = int(_env("CODELAB_LOAD_WORK_ROUNDS", "200000"))
MIX = parse_mix(_env("CODELAB_LOAD_MIX", ""))
WAIT = parse_wait(_env("CODELAB_LOAD_WAIT", "0.2-1.0"))


class ServedBy:
    """Which pods answered, with how many requests and when first/last (epoch seconds)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.pods: dict[str, dict[str, dict[str, float]]] = {}

    def add(self, header: str, pod: str, when: float, count: float = 1) -> None:
        with self._lock:
            entry = self.pods.setdefault(header, {}).setdefault(
                pod, {"count": 0, "first": when, "last": when}
            )
            entry["count"] += count
            entry["first"] = min(entry["first"], when)
            entry["last"] = max(entry["last"], when)

    def merge(self, data: Mapping[str, Mapping[str, Mapping[str, float]]]) -> None:
        for header, pods in data.items():
            for pod, entry in pods.items():
                self.add(header, pod, entry["first"], entry["count"])
                self.add(header, pod, entry["last"], 0)

    def take(self) -> dict[str, dict[str, dict[str, float]]]:
        """The data collected so far, and start again (a worker's report to the master)."""
        with self._lock:
            data, self.pods = self.pods, {}
        return data


SERVED_BY = ServedBy()
#: Worker ids that connected to this master during the run.
WORKERS_SEEN: set[str] = set()


@events.request.add_listener
def _record_served_by(response: Any = None, **_: Any) -> None:
    headers = getattr(response, "headers", None)
    if not headers:
        return
    now = time.time()
    for header in SERVED_BY_HEADERS:
        pod = headers.get(header)
        if pod:
            SERVED_BY.add(header, str(pod), now)


@events.report_to_master.add_listener
def _send_served_by(client_id: str, data: dict[str, Any]) -> None:
    data["codelab_served_by"] = SERVED_BY.take()


@events.worker_report.add_listener
def _receive_served_by(client_id: str, data: dict[str, Any]) -> None:
    SERVED_BY.merge(data.get("codelab_served_by") or {})


@events.worker_connect.add_listener
def _worker_connected(client_id: str, **_: Any) -> None:
    WORKERS_SEEN.add(client_id)


@events.quitting.add_listener
def _write_served_by(environment: Any, **_: Any) -> None:
    path = os.environ.get("CODELAB_LOAD_SERVED_BY_FILE")
    if not path or isinstance(environment.runner, WorkerRunner):
        return
    workers = len(WORKERS_SEEN) if isinstance(environment.runner, MasterRunner) else 0
    with open(path, "w", encoding="utf-8") as handle:
        json.dump({"workers": workers, "served_by": SERVED_BY.take()}, handle, indent=1)


class _SNIContext(gevent.ssl.SSLContext):
    """A client TLS context that presents the Ingress host in SNI, whatever address the
    connection goes to (``curl --resolve``), so the certificate is verified for that name."""

    def wrap_socket(self, sock: Any, *args: Any, **kw: Any) -> Any:
        kw["server_hostname"] = INGRESS_HOST or kw.get("server_hostname")
        return super().wrap_socket(sock, *args, **kw)


def sni_context(cafile: str | None = None) -> gevent.ssl.SSLContext:
    """The ``ssl_context_factory`` of the users (geventhttpclient calls it with ``cafile``, the
    system bundle): chain and host name verified, like the gate's own client, against the
    system CAs and ``CODELAB_LOAD_CA_FILE``; a trusted intermediate anchors a chain."""
    context = _SNIContext(gevent.ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED, check_hostname
    context.load_default_certs()
    for path in (cafile, CA_FILE):
        if path:
            context.load_verify_locations(cafile=path)
    context.verify_flags |= getattr(gevent.ssl, "VERIFY_X509_PARTIAL_CHAIN", 0)
    return context


def _problem(response: Any) -> str:
    """A failure text for the stats: status and a short body, never request headers."""
    body = (response.text or "")[:120].replace("\n", " ") if response.content else ""
    if isinstance(response.error, ssl.SSLCertVerificationError):
        host = INGRESS_HOST or "the target"
        reason = response.error.verify_message or response.error
        return f"no response: TLS verification of {host} failed: {reason}"
    if response.status_code == 0 or response.status_code is None:
        return f"no response: {response.error!r}"
    return f"HTTP {response.status_code} {body}".strip()


class CodeLabUser(FastHttpUser):
    """A CodeLab API client: one token per user, then whoami / work / sessions calls."""

    wait_time = between(*WAIT)
    insecure = False  # Locust's default is True: certificates are verified, host name included
    default_headers = {"Host": INGRESS_HOST} if INGRESS_HOST else None
    ssl_context_factory = staticmethod(sni_context)
    network_timeout = 30.0
    connection_timeout = 10.0

    token: str | None = None

    def on_start(self) -> None:
        self.fetch_token()

    def fetch_token(self) -> bool:
        """POST /oauth/token (client credentials); the failure is in the stats, not raised."""
        secret = os.environ.get("CODELAB_OAUTH_CLIENT_SECRET", "")
        form = urllib.parse.urlencode(
            {"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": secret}
        )
        with self.client.post(
            TOKEN_PATH,
            data=form,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            allow_redirects=False,
            catch_response=True,
        ) as response:
            token = None
            if response.status_code == 200:
                try:
                    token = response.json().get("access_token")
                except ValueError:
                    token = None
            if not secret:
                response.failure("CODELAB_OAUTH_CLIENT_SECRET is not set")
            elif token:
                response.success()
            else:
                response.failure(_problem(response))
        self.token = token
        return bool(token)

    def api(self, method: str, path: str, name: str, **kw: Any) -> None:
        """One API call with the bearer token; a 401 gets a new token for the next call."""
        if not self.token and not self.fetch_token():
            return
        headers = {"Authorization": f"Bearer {self.token}", **kw.pop("headers", {})}
        with self.client.request(
            method,
            path,
            name=name,
            headers=headers,
            allow_redirects=False,
            catch_response=True,
            **kw,
        ) as response:
            if 200 <= (response.status_code or 0) < 300:
                response.success()
            else:
                response.failure(_problem(response))
                if response.status_code == 401:
                    self.token = None

    @task(MIX["whoami"])
    def whoami(self) -> None:
        self.api("GET", "/api/v1/whoami", "/api/v1/whoami")

    @task(MIX["work"])
    def work(self) -> None:
        self.api("GET", f"/api/v1/work?n={WORK_ROUNDS}", "/api/v1/work?n=[rounds]")

    @task(MIX["auth"])
    def auth_work(self) -> None:
        self.api("GET", f"/oauth/work?n={WORK_ROUNDS}", "/oauth/work?n=[rounds]")

    @task(MIX["session"])
    def session(self) -> None:
        self.api(
            "POST",
            "/api/v1/sessions",
            "/api/v1/sessions",
            json={"prompt": "load test: say hi"},
        )
