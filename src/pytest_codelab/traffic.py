"""HTTP from the gate to the stack: single requests, streamed uploads, continuous traffic.

``Target`` says where to send (an ingress address or a port-forward on 127.0.0.1), which
``Host``/SNI to present and which certificate to trust. ``Traffic`` is a background thread
that sends one request after another while a test disrupts the stack (a rolling update,
an undo) and records every result with its timestamps, so the test can assert that no
request failed and say which ones did, when and how.

Safety rails: only loopback and private (cluster) addresses are accepted as targets, and
traffic is bounded both in count and in time, whatever the caller forgets to stop.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import io
import ipaddress
import json
import select
import socket
import ssl
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from pytest_codelab.waiting import try_until

#: Bytes of each response body kept in a Result (enough for a JSON status document).
BODY_KEPT = 4096
#: Hard bounds of a Traffic run unless the caller asks for less.
MAX_REQUESTS = 20000
MAX_SECONDS = 900.0
_STALE_CONNECTION = (
    http.client.RemoteDisconnected,
    ConnectionResetError,
    BrokenPipeError,
    http.client.CannotSendRequest,
)


def check_address(host: str) -> None:
    """ValueError unless ``host`` is (or resolves only to) loopback or private addresses.

    The gate sends traffic to a cluster it tests, never to the internet.
    """
    try:
        addresses = {ipaddress.ip_address(host.strip("[]"))}
    except ValueError:
        try:
            infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
        except socket.gaierror as exc:
            raise ValueError(f"cannot resolve traffic target {host!r}: {exc}") from None
        addresses = {ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos}
    public = sorted(str(a) for a in addresses if not (a.is_loopback or a.is_private))
    if public:
        raise ValueError(
            f"traffic target {host!r} is not a loopback or cluster address ({', '.join(public)})"
        )


@dataclass(frozen=True)
class Target:
    """Where requests go: ``base_url`` (scheme, address, port), the ``host`` to present as
    Host header and TLS SNI (the Ingress host), extra headers, and for https the PEM
    certificate(s) to trust (e.g. the ``codelab-tls`` Secret's ``tls.crt``)."""

    base_url: str
    host: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    ca_pem: str | None = None
    timeout: float = 10.0

    def __post_init__(self) -> None:
        parts = urllib.parse.urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"target URL must be http(s)://ADDRESS[:PORT], not {self.base_url!r}")
        check_address(parts.hostname)

    @property
    def scheme(self) -> str:
        return urllib.parse.urlsplit(self.base_url).scheme

    @property
    def address(self) -> str:
        return urllib.parse.urlsplit(self.base_url).hostname or ""

    @property
    def port(self) -> int:
        parts = urllib.parse.urlsplit(self.base_url)
        return parts.port or (443 if parts.scheme == "https" else 80)

    @property
    def server_name(self) -> str:
        """The name presented in SNI and checked against the certificate."""
        return self.host or self.address

    def with_headers(self, **headers: str) -> Target:
        """A copy with more headers (``Authorization=...``)."""
        return Target(
            self.base_url, self.host, {**self.headers, **headers}, self.ca_pem, self.timeout
        )

    def describe(self) -> str:
        host = f" (Host: {self.host})" if self.host else ""
        return f"{self.base_url}{host}"

    def ssl_context(self) -> ssl.SSLContext:
        if self.ca_pem is None:
            return ssl.create_default_context()
        return ssl.create_default_context(cadata=self.ca_pem)

    def connection(self, timeout: float | None = None) -> http.client.HTTPConnection:
        """A new (unconnected) connection to the target address."""
        wait = self.timeout if timeout is None else timeout
        if self.scheme == "https":
            return _SNIConnection(
                self.address,
                self.port,
                server_name=self.server_name,
                context=self.ssl_context(),
                timeout=wait,
            )
        return http.client.HTTPConnection(self.address, self.port, timeout=wait)

    def request_headers(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        headers = {"User-Agent": "pytest-codelab", **self.headers, **(extra or {})}
        if self.host:
            headers["Host"] = self.host
        return headers


class _SNIConnection(http.client.HTTPSConnection):
    """HTTPS to an address, presenting another name in SNI (what curl --resolve does)."""

    def __init__(
        self,
        address: str,
        port: int,
        *,
        server_name: str,
        context: ssl.SSLContext,
        timeout: float,
    ) -> None:
        super().__init__(address, port, timeout=timeout, context=context)
        self.server_name = server_name
        self.tls_context = context

    def connect(self) -> None:
        http.client.HTTPConnection.connect(self)
        self.sock = self.tls_context.wrap_socket(self.sock, server_hostname=self.server_name)


@dataclass(frozen=True)
class Result:
    """One request: when it started (monotonic and wall clock), how long it took, and
    what came back (status, headers, first ``BODY_KEPT`` bytes) or the error."""

    seq: int
    method: str
    path: str
    started: float
    wall: float
    elapsed: float
    status: int | None
    error: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    ok: bool = False
    retried: bool = False

    def json(self) -> Any:
        """The body as JSON, or None when it is not JSON."""
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def get(self, name: str) -> Any:
        """A top-level field of a JSON object body, or None."""
        data = self.json()
        return data.get(name) if isinstance(data, dict) else None

    def describe(self) -> str:
        millis = int(self.wall % 1 * 1000)
        stamp = time.strftime("%H:%M:%S", time.gmtime(self.wall)) + f".{millis:03d}Z"
        outcome = f"HTTP {self.status}" if self.status is not None else "no response"
        detail = f" ({self.error})" if self.error else ""
        snippet = self.body[:160].decode("utf-8", "replace").strip()
        body = f" body: {snippet}" if snippet and not self.ok else ""
        return (
            f"#{self.seq} {stamp} {self.method} {self.path}: {outcome}{detail} "
            f"after {self.elapsed * 1000:.0f} ms{body}"
        )


def default_expect(result: Result) -> bool:
    """A request succeeded when it got a 2xx answer."""
    return result.status is not None and 200 <= result.status < 300


class Session:
    """Requests over one keep-alive connection, reopened when it breaks.

    A request that fails because a *reused* connection was closed by the peer before any
    response is retried once on a new connection (as browsers and HTTP clients do with
    idempotent requests); the Result says ``retried``. Any other failure is final.
    """

    def __init__(self, target: Target, *, keepalive: bool = True) -> None:
        self.target = target
        self.keepalive = keepalive
        self._conn: http.client.HTTPConnection | None = None
        self._seq = 0

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        expect: Callable[[Result], bool] = default_expect,
        timeout: float | None = None,
    ) -> Result:
        """Send one request; never raises for network errors (they are in the Result)."""
        self._seq += 1
        started, wall = time.monotonic(), time.time()
        all_headers = self.target.request_headers(headers)
        if not self.keepalive:
            all_headers["Connection"] = "close"
        retried = False
        status: int | None = None
        error: str | None = None
        resp_headers: dict[str, str] = {}
        data = b""
        for attempt in range(2):
            reused = self._conn is not None and self._conn.sock is not None
            if self._conn is None:
                self._conn = self.target.connection(timeout)
            try:
                self._conn.request(method, path, body=body, headers=all_headers)
                resp = self._conn.getresponse()
                data = resp.read()
                status = resp.status
                resp_headers = {k.lower(): v for k, v in resp.getheaders()}
                if resp.will_close or not self.keepalive:
                    self.close()
                error = None
                break
            except _STALE_CONNECTION as exc:
                self.close()
                error = _error_text(exc)
                if reused and attempt == 0:
                    retried = True
                    continue
                break
            except (OSError, http.client.HTTPException, ssl.SSLError) as exc:
                self.close()
                error = _error_text(exc)
                break
        return _result(
            (self._seq, method, path, started, wall),
            status,
            error,
            resp_headers,
            data,
            expect,
            retried=retried,
        )


