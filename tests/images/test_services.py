"""Tests of the reference CodeLab services (images/services/), without a cluster: each
service runs on 127.0.0.1 against real HTTP fakes."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ROOT / "images" / "services"
sys.path.insert(0, str(SERVICES))

import agent_runtime  # noqa: E402
import auth_service  # noqa: E402
import codelab_common  # noqa: E402
import gateway  # noqa: E402


def test_jwt_roundtrip_and_rejections() -> None:
    now = 1_700_000_000
    token = codelab_common.jwt_encode({"sub": "c1", "aud": "codelab", "exp": now + 60}, "k")
    assert codelab_common.jwt_decode(token, "k", audience="codelab", now=now)["sub"] == "c1"
    header, payload, sig = token.split(".")
    assert json.loads(codelab_common.b64url_decode(header)) == {"alg": "HS256", "typ": "JWT"}
    with pytest.raises(codelab_common.TokenError, match="signature"):
        codelab_common.jwt_decode(token, "other", now=now)
    with pytest.raises(codelab_common.TokenError, match="expired"):
        codelab_common.jwt_decode(token, "k", now=now + 1000)
    with pytest.raises(codelab_common.TokenError, match="audience"):
        codelab_common.jwt_decode(token, "k", audience="x", now=now)
    forged = codelab_common.b64url(b'{"sub":"admin","aud":"codelab"}')
    with pytest.raises(codelab_common.TokenError, match="signature"):
        codelab_common.jwt_decode(f"{header}.{forged}.{sig}", "k", now=now)
    none_header = codelab_common.b64url(b'{"alg":"none"}')
    with pytest.raises(codelab_common.TokenError, match="algorithm"):
        codelab_common.jwt_decode(f"{none_header}.{payload}.", "k", now=now)
    with pytest.raises(codelab_common.TokenError):
        codelab_common.jwt_decode("garbage", "k")


def test_redact_url() -> None:
    assert (
        codelab_common.redact_url("postgresql://u:s3cret@db:5432/x")
        == "postgresql://u:***@db:5432/x"
    )
    assert codelab_common.redact_url("redis://:pw@redis:6379/0") == "redis://:***@redis:6379/0"
    assert codelab_common.redact_url("http://llm-proxy:4000") == "http://llm-proxy:4000"


def test_work_is_deterministic_and_grows() -> None:
    assert codelab_common.work(0) == b"codelab".hex()
    assert codelab_common.work(2) == hashlib.sha256(hashlib.sha256(b"codelab").digest()).hexdigest()


@pytest.fixture
def serve(serve_http: Any) -> Any:
    """Start an App on a free loopback port; a function returning its base URL."""
    return lambda app: serve_http(app.make_server("127.0.0.1", 0))


def _call(
    method: str, url: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, Any, dict[str, str]]:
    data = None
    hdrs = dict(headers or {})
    if isinstance(body, dict):
        data = json.dumps(body).encode()
        hdrs.setdefault("Content-Type", "application/json")
    elif isinstance(body, str):
        data = body.encode()
        hdrs.setdefault("Content-Type", "application/x-www-form-urlencoded")
    req = urllib.request.Request(url, data=data, headers=hdrs, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            raw, status, h = resp.read(), resp.status, dict(resp.headers)
    except urllib.error.HTTPError as exc:
        raw, status, h = exc.read(), exc.code, dict(exc.headers)
    return status, json.loads(raw) if raw else None, h


class _FakeAgent(BaseHTTPRequestHandler):
    """A real HTTP server standing in for agent-runtime: echoes what it received."""

    seen: list[dict[str, Any]] = []

    def _any(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        record = {
            "method": self.command,
            "path": self.path,
            "body": body,
            "headers": {k.lower(): v for k, v in self.headers.items()},
        }
        _FakeAgent.seen.append(record)
        data = json.dumps(record).encode()
        self.send_response(201 if self.command == "POST" else 200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_DELETE = _any

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def fake_agent(serve_http: Any) -> str:
    _FakeAgent.seen.clear()
    return str(serve_http(ThreadingHTTPServer(("127.0.0.1", 0), _FakeAgent)))


def test_auth_service_issues_and_verifies_tokens(serve: Any) -> None:
    url = serve(auth_service.create_app("jwt-key", "client-secret"))
    status, body, _ = _call(
        "POST",
        f"{url}/oauth/token",
        "grant_type=client_credentials&client_id=ci&client_secret=nope",
    )
    assert status == 401 and body["error"] == "invalid_client"
    status, body, _ = _call(
        "POST",
        f"{url}/oauth/token",
        {"grant_type": "password", "client_id": "ci", "client_secret": "client-secret"},
    )
    assert status == 400 and body["error"] == "unsupported_grant_type"
    status, body, _ = _call(
        "POST",
        f"{url}/oauth/token",
        "grant_type=client_credentials&client_id=ci&client_secret=client-secret",
    )
    assert status == 200 and body["token_type"] == "Bearer" and body["expires_in"] == 3600
    token = body["access_token"]
    claims = codelab_common.jwt_decode(token, "jwt-key", audience="codelab")
    assert claims["sub"] == "ci" and claims["exp"] - claims["iat"] == 3600
    status, body, _ = _call(
        "GET", f"{url}/oauth/verify", headers={"Authorization": f"Bearer {token}"}
    )
    assert status == 200 and body["active"] is True and body["sub"] == "ci"
    status, body, h = _call(
        "GET", f"{url}/oauth/verify", headers={"Authorization": "Bearer " + token[:-2] + "xx"}
    )
    assert status == 401 and body["active"] is False and "WWW-Authenticate" in h
    status, body, _ = _call("POST", f"{url}/oauth/introspect", f"token={token}")
    assert status == 200 and body["active"] is True
    status, body, _ = _call("GET", f"{url}/version")
    assert status == 200 and {"service", "version", "hostname"} <= set(body)
    import base64

    basic = base64.b64encode(b"ci:client-secret").decode()
    status, body, _ = _call(
        "POST",
        f"{url}/oauth/token",
        "grant_type=client_credentials",
        headers={"Authorization": f"Basic {basic}"},
    )
    assert status == 200


def test_gateway_requires_valid_token_and_forwards(serve: Any, fake_agent: str) -> None:
    auth_url = serve(auth_service.create_app("jwt-key", "client-secret"))
    gw = serve(gateway.create_app(fake_agent, auth_url, internal_key="internal"))
    status, body, h = _call("GET", f"{gw}/api/v1/whoami")
    assert status == 401 and h.get("WWW-Authenticate", "").startswith("Bearer")
    status, _, _ = _call("GET", f"{gw}/api/v1/whoami", headers={"Authorization": "Bearer x.y.z"})
    assert status == 401
    forged = codelab_common.jwt_encode({"sub": "evil", "aud": "codelab"}, "wrong-key")
    status, _, _ = _call(
        "GET", f"{gw}/api/v1/whoami", headers={"Authorization": f"Bearer {forged}"}
    )
    assert status == 401
    assert _FakeAgent.seen == []  # nothing reached the upstream without a valid token
    _, tok, _ = _call(
        "POST",
        f"{auth_url}/oauth/token",
        "grant_type=client_credentials&client_id=ci&client_secret=client-secret",
    )
    auth = {"Authorization": f"Bearer {tok['access_token']}", "X-Request-Id": "req-1"}
    status, body, h = _call("POST", f"{gw}/api/v1/sessions?x=1", {"prompt": "hi"}, auth)
    assert status == 201 and h["X-Request-Id"] == "req-1"
    assert body["method"] == "POST" and body["path"] == "/api/v1/sessions?x=1"
    assert json.loads(body["body"]) == {"prompt": "hi"}
    assert body["headers"]["x-codelab-subject"] == "ci"
    assert body["headers"]["x-internal-api-key"] == "internal"
    assert body["headers"]["x-request-id"] == "req-1"
    assert "authorization" not in body["headers"]
    status, _, _ = _call("GET", f"{gw}/health")
    assert status == 200


def test_gateway_reads_large_bodies_and_refuses_them_after_auth(
    serve: Any, fake_agent: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A body over the buffer limit is read to the end (the connection survives): 401
    without a token, 413 with one, and nothing reaches agent-runtime."""
    monkeypatch.setattr(codelab_common, "MAX_BUFFERED_BODY", 1024)
    auth_url = serve(auth_service.create_app("jwt-key", "client-secret"))
    gw = serve(gateway.create_app(fake_agent, auth_url))
    big = "x" * 4096
    status, _, _ = _call("POST", f"{gw}/api/v1/sessions", big)
    assert status == 401
    _, tok, _ = _call(
        "POST",
        f"{auth_url}/oauth/token",
        "grant_type=client_credentials&client_id=ci&client_secret=client-secret",
    )
    auth = {"Authorization": f"Bearer {tok['access_token']}"}
    status, body, _ = _call("POST", f"{gw}/api/v1/sessions", big, auth)
    assert status == 413 and body["size"] == 4096 and body["limit"] == 1024
    status, _, _ = _call("POST", f"{auth_url}/oauth/token", big)
    assert status == 413
    assert _FakeAgent.seen == []
    status, _, _ = _call("POST", f"{gw}/api/v1/sessions", {"prompt": "small"}, auth)
    assert status == 201


