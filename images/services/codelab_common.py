"""Shared runtime of the reference CodeLab services (stdlib only).

Why one module: the three services must behave the same way where the gate checks them:
/health and /version, one JSON log line per request (never a secret), HS256 JWTs, a
clean drain on SIGTERM (stop accepting, finish in-flight requests, exit 0), and one
fault-injection hook for the gate's liveness check (SIGUSR1: /health fails, the process
lives on; see FAULT_HOOK).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import os
import signal
import socket
import sys
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SERVICE = os.environ.get("SERVICE_NAME", "codelab")
VERSION = os.environ.get("SERVICE_VERSION", "0.0.0-dev")
HOSTNAME = socket.gethostname()
#: Idle keep-alive connections are closed after this many seconds (longer than the idle
#: timeout of proxies in front, so the proxy closes first and never races a reused socket).
KEEPALIVE_TIMEOUT = float(os.environ.get("KEEPALIVE_TIMEOUT", "120"))
#: After SIGTERM: idle keep-alive connections close at once, but the socket keeps accepting
#: this long (each answer then closes its connection). A proxy that sent a request on a
#: keep-alive connection just as it closed retries on a new one (Go's transport does, for
#: idempotent requests): that new connection must find the port open, not refused. The
#: endpoint-removal delay itself is the manifests' preStop sleep.
SHUTDOWN_DELAY = float(os.environ.get("SHUTDOWN_DELAY_SECONDS", "2"))
#: After SIGTERM: at most this long for in-flight requests to finish.
DRAIN_TIMEOUT = float(os.environ.get("DRAIN_TIMEOUT_SECONDS", "25"))
#: Bodies up to this size are read into memory. Larger ones are read to the end and
#: discarded, and the route answers 413 (after authentication, at the gateway): the body
#: limit is the ingress's job (proxy-body-size), so a large upload must reach the service,
#: not kill the connection or the pod's memory.
MAX_BUFFERED_BODY = int(os.environ.get("MAX_BUFFERED_BODY_BYTES", str(10 * 1024 * 1024)))
#: The test contract's fault hook, advertised in /version as ``fault_hooks``. SIGUSR1 makes
#: /health answer 503 from then on while the process keeps serving everything else, so the
#: kubelet restarts the container *because its liveness probe fails* (a dead process proves
#: only that exits are restarted). Why a signal: from inside the container nothing can stop
#: PID 1 (the kernel drops SIGSTOP/SIGKILL sent to a pid-namespace init from within it), but
#: a signal with a handler is delivered, and a signal needs no port, route or credential.
FAULT_HOOK = "SIGUSR1:fail-health"
#: The largest N a CPU-burning ``work`` route accepts (bounded: a route must not let a caller
#: pin a core for minutes).
MAX_WORK = int(os.environ.get("MAX_WORK_ROUNDS", "20000000"))
_log_lock = threading.Lock()


def log(event: str, **fields: Any) -> None:
    """One JSON line on stdout. Callers pass no secret values (names and hosts only)."""
    line = {
        "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z",
        "service": SERVICE,
        "event": event,
        **fields,
    }
    text = json.dumps(line, default=str, separators=(",", ":"))
    with _log_lock:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()


def redact_url(url: str) -> str:
    """A URL without its password, for logs: ``postgresql://u:***@host:5432/db``."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "<invalid url>"
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


def require_env(*names: str) -> dict[str, str]:
    """Values of required variables; exit 1 naming (never printing) the missing ones."""
    missing = [n for n in names if not os.environ.get(n)]
    if missing:
        log("config_error", missing=missing, message="required environment variables not set")
        sys.exit(1)
    return {n: os.environ[n] for n in names}


# --------------------------------------------------------------------------- JWT (HS256)


class TokenError(Exception):
    """A token that is malformed, badly signed, expired or for another audience."""