def _with_ok(result: Result, expect: Callable[[Result], bool]) -> Result:
    return dataclasses.replace(result, ok=result.error is None and expect(result))


def _result(
    sent: tuple[int, str, str, float, float],
    status: int | None,
    error: str | None,
    headers: dict[str, str],
    data: bytes,
    expect: Callable[[Result], bool],
    *,
    retried: bool = False,
) -> Result:
    """The Result of a request ``sent`` as (seq, method, path, monotonic start, wall start)
    that ended now, judged by ``expect``."""
    seq, method, path, started, wall = sent
    result = Result(
        seq=seq,
        method=method,
        path=path,
        started=started,
        wall=wall,
        elapsed=time.monotonic() - started,
        status=status,
        error=error,
        headers=headers,
        body=data[:BODY_KEPT],
        retried=retried,
    )
    return _with_ok(result, expect)


def _error_text(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def request(
    target: Target,
    method: str,
    path: str,
    *,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    expect: Callable[[Result], bool] = default_expect,
    timeout: float | None = None,
) -> Result:
    """One request on a new connection."""
    with Session(target, keepalive=False) as session:
        return session.request(
            method, path, body=body, headers=headers, expect=expect, timeout=timeout
        )


def upload(
    target: Target,
    path: str,
    size: int,
    *,
    method: str = "POST",
    headers: Mapping[str, str] | None = None,
    chunk: int = 1 << 20,
    timeout: float | None = None,
) -> Result:
    """Stream a ``size``-byte body (zeros) with a Content-Length header, without holding it
    in memory, and return the response. A server that answers before the body is complete
    (e.g. 413 from a proxy that checks Content-Length) is heard: sending stops as soon as
    a response arrives and that response is returned."""
    started, wall = time.monotonic(), time.time()
    all_headers = target.request_headers(
        {"Content-Type": "application/octet-stream", **(headers or {})}
    )
    all_headers.setdefault("Host", f"{target.address}:{target.port}")
    all_headers["Content-Length"] = str(size)
    all_headers["Connection"] = "close"
    conn = target.connection(timeout)
    status: int | None = None
    error: str | None = None
    resp_headers: dict[str, str] = {}
    data = b""
    sent = 0
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for name, value in all_headers.items():
            conn.putheader(name, value)
        conn.endheaders()
        block = bytes(chunk)
        head: bytes | None = None
        try:
            while sent < size:
                head = _early_answer(conn.sock)
                if head is not None:
                    break
                piece = block[: min(chunk, size - sent)]
                conn.sock.sendall(piece)
                sent += len(piece)
        except OSError as exc:  # the peer stopped reading: its answer may still be there
            error = f"{_error_text(exc)} after {sent} of {size} bytes"
        try:
            if head:  # its first bytes were read by _early_answer: parse from them on
                replay: Any = _Replay(conn.sock, head)  # duck-typed: only makefile() is used
                resp = http.client.HTTPResponse(replay, method=method)
                resp.begin()
            else:
                resp = conn.getresponse()
            status = resp.status
            resp_headers = {k.lower(): v for k, v in resp.getheaders()}
            data = resp.read()
            error = None
        except (OSError, http.client.HTTPException) as exc:
            error = error or f"{_error_text(exc)} after {sent} of {size} bytes"
    except (OSError, http.client.HTTPException) as exc:
        error = f"{_error_text(exc)} after {sent} of {size} bytes"
    finally:
        conn.close()
    return _result(
        (1, method, path, started, wall), status, error, resp_headers, data, default_expect
    )


def _early_answer(sock: socket.socket | None) -> bytes | None:
    """``None`` while the server has not answered; else the answer's bytes already read
    (``b""`` when none were: the answer, or the end, is still in the socket).

    A readable TLS socket is not always an answer: a TLS 1.3 server sends session tickets
    after the handshake. A non-blocking read tells the two apart; it consumes the tickets,
    and, when the answer has begun, its first bytes, which the caller parses from.
    """
    if sock is None:
        return b""
    if isinstance(sock, ssl.SSLSocket) and sock.pending():
        return b""
    readable, _, _ = select.select([sock], [], [], 0)
    if not readable:
        return None
    if not isinstance(sock, ssl.SSLSocket):
        return b""
    timeout = sock.gettimeout()
    sock.settimeout(0)
    try:
        return sock.recv(65536)  # b"" at the end of the stream
    except (ssl.SSLWantReadError, BlockingIOError):
        return None  # only TLS records for the TLS layer
    finally:
        sock.settimeout(timeout)


class _Replay:
    """A socket for ``http.client.HTTPResponse`` whose first bytes were already read."""

    def __init__(self, sock: socket.socket, head: bytes) -> None:
        self.raw = _ReplayRaw(sock, head)

    def makefile(self, mode: str, *args: Any, **kwargs: Any) -> io.BufferedReader:
        return io.BufferedReader(self.raw)


class _ReplayRaw(io.RawIOBase):
    def __init__(self, sock: socket.socket, head: bytes) -> None:
        self.sock, self.head = sock, head

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.head:
            n = min(len(buffer), len(self.head))
            buffer[:n], self.head = self.head[:n], self.head[n:]
            return n
        return self.sock.recv_into(buffer)


def served_certificate(target: Target, timeout: float | None = None) -> bytes:
    """DER of the certificate the target serves for ``target.server_name`` (SNI), not
    verified: the caller compares it with the one it expects."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    wait = target.timeout if timeout is None else timeout
    with socket.create_connection((target.address, target.port), timeout=wait) as raw:
        with context.wrap_socket(raw, server_hostname=target.server_name) as tls:
            der = tls.getpeercert(binary_form=True)
    if not der:
        raise ssl.SSLError(f"{target.describe()} presented no certificate")
    return der


@dataclass(frozen=True)
class Marker:
    """A moment the test named while traffic ran ("rollout started")."""

    label: str
    at: float
    wall: float


@dataclass(frozen=True)
class TrafficReport:
    """Every result of a Traffic run, in order, with the test's markers and why it stopped."""

    target: str
    path: str
    results: tuple[Result, ...]
    markers: tuple[Marker, ...] = ()
    stopped: str = "stopped"

    @property
    def failures(self) -> list[Result]:
        return [r for r in self.results if not r.ok]

    @property
    def duration(self) -> float:
        if not self.results:
            return 0.0
        last = self.results[-1]
        return last.started + last.elapsed - self.results[0].started

    def between(self, start: str | None = None, end: str | None = None) -> list[Result]:
        """Results that started between two markers (None: the beginning / the end)."""
        lo = self.marker(start).at if start else float("-inf")
        hi = self.marker(end).at if end else float("inf")
        return [r for r in self.results if lo <= r.started < hi]

    def marker(self, label: str) -> Marker:
        for marker in self.markers:
            if marker.label == label:
                return marker
        raise KeyError(f"no marker {label!r}; markers: {[m.label for m in self.markers]}")

    def transitions(self, key: Callable[[Result], Any]) -> list[tuple[Any, int]]:
        """Runs of equal ``key`` over successful results: ``[(value, count), ...]`` in order
        (e.g. the versions seen while a rollout replaced pods)."""
        runs: list[tuple[Any, int]] = []
        for result in self.results:
            if not result.ok:
                continue
            value = key(result)
            if runs and runs[-1][0] == value:
                runs[-1] = (value, runs[-1][1] + 1)
            else:
                runs.append((value, 1))
        return runs

    def summary(self) -> str:
        statuses = Counter(r.status if r.status is not None else "error" for r in self.results)
        counts = ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items(), key=str))
        retried = sum(r.retried for r in self.results)
        extra = f", {retried} retried on a stale keep-alive connection" if retried else ""
        return (
            f"{len(self.results)} requests {self.path} to {self.target} in "
            f"{self.duration:.1f}s ({self.stopped}), {len(self.failures)} failed; "
            f"statuses {{{counts}}}{extra}"
        )

    def describe(self, limit: int = 10) -> str:
        """The summary, the markers and the first failures: an assertion message."""
        lines = [self.summary()]
        if self.results and self.markers:
            t0 = self.results[0].started
            lines.append(
                "markers: " + ", ".join(f"{m.label} at +{m.at - t0:.1f}s" for m in self.markers)
            )
        failures = self.failures
        for result in failures[:limit]:
            lines.append("  " + result.describe())
        if len(failures) > limit:
            lines.append(f"  ... and {len(failures) - limit} more failures")
        return "\n".join(lines)