def test_gateway_without_auth_service_is_503_and_without_agent_502(serve: Any) -> None:
    gw = serve(gateway.create_app("http://127.0.0.1:9", "http://127.0.0.1:9"))
    status, body, _ = _call("GET", f"{gw}/api/v1/whoami", headers={"Authorization": "Bearer t"})
    assert status == 503 and "auth-service" in body["error"]
    auth_url = serve(auth_service.create_app("k", "s"))
    gw2 = serve(gateway.create_app("http://127.0.0.1:9", auth_url))
    token = codelab_common.jwt_encode({"sub": "a", "aud": "codelab", "exp": time.time() + 60}, "k")
    status, body, _ = _call(
        "GET", f"{gw2}/api/v1/whoami", headers={"Authorization": f"Bearer {token}"}
    )
    assert status == 502


def test_gateway_caches_positive_verifications(serve: Any, fake_agent: str) -> None:
    calls: list[str] = []
    auth = auth_service.create_app("k", "s")
    original = auth.dispatch

    def counting(req: codelab_common.Request) -> codelab_common.Response:
        calls.append(req.path)
        return original(req)

    auth.dispatch = counting  # type: ignore[method-assign]
    gw = serve(gateway.create_app(fake_agent, serve(auth), cache_seconds=30))
    token = codelab_common.jwt_encode({"sub": "a", "aud": "codelab", "exp": time.time() + 60}, "k")
    for _ in range(3):
        assert (
            _call("GET", f"{gw}/api/v1/x", headers={"Authorization": f"Bearer {token}"})[0] == 200
        )
    assert calls == ["/oauth/verify"]