def b64url(data: bytes) -> str:
    """Base64url without padding (RFC 7515)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Inverse of :func:`b64url`; raises TokenError on bad input."""
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError) as exc:
        raise TokenError("malformed base64") from exc


def jwt_encode(claims: dict[str, Any], key: str) -> str:
    """An HS256 JWT of ``claims`` signed with ``key``."""
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    payload = b64url(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode())
    signing_input = f"{header}.{payload}".encode("ascii")
    sig = hmac.new(key.encode(), signing_input, hashlib.sha256).digest()
    return f"{header}.{payload}.{b64url(sig)}"


def jwt_decode(
    token: str,
    key: str,
    *,
    audience: str | None = None,
    leeway: float = 30,
    now: float | None = None,
) -> dict[str, Any]:
    """Verified claims of an HS256 JWT; only HS256 is accepted (no ``none``)."""
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenError("malformed token")
    try:
        header = json.loads(b64url_decode(parts[0]))
        claims = json.loads(b64url_decode(parts[1]))
    except ValueError as exc:
        raise TokenError("malformed token") from exc
    if not isinstance(header, dict) or header.get("alg") != "HS256":
        raise TokenError("unsupported algorithm")
    expected = hmac.new(
        key.encode(), f"{parts[0]}.{parts[1]}".encode("ascii"), hashlib.sha256
    ).digest()
    if not hmac.compare_digest(expected, b64url_decode(parts[2])):
        raise TokenError("bad signature")
    if not isinstance(claims, dict):
        raise TokenError("malformed claims")
    t = time.time() if now is None else now
    if "exp" in claims and t > float(claims["exp"]) + leeway:
        raise TokenError("token expired")
    if "nbf" in claims and t < float(claims["nbf"]) - leeway:
        raise TokenError("token not yet valid")
    if audience is not None:
        aud = claims.get("aud")
        if aud != audience and not (isinstance(aud, list) and audience in aud):
            raise TokenError("wrong audience")
    return claims


def bearer_token(headers: Any) -> str | None:
    """The token of an ``Authorization: Bearer ...`` header, or None."""
    value = headers.get("Authorization") or ""
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


# --------------------------------------------------------------------------- HTTP client


