"""The Locust runner (pytest_codelab.clients.load) and the CodeLab locustfile, against a real
local HTTP(S) server that behaves like CodeLab behind its Ingress: tokens from /oauth/token, bearer
tokens required on /api/v1/*, X-Served-By headers. Every run is a real ``python -m locust``
subprocess for a few seconds.
"""

from __future__ import annotations

import json
import signal
import ssl
import threading
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from pytest_codelab.clients.load import spec as limits
from pytest_codelab.clients.load.locust import LocustRun, run_locust
from pytest_codelab.clients.load.spec import LoadSpec
from pytest_codelab.deploy.secrets import IssuedTLS, issue_tls

SECRET = "s3cret-never-logged-7f2a"
HOST = "codelab.test"


@dataclass
class FakeCodeLab:
    """What the server saw, and how it should misbehave."""

    url: str = ""
    secret: str = SECRET
    fail_paths: set[str] = field(default_factory=set)
    hosts: Counter[str] = field(default_factory=Counter)
    tokens_issued: int = 0
    unauthorized: int = 0
    paths: Counter[str] = field(default_factory=Counter)
    sni: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _handler(state: FakeCodeLab) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        served = 0

        def log_message(self, *args: object) -> None:
            pass

        def _reply(self, code: int, body: object) -> None:
            data = json.dumps(body).encode()
            Handler.served += 1
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("X-Served-By", f"gateway-{'ab'[Handler.served % 2]}")
            self.send_header("X-Upstream-Served-By", f"agent-runtime-{'xyz'[Handler.served % 3]}")
            self.end_headers()
            self.wfile.write(data)

        def _handle(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            path = urllib.parse.urlsplit(self.path).path
            with state.lock:
                state.hosts[self.headers.get("Host", "")] += 1
                state.paths[f"{self.command} {path}"] += 1
            if path == "/oauth/token":
                form = urllib.parse.parse_qs(body.decode())
                if form.get("client_secret") != [state.secret]:
                    return self._reply(401, {"error": "invalid_client"})
                with state.lock:
                    state.tokens_issued += 1
                return self._reply(200, {"access_token": "tok", "token_type": "Bearer"})
            if self.headers.get("Authorization") != "Bearer tok":
                with state.lock:
                    state.unauthorized += 1
                return self._reply(401, {"error": "missing bearer token"})
            if path in state.fail_paths:
                return self._reply(500, {"error": "injected failure"})
            self._reply(201 if self.command == "POST" else 200, {"ok": True})

        do_GET = do_POST = _handle  # noqa: N815 (http.server's naming)

    return Handler


def _serve(
    serve_http: Any, state: FakeCodeLab, context: ssl.SSLContext | None = None
) -> FakeCodeLab:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    state.url = serve_http(server)
    return state


@pytest.fixture
def codelab_server(serve_http: Any) -> FakeCodeLab:
    return _serve(serve_http, FakeCodeLab())


@pytest.fixture
def issued() -> IssuedTLS:
    """A chain for HOST as the gate issues codelab-tls: root -> intermediate -> leaf."""
    return issue_tls(HOST)


@pytest.fixture
def codelab_tls_server(tmp_path: Path, serve_http: Any, issued: IssuedTLS) -> FakeCodeLab:
    """The fake CodeLab behind TLS, sending the leaf and the intermediate, like an ingress."""
    (tmp_path / "tls.crt").write_bytes(issued.chain)
    (tmp_path / "tls.key").write_bytes(issued.key)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "tls.crt", tmp_path / "tls.key")
    state = FakeCodeLab()

    def remember_sni(sock: object, name: str | None, ctx: object) -> None:
        state.sni.append(name or "")

    context.sni_callback = remember_sni  # type: ignore[assignment]
    return _serve(serve_http, state, context)


def _env(**extra: str) -> dict[str, str]:
    return {
        "CODELAB_INGRESS_HOST": HOST,
        "CODELAB_OAUTH_CLIENT_SECRET": SECRET,
        "CODELAB_LOAD_WAIT": "0.02-0.05",
        "CODELAB_LOAD_WORK_ROUNDS": "10",
        **extra,
    }


def _files_text(directory: Path) -> str:
    return "\n".join(
        p.read_text(encoding="utf-8", errors="replace") for p in directory.rglob("*") if p.is_file()
    )