def test_agent_runtime_without_backends(serve: Any) -> None:
    url = serve(
        agent_runtime.create_app(None, None, "http://127.0.0.1:9", None, internal_key="internal")
    )
    status, body, _ = _call("GET", f"{url}/health")
    assert status == 503 and "postgres" in body["checks"] and "redis" in body["checks"]
    assert _call("GET", f"{url}/livez")[0] == 200
    assert _call("GET", f"{url}/api/v1/work?n=10")[0] == 401
    status, body, _ = _call(
        "GET", f"{url}/api/v1/work?n=1000", headers={"X-Internal-Api-Key": "internal"}
    )
    assert status == 200 and body["digest"] == codelab_common.work(1000)
    status, _, _ = _call(
        "GET", f"{url}/api/v1/work?n=-1", headers={"X-Internal-Api-Key": "internal"}
    )
    assert status == 400
    status, _, _ = _call(
        "POST",
        f"{url}/api/v1/sessions",
        {"prompt": "x"},
        headers={"X-Internal-Api-Key": "internal"},
    )
    assert status == 503


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _raw_get(sock: Any, path: str) -> bytes:
    """Send one GET on an open socket and read until the server closes it."""
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_drain_closes_idle_keepalives_first_and_the_port_after_the_delay(serve: Any) -> None:
    """A proxy retrying a request that raced a closing keep-alive must find the port open."""
    import http.client
    import socket

    from pytest_codelab.k8s.waiting import wait_until

    app = codelab_common.App("t", "1", shutdown_delay=1.0)
    port = int(serve(app).rsplit(":", 1)[1])
    reused = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    reused.request("GET", "/version")
    first = reused.getresponse()
    assert first.status == 200 and first.getheader("Connection") != "close"
    first.read()
    fresh = socket.create_connection(("127.0.0.1", port), timeout=5)
    wait_until(
        lambda: (len(app.server.conns) == 2, f"{len(app.server.conns)} connections open"),
        timeout=5,
        what="the server to register both connections",
        interval=0.02,
    )

    app.shutdown()

    assert reused.sock is not None and reused.sock.recv(1) == b""  # closed by the server
    answer = _raw_get(fresh, "/health")  # accepted before the drain: answered, then closed
    assert answer.startswith(b"HTTP/1.1 503") and b"Connection: close" in answer
    fresh.close()
    status, body, headers = _call("GET", f"http://127.0.0.1:{port}/version")
    assert status == 200 and headers.get("Connection") == "close"

    def refused() -> tuple[bool, str]:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except ConnectionRefusedError:
            return True, "connection refused"
        except ConnectionResetError:  # connected into the backlog as the listener closed
            return False, "connection reset while the listener closed"
        return False, "port still accepting"

    wait_until(refused, timeout=10, what="the port to close after the delay", interval=0.1)
    reused.close()