class Traffic:
    """Requests to ``path`` one after another in a background thread, every result kept.

    ``with Traffic(target, "/api/v1/whoami") as traffic: ...; report = traffic.report()``.
    Bounded: it stops by itself after ``max_requests`` requests or ``max_seconds``
    (reported in ``TrafficReport.stopped``); ``interval`` is the pause between requests.
    """

    def __init__(
        self,
        target: Target,
        path: str,
        *,
        method: str = "GET",
        interval: float = 0.05,
        max_requests: int = 5000,
        max_seconds: float = 600.0,
        expect: Callable[[Result], bool] = default_expect,
        keepalive: bool = True,
        timeout: float | None = None,
    ) -> None:
        if not 0 < max_requests <= MAX_REQUESTS:
            raise ValueError(f"max_requests must be in 1..{MAX_REQUESTS}, not {max_requests}")
        if not 0 < max_seconds <= MAX_SECONDS:
            raise ValueError(f"max_seconds must be in (0, {MAX_SECONDS:g}], not {max_seconds}")
        if interval < 0:
            raise ValueError(f"interval must be 0 or more, not {interval}")
        self.target = target
        self.path = path
        self.method = method
        self.interval = interval
        self.max_requests = max_requests
        self.max_seconds = max_seconds
        self.expect = expect
        self.keepalive = keepalive
        self.timeout = timeout
        self._results: list[Result] = []
        self._markers: list[Marker] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._stopped = "not started"

    def start(self) -> Traffic:
        if self._thread is not None:
            raise RuntimeError("traffic already started")
        self._stopped = "running"
        self._thread = threading.Thread(target=self._run, name="codelab-traffic", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> TrafficReport:
        """Stop (waiting for the request in flight) and return the report."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        return self.report()

    def __enter__(self) -> Traffic:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def mark(self, label: str) -> Marker:
        """Record a named moment, to split the results later (``report.between``)."""
        marker = Marker(label, time.monotonic(), time.time())
        with self._lock:
            self._markers.append(marker)
        return marker

    def results(self) -> list[Result]:
        with self._lock:
            return list(self._results)

    def report(self) -> TrafficReport:
        with self._lock:
            return TrafficReport(
                self.target.describe(),
                self.path,
                tuple(self._results),
                tuple(self._markers),
                self._stopped,
            )

    def wait_for(self, count: int, timeout: float) -> list[Result]:
        """Block until at least ``count`` results exist (or the traffic ended / timeout)."""

        def enough() -> tuple[bool, str]:
            seen = len(self.results())
            return seen >= count or not self.running, f"{seen} results"

        try_until(enough, timeout=timeout, interval=0.02)  # the caller judges what it got
        return self.results()

    def _run(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        with Session(self.target, keepalive=self.keepalive) as session:
            while not self._stop.is_set():
                if len(self._results) >= self.max_requests:
                    self._stopped = f"limit of {self.max_requests} requests reached"
                    return
                if time.monotonic() >= deadline:
                    self._stopped = f"limit of {self.max_seconds:g}s reached"
                    return
                result = session.request(
                    self.method, self.path, expect=self.expect, timeout=self.timeout
                )
                with self._lock:
                    self._results.append(result)
                if self.interval:
                    self._stop.wait(self.interval)
        self._stopped = "stopped"


@contextlib.contextmanager
def running(traffic: Traffic, warmup: int = 1, timeout: float = 30.0) -> Iterator[Traffic]:
    """Start ``traffic``, wait for ``warmup`` results, yield it; always stop it."""
    traffic.start()
    try:
        traffic.wait_for(warmup, timeout)
        yield traffic
    finally:
        traffic.stop()