def test_codelab_locustfile_runs_headless(codelab_server: FakeCodeLab, tmp_path: Path) -> None:
    """Each user gets one token, then calls the API with it and the ingress Host header; the
    CSV history parses into per-second points and the reports never hold the secret."""
    spec = LoadSpec(codelab_server.url, users=3, spawn_rate=3, run_time=4, env=_env())
    started = time.monotonic()
    result = run_locust(spec, tmp_path)
    elapsed = time.monotonic() - started

    assert result.exit_code == 0, result.describe()
    assert result.stopped.startswith("ended by itself"), result.stopped
    assert elapsed < spec.run_time + 15, f"run took {elapsed:.1f}s"
    assert codelab_server.tokens_issued == 3, codelab_server.paths
    assert codelab_server.unauthorized == 0
    assert set(codelab_server.hosts) == {HOST}, codelab_server.hosts
    assert result.failed == 0 and result.requests > 20, result.describe()
    names = {e.name for e in result.endpoints}
    assert {"/oauth/token", "/api/v1/whoami", "/api/v1/work?n=[rounds]"} <= names, names
    token = result.endpoint("/oauth/token")
    assert token is not None and token.requests == 3
    assert result.total is not None and result.total.median is not None
    assert result.total.p95 is not None and result.total.p95 >= result.total.median
    assert result.rps > 0
    # history: one point per second, counters growing, rates where traffic flowed
    times = [p.t for p in result.history]
    assert len(times) >= 3 and times == sorted(times), times
    assert max(p.rps for p in result.history) > 0
    counts = [p.requests for p in result.history]
    assert counts == sorted(counts), counts
    assert result.history[-1].requests <= result.requests
    assert any(p.p95 is not None for p in result.history)
    # pods that answered, counted by the locustfile
    assert set(result.pods("X-Served-By")) == {"gateway-a", "gateway-b"}
    assert set(result.pods()) == {"agent-runtime-x", "agent-runtime-y", "agent-runtime-z"}
    assert sum(e["count"] for e in result.pods().values()) == result.requests
    # reports written, without the secret anywhere (files, command line, result)
    assert Path(result.files["html"]).stat().st_size > 1000
    assert Path(result.files["history"]).is_file()
    assert SECRET not in _files_text(tmp_path)
    assert SECRET not in json.dumps(result.to_dict())


def test_failures_are_counted_and_explained(codelab_server: FakeCodeLab, tmp_path: Path) -> None:
    codelab_server.fail_paths.add("/api/v1/work")
    spec = LoadSpec(
        codelab_server.url,
        users=2,
        spawn_rate=2,
        run_time=3,
        env=_env(CODELAB_LOAD_MIX="whoami=1,work=1,session=0"),
    )
    result = run_locust(spec, tmp_path)

    work = result.endpoint("/api/v1/work?n=[rounds]")
    assert work is not None and work.requests > 0 and work.failures == work.requests
    assert result.failed == work.failures, result.describe()
    assert result.failures and result.failures[0].name == "/api/v1/work?n=[rounds]"
    assert "HTTP 500" in result.failures[0].error
    assert any(p.fps > 0 for p in result.history)
    assert "HTTP 500" in result.describe()
    assert result.exit_code == 1  # Locust's --exit-code-on-error default


def test_wrong_secret_fails_the_token_requests_only(
    codelab_server: FakeCodeLab, tmp_path: Path
) -> None:
    codelab_server.secret = "another-secret"
    spec = LoadSpec(codelab_server.url, users=2, spawn_rate=2, run_time=3, env=_env())
    result = run_locust(spec, tmp_path)

    token = result.endpoint("/oauth/token")
    assert token is not None and token.failures == token.requests > 0
    assert codelab_server.unauthorized == 0, "API called without a token"
    assert "HTTP 401" in result.failures[0].error


def test_bad_locustfile_setting_is_reported(codelab_server: FakeCodeLab, tmp_path: Path) -> None:
    """A broken run ends at once and the result shows Locust's own error."""
    spec = LoadSpec(
        codelab_server.url, users=1, spawn_rate=1, run_time=5, env=_env(CODELAB_LOAD_MIX="x=1")
    )
    result = run_locust(spec, tmp_path)
    assert result.requests == 0
    assert result.exit_code not in (0, None)
    assert "CODELAB_LOAD_MIX" in result.describe(), result.describe()


def test_host_header_and_sni_over_https(
    codelab_tls_server: FakeCodeLab, issued: IssuedTLS, tmp_path: Path
) -> None:
    """Against an address, TLS presents the ingress host in SNI and the Host header, and the
    users verify the chain up to the root they are given (CODELAB_LOAD_CA_FILE)."""
    spec = LoadSpec(
        codelab_tls_server.url,
        users=1,
        spawn_rate=1,
        run_time=2,
        env=_env(),
        ca_pem=issued.root.decode(),
    )
    result = run_locust(spec, tmp_path)
    assert result.requests > 0 and result.failed == 0, result.describe()
    assert codelab_tls_server.sni and set(codelab_tls_server.sni) == {HOST}
    assert set(codelab_tls_server.hosts) == {HOST}
    assert Path(result.files["ca"]).read_bytes() == issued.root