def test_sigterm_finishes_in_flight_request_and_exits_0(tmp_path: Path) -> None:
    port = _free_port()
    env = {
        **os.environ,
        "PORT": str(port),
        "SERVICE_NAME": "agent-runtime",
        "SERVICE_VERSION": "9.9.9",
        "OPENAI_API_KEY": "sk-must-not-appear",
    }
    proc = subprocess.Popen(
        [sys.executable, "-u", str(SERVICES / "agent_runtime.py")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 15
        while True:
            try:
                status, body, _ = _call("GET", f"{base}/version")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        assert status == 200 and body["version"] == "9.9.9"
        assert body["service"] == "agent-runtime"
        result: dict[str, Any] = {}

        def slow() -> None:
            result["r"] = _call("GET", f"{base}/api/v1/work?n=1500000")

        t = threading.Thread(target=slow)
        t.start()
        time.sleep(0.3)  # the request is in flight
        proc.send_signal(signal.SIGTERM)
        t.join(30)
        assert result["r"][0] == 200 and result["r"][1]["n"] == 1500000
        assert proc.wait(30) == 0
        with pytest.raises(OSError):
            _call("GET", f"{base}/health")
    finally:
        if proc.poll() is None:
            proc.kill()
    out = proc.stdout.read() if proc.stdout else ""
    lines = [json.loads(ln) for ln in out.splitlines() if ln.startswith("{")]
    events = [ln["event"] for ln in lines]
    assert events[0] == "starting" and "draining" in events and events[-1] == "stopped"
    requests = [ln for ln in lines if ln["event"] == "request"]
    assert {r["path"] for r in requests} == {"/version", "/api/v1/work"}
    assert "sk-must-not-appear" not in out


def test_sigusr1_fails_health_only_until_restart() -> None:
    """The fault hook of the test contract: after SIGUSR1, /health answers 503 (what a
    liveness probe sees) while the process lives and serves everything else; /version
    advertises the hook so the gate can tell a build without it."""
    from pytest_codelab.k8s.waiting import wait_until

    port = _free_port()
    env = {**os.environ, "PORT": str(port), "SERVICE_NAME": "gateway"}
    proc = subprocess.Popen(
        [sys.executable, "-u", str(SERVICES / "gateway.py")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"

    def answers() -> tuple[bool, str]:
        try:
            return _call("GET", f"{base}/version")[0] == 200, "answered"
        except OSError as exc:
            return False, str(exc)

    try:
        wait_until(answers, timeout=15, what="gateway to listen", interval=0.1)
        assert _call("GET", f"{base}/version")[1]["fault_hooks"] == [codelab_common.FAULT_HOOK]
        assert _call("GET", f"{base}/health")[0] == 200
        proc.send_signal(signal.SIGUSR1)
        wait_until(
            lambda: (_call("GET", f"{base}/health")[0] == 503, "health still 200"),
            timeout=5,
            what="/health to fail after SIGUSR1",
            interval=0.05,
        )
        status, body, _ = _call("GET", f"{base}/health")
        assert status == 503 and body["fault"] == codelab_common.FAULT_HOOK
        assert _call("GET", f"{base}/livez")[0] == 200
        assert _call("GET", f"{base}/version")[0] == 200
        assert proc.poll() is None, "SIGUSR1 must not end the process"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


def test_auth_service_exits_1_without_secrets() -> None:
    env = {
        k: v for k, v in os.environ.items() if k not in ("JWT_SECRET_KEY", "OAUTH2_CLIENT_SECRET")
    }
    proc = subprocess.run(
        [sys.executable, str(SERVICES / "auth_service.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 1
    assert "JWT_SECRET_KEY" in proc.stdout and "OAUTH2_CLIENT_SECRET" in proc.stdout


def test_auth_service_work_needs_a_token_and_burns_like_agent_runtime(serve: Any) -> None:
    """/oauth/work: the same contract as agent-runtime's /api/v1/work, behind a bearer token
    (the HPA load drives auth-service with it; anonymous callers burn nothing)."""
    url = serve(auth_service.create_app("jwt-key", "client-secret"))
    assert _call("GET", f"{url}/oauth/work?n=10")[0] == 401
    _, body, _ = _call(
        "POST",
        f"{url}/oauth/token",
        "grant_type=client_credentials&client_id=ci&client_secret=client-secret",
    )
    auth = {"Authorization": f"Bearer {body['access_token']}"}
    status, body, _ = _call("GET", f"{url}/oauth/work?n=1000", headers=auth)
    assert status == 200 and body["digest"] == codelab_common.work(1000) and body["n"] == 1000
    assert _call("GET", f"{url}/oauth/work?n=-1", headers=auth)[0] == 400
    assert _call("GET", f"{url}/oauth/work?n=x", headers=auth)[0] == 400