class HttpClient:
    """Keep-alive HTTP/1.1 client (one connection per thread and host); retries once when
    a reused connection turns out to be closed by the server."""

    def __init__(self, timeout: float = 10) -> None:
        self.timeout = timeout
        self._local = threading.local()

    def _conn(self, scheme: str, netloc: str) -> http.client.HTTPConnection:
        pool: dict[tuple[str, str], http.client.HTTPConnection] = self._local.__dict__.setdefault(
            "pool", {}
        )
        conn = pool.get((scheme, netloc))
        if conn is None:
            cls = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
            conn = cls(netloc, timeout=self.timeout)
            pool[(scheme, netloc)] = conn
        return conn

    def request(
        self,
        method: str,
        url: str,
        *,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        """(status, headers, body) of one request; raises OSError when unreachable."""
        parts = urllib.parse.urlsplit(url)
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        for attempt in range(2):
            conn = self._conn(parts.scheme, parts.netloc)
            reused = conn.sock is not None
            conn.timeout = timeout or self.timeout
            if conn.sock is not None:
                conn.sock.settimeout(conn.timeout)
            try:
                conn.request(method, path, body=body, headers=headers or {})
                resp = conn.getresponse()
                data = resp.read()
                if resp.will_close:
                    conn.close()
                return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
            except (
                http.client.RemoteDisconnected,
                ConnectionResetError,
                BrokenPipeError,
                http.client.CannotSendRequest,
                http.client.ResponseNotReady,
            ):
                conn.close()
                if attempt == 1 or not reused:
                    raise
            except OSError:
                conn.close()
                raise
        raise OSError("unreachable")  # pragma: no cover

    def json(
        self,
        method: str,
        url: str,
        payload: Any = None,
        *,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> tuple[int, Any]:
        """(status, decoded JSON or None) of a JSON request."""
        hdrs = {"Accept": "application/json", **(headers or {})}
        body = None
        if payload is not None:
            body = json.dumps(payload).encode()
            hdrs["Content-Type"] = "application/json"
        status, _h, data = self.request(method, url, body=body, headers=hdrs, timeout=timeout)
        try:
            return status, json.loads(data) if data else None
        except ValueError:
            return status, None


# --------------------------------------------------------------------------- HTTP server


@dataclass
class Request:
    """An incoming request as the route handlers see it."""

    method: str
    path: str
    query: dict[str, str]
    headers: Any
    body: bytes
    request_id: str
    client: str
    raw_query: str = ""
    #: Size of a body that was read and discarded (over MAX_BUFFERED_BODY); 0 otherwise.
    oversize: int = 0

    def json(self) -> Any:
        """The body as JSON (None when empty); raises ValueError when invalid."""
        return json.loads(self.body) if self.body else None


@dataclass
class Response:
    """What a route returns: status, JSON-able body (or bytes) and extra headers."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)

    def encoded(self) -> tuple[bytes, str]:
        """Body bytes and content type."""
        if isinstance(self.body, bytes):
            return self.body, self.headers.get("Content-Type", "application/octet-stream")
        if self.body is None:
            return b"", "application/json"
        return json.dumps(self.body, separators=(",", ":")).encode() + b"\n", "application/json"


def error(status: int, message: str, **extra: Any) -> Response:
    """A JSON error response."""
    return Response(status, {"error": message, **extra})


def too_large(req: Request) -> Response:
    """413 for a body this service read but would not buffer."""
    return error(413, "request body too large", size=req.oversize, limit=MAX_BUFFERED_BODY)


def work(rounds: int, seed: str = "codelab") -> str:
    """``rounds`` chained SHA-256 hashes: deterministic, CPU-bound, linear in ``rounds``; the
    one CPU burn of the services' ``work`` routes (HPA tests), so every service's costs the
    same per round."""
    digest = seed.encode()
    for _ in range(rounds):
        digest = hashlib.sha256(digest).digest()
    return digest.hex()


def work_response(req: Request) -> Response:
    """The ``work`` routes' contract: ``?n=N`` (default 10000, 0..MAX_WORK, else 400) rounds
    of :func:`work`; 200 ``{"n","digest","served_by","ms"}``."""
    try:
        rounds = int(req.query.get("n", "10000"))
    except ValueError:
        return error(400, "n must be an integer")
    if not 0 <= rounds <= MAX_WORK:
        return error(400, f"n must be between 0 and {MAX_WORK}")
    started = time.monotonic()
    digest = work(rounds)
    return Response(
        200,
        {
            "n": rounds,
            "digest": digest,
            "served_by": HOSTNAME,
            "ms": round((time.monotonic() - started) * 1000, 1),
        },
    )


Route = Callable[[Request], Response]
HealthCheck = Callable[[], tuple[bool, dict[str, Any]]]


class App:
    """Routes + health + graceful drain on a ThreadingHTTPServer."""

    def __init__(
        self, name: str = SERVICE, version: str = VERSION, shutdown_delay: float = SHUTDOWN_DELAY
    ) -> None:
        self.name = name
        self.version = version
        self.shutdown_delay = shutdown_delay
        self.routes: list[tuple[str, str, bool, Route]] = []
        self.health_check: HealthCheck = lambda: (True, {})
        self.draining = threading.Event()
        #: Set by the fault hook (SIGUSR1): /health fails until the process is restarted.
        self.failing = threading.Event()
        self.server: Server | None = None
        self.started = time.time()

    def route(self, method: str, path: str, *, prefix: bool = False) -> Callable[[Route], Route]:
        """Register a handler for ``method`` and an exact path (or a path prefix)."""

        def deco(fn: Route) -> Route:
            self.routes.append((method, path, prefix, fn))
            return fn

        return deco

    def dispatch(self, req: Request) -> Response:
        """Built-in /health, /livez, /version, then the registered routes."""
        if req.path in ("/health", "/healthz", "/readyz") and req.method in ("GET", "HEAD"):
            if self.draining.is_set():
                return Response(503, {"status": "draining", "service": self.name})
            if self.failing.is_set():
                return Response(
                    503, {"status": "failing", "service": self.name, "fault": FAULT_HOOK}
                )
            ok, checks = self.health_check()
            return Response(
                200 if ok else 503,
                {"status": "ok" if ok else "unavailable", "service": self.name, "checks": checks},
            )
        if req.path == "/livez" and req.method in ("GET", "HEAD"):
            return Response(200, {"status": "alive", "service": self.name})
        if req.path == "/version" and req.method in ("GET", "HEAD"):
            return Response(
                200,
                {
                    "service": self.name,
                    "version": self.version,
                    "hostname": HOSTNAME,
                    "uptime_seconds": round(time.time() - self.started, 1),
                    "fault_hooks": [FAULT_HOOK],
                },
            )
        allowed: list[str] = []
        for method, path, prefix, fn in self.routes:
            match = req.path.startswith(path) if prefix else req.path == path
            if match:
                if method in (req.method, "*"):
                    if req.oversize and not getattr(fn, "checks_oversize", False):
                        return too_large(req)
                    return fn(req)
                allowed.append(method)
        if allowed:
            return Response(
                405, {"error": "method not allowed"}, {"Allow": ", ".join(sorted(set(allowed)))}
            )
        return error(404, "not found")

    def make_server(self, host: str = "0.0.0.0", port: int = 0) -> Server:
        """Bind the server (port 0 picks a free one: tests)."""
        self.server = Server((host, port), Handler, self)
        return self.server

    def shutdown(self) -> None:
        """Begin the drain: unready and idle keep-alives closed now, the socket closed after
        ``shutdown_delay`` (see SHUTDOWN_DELAY for why in that order)."""
        if self.draining.is_set():
            return
        self.draining.set()
        server = self.server
        log("draining", in_flight=server.busy_count() if server else 0)
        if server is None:
            return
        server.close_idle(only_reused=True)
        timer = threading.Timer(self.shutdown_delay, server.stop_accepting)
        timer.daemon = True
        timer.start()

    def fail_health(self) -> None:
        """The fault hook (FAULT_HOOK): /health answers 503 from now on; nothing else changes,
        so only a liveness probe on /health can notice, and only a restart undoes it."""
        if not self.failing.is_set():
            self.failing.set()
            log("fault_injected", hook=FAULT_HOOK)

    def serve(self, port: int, host: str = "0.0.0.0") -> int:
        """Serve until SIGTERM/SIGINT, drain, return the exit code (0 on a clean drain).
        SIGUSR1 is the fault hook (FAULT_HOOK)."""
        server = self.make_server(host, port)
        signal.signal(signal.SIGTERM, lambda *_: self.shutdown())
        signal.signal(signal.SIGINT, lambda *_: self.shutdown())
        signal.signal(signal.SIGUSR1, lambda *_: self.fail_health())
        log("listening", port=server.server_address[1], version=self.version)
        try:
            server.serve_forever(poll_interval=0.2)
        finally:
            server.socket.close()  # already closed after a drain; not after an error
        server.close_idle()
        drained = server.wait_idle(DRAIN_TIMEOUT)
        log("stopped", drained=drained, in_flight=server.busy_count())
        return 0


#: Connection states: accepted but no request read yet, in a request, between requests.
NEW, BUSY, IDLE = "new", "busy", "idle"


class Server(ThreadingHTTPServer):
    """Tracks connections so a drain can close idle keep-alives and wait for busy ones."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(
        self, addr: tuple[str, int], handler: type[BaseHTTPRequestHandler], app: App
    ) -> None:
        self.app = app
        self.lock = threading.Lock()
        self.conns: dict[Handler, str] = {}  # handler -> NEW, BUSY or IDLE
        super().__init__(addr, handler)

    def stop_accepting(self) -> None:
        """End serve_forever and close the listening socket: new connections are refused."""
        self.shutdown()
        self.socket.close()

    def busy_count(self) -> int:
        """Connections in the middle of a request."""
        with self.lock:
            return sum(1 for state in self.conns.values() if state == BUSY)

    def set_state(self, handler: Handler, state: str | None) -> None:
        """Record a connection's state, or forget it (None)."""
        with self.lock:
            if state is None:
                self.conns.pop(handler, None)
            else:
                self.conns[handler] = state

    def close_idle(self, only_reused: bool = False) -> None:
        """Wake connections waiting for a request so their threads end (used by the drain).

        ``only_reused`` spares new connections: their first request is on its way and gets
        an answer (with ``Connection: close``) instead of a dropped connection.
        """
        spared = {BUSY, NEW} if only_reused else {BUSY}
        with self.lock:
            idle = [h for h, state in self.conns.items() if state not in spared]
        for h in idle:
            try:
                h.connection.shutdown(socket.SHUT_RD)
            except OSError:
                pass

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no connection is open (busy ones finish their request)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if not self.conns:
                    return True
            self.close_idle()
            time.sleep(0.05)
        return False


class Handler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive handler: dispatches to the App and logs one line per request."""

    protocol_version = "HTTP/1.1"
    server: Server
    timeout = KEEPALIVE_TIMEOUT
    server_version = "codelab"
    sys_version = ""

    def setup(self) -> None:
        super().setup()
        self.server.set_state(self, NEW)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.set_state(self, None)

    def parse_request(self) -> bool:
        self.server.set_state(self, BUSY)
        return super().parse_request()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Silence the default stderr access log (we log JSON lines)."""

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        finally:
            self.server.set_state(self, IDLE)

    def _discard(self, length: int) -> bytes:
        """Read ``length`` body bytes in chunks and drop them (no memory spike)."""
        left = length
        while left > 0:
            chunk = self.rfile.read(min(left, 1 << 16))
            if not chunk:
                self.close_connection = True
                break
            left -= len(chunk)
        return b""

    def _serve(self) -> None:
        started = time.monotonic()
        app = self.server.app
        split = urllib.parse.urlsplit(self.path)
        request_id = self.headers.get("X-Request-Id") or uuid.uuid4().hex
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0:
            resp = error(400, "bad Content-Length")
            self.close_connection = True
        else:
            oversize = length if length > MAX_BUFFERED_BODY else 0
            body = self._discard(length) if oversize else self.rfile.read(length)
            query = dict(urllib.parse.parse_qsl(split.query))
            req = Request(
                self.command,
                split.path,
                query,
                self.headers,
                body,
                request_id,
                self.client_address[0],
                split.query,
                oversize,
            )
            try:
                resp = app.dispatch(req)
            except Exception as exc:  # noqa: BLE001 - a request must never kill the server
                log("error", path=split.path, error=type(exc).__name__, detail=str(exc)[:300])
                resp = error(500, "internal error")
        data, ctype = resp.encoded()
        if app.draining.is_set():
            self.close_connection = True
        self.send_response(resp.status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Request-Id", request_id)
        self.send_header("X-Served-By", HOSTNAME)
        for k, v in resp.headers.items():
            if k.lower() != "content-type":
                self.send_header(k, v)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        log(
            "request",
            method=self.command,
            path=split.path,
            status=resp.status,
            ms=round((time.monotonic() - started) * 1000, 1),
            client=self.client_address[0],
            request_id=request_id,
        )

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve


def run(app: App, default_port: int) -> None:
    """Entry point of a service process: serve on $PORT, exit with the drain's code."""
    sys.exit(app.serve(int(os.environ.get("PORT", default_port))))