def test_users_accept_a_trusted_intermediate(
    codelab_tls_server: FakeCodeLab, issued: IssuedTLS, tmp_path: Path
) -> None:
    """The issuing CA alone (no root) verifies the chain: partial chains, as the gate."""
    intermediate = issued.chain.decode().split("-----END CERTIFICATE-----\n")[1]
    assert intermediate.startswith("-----BEGIN CERTIFICATE-----")
    spec = LoadSpec(
        codelab_tls_server.url,
        users=1,
        spawn_rate=1,
        run_time=2,
        env=_env(),
        ca_pem=intermediate + "-----END CERTIFICATE-----\n",
    )
    result = run_locust(spec, tmp_path)
    assert result.requests > 0 and result.failed == 0, result.describe()


@pytest.mark.parametrize(
    ("host", "trusted", "reason"),
    [
        (HOST, False, "unable to get local issuer certificate"),
        ("other.test", True, "Hostname mismatch"),
    ],
    ids=["unknown-issuer", "other-host"],
)
def test_users_refuse_what_they_cannot_verify(
    codelab_tls_server: FakeCodeLab,
    issued: IssuedTLS,
    tmp_path: Path,
    host: str,
    trusted: bool,
    reason: str,
) -> None:
    """Without the issuer root, or for another host name, every request fails, naming the
    host and the reason; nothing reaches the server."""
    spec = LoadSpec(
        codelab_tls_server.url,
        users=1,
        spawn_rate=1,
        run_time=2,
        env=_env(CODELAB_INGRESS_HOST=host),
        ca_pem=issued.root.decode() if trusted else "",
    )
    result = run_locust(spec, tmp_path)
    assert result.requests > 0 and result.failed == result.requests, result.describe()
    errors = {f.error for f in result.failures}
    assert all(f"TLS verification of {host} failed: " in e for e in errors), errors
    assert any(reason in e for e in errors), errors
    assert not codelab_tls_server.paths


def test_stop_ends_the_run_early_with_reports(codelab_server: FakeCodeLab, tmp_path: Path) -> None:
    """Stopping (what test teardown does) ends Locust at once; it still writes its reports."""
    spec = LoadSpec(codelab_server.url, users=2, spawn_rate=2, run_time=60, env=_env())
    with LocustRun(spec, tmp_path) as run:
        deadline = time.monotonic() + 20
        while sum(codelab_server.paths.values()) < 20 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert run.running
        started = time.monotonic()
    stop_seconds = time.monotonic() - started
    assert not run.running
    assert stop_seconds < limits.STOP_GRACE, f"stop took {stop_seconds:.1f}s"
    result = run.result()
    assert result.stopped == "stopped at teardown"
    assert result.requests > 0 and result.duration < 30
    assert Path(result.files["html"]).is_file(), "no HTML report after SIGINT"


def test_deadline_kills_a_hung_locust(
    codelab_server: FakeCodeLab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Locust that neither ends nor obeys SIGINT/SIGTERM is killed at its deadline."""
    hung = tmp_path / "hung.py"
    hung.write_text(
        "import signal\n"
        "from locust import User, task\n"
        "class Hung(User):\n"
        "    def on_start(self):\n"
        "        signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
        "        while True:\n"
        "            pass\n"
        "    @task\n"
        "    def nothing(self):\n"
        "        pass\n",
        encoding="utf-8",
    )
    monkeypatch.setattr(limits, "START_GRACE", 3.0)
    monkeypatch.setattr(limits, "STOP_GRACE", 1.0)
    monkeypatch.setattr(limits, "KILL_GRACE", 1.0)
    spec = LoadSpec(codelab_server.url, users=1, spawn_rate=1, run_time=1, locustfile=hung)
    started = time.monotonic()
    with LocustRun(spec, tmp_path / "out") as run:
        assert run.wait() is True
    elapsed = time.monotonic() - started
    assert run.stopped.startswith("killed"), run.stopped
    assert "SIGKILL" in run.stopped or "SIGTERM" in run.stopped, run.stopped
    assert elapsed < spec.deadline + 3 * limits.KILL_GRACE + 2, f"{elapsed:.1f}s"
    assert run.result().exit_code in (-signal.SIGKILL, -signal.SIGTERM, 1, 2)


def test_distributed_with_local_workers(codelab_server: FakeCodeLab, tmp_path: Path) -> None:
    """A master with two worker processes: both connect, the pods seen on the workers reach
    the master's served-by file."""
    spec = LoadSpec(
        codelab_server.url, users=4, spawn_rate=4, run_time=4, env=_env(), local_workers=2
    )
    result = run_locust(spec, tmp_path)
    assert result.connected_workers == 2, result.describe()
    assert result.requests > 0 and result.failed == 0, result.describe()
    assert codelab_server.tokens_issued == 4
    assert sum(e["count"] for e in result.pods().values()) == result.requests
    assert "--master" in result.command and "--expect-workers" in result.command
