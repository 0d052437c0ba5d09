"""The one HTTP client of the stack: requests to the ingress address, as the product's host.

The ingress address (an IP or a load balancer name) is rarely resolvable as the product's host,
so ``IngressClient`` sends to the address with the ``Host`` header set, and for HTTPS with the
TLS server name (SNI) set to the host, so the controller picks the host's certificate, which
is verified, chain and host name, against the run's trust store (:mod:`.tls`: the system CAs,
the stack's issuer root, ``--codelab-ca-file``), as a client that resolves the host would.
The same client reaches a port-forward on 127.0.0.1. Redirects are not followed, so a test
sees exactly what the ingress answered.

Every request gives a ``Result`` (status, headers, the first bytes of the body, or the
network error): a failed request is a fact to judge, never an exception. ``Session`` keeps one
connection alive across requests (continuous traffic, :mod:`pytest_codelab.clients.traffic`);
``upload`` streams a large body and hears an early answer (413) before the body is sent.

Safety rail: only loopback and private (cluster) addresses are accepted as targets."""

from __future__ import annotations

import dataclasses
import http.client
import io
import ipaddress
import json
import select
import socket
import ssl
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pytest_codelab.clients.tls import Trust
from pytest_codelab.k8s.waiting import Timeouts

#: Bytes of each response body kept in a Result (enough for a JSON status document).
BODY_KEPT = 4096
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


@dataclass(frozen=True)
class IngressClient:
    """Requests to ``base_url`` (scheme, address, port) as if to the ``host``: presented as
    Host header and TLS SNI (the Ingress host), with extra headers, and for https the trust
    store the served certificate is verified against (always; the system CAs by default).
    ``timeout`` bounds each request unless a call gives its own."""

    base_url: str
    host: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    trust: Trust = field(default_factory=Trust)
    timeout: float = Timeouts.request

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

    def with_headers(self, **headers: str) -> IngressClient:
        """A copy with more headers (``Authorization=...``)."""
        return dataclasses.replace(self, headers={**self.headers, **headers})

    def with_token(self, token: str) -> IngressClient:
        """A copy that presents ``token`` as its bearer token."""
        return self.with_headers(Authorization=f"Bearer {token}")

    def https(self) -> IngressClient:
        """The same address on its https port (443 unless the client already is https)."""
        if self.scheme == "https":
            return self
        return dataclasses.replace(self, base_url=f"https://{self.address}")

    def following_https_redirect(self, path: str) -> IngressClient:
        """This client, or its https twin on the redirect's port when the ingress redirects
        ``path`` from http to https (an ssl-redirect)."""
        if self.scheme != "http":
            return self
        first = self.request("GET", path, expect=lambda r: True)
        if first.status not in (301, 302, 307, 308):
            return self
        redirect = urllib.parse.urlsplit(first.headers.get("location", ""))
        if redirect.scheme != "https":
            return self
        port = f":{redirect.port}" if redirect.port else ""
        return dataclasses.replace(self, base_url=f"https://{self.address}{port}")

    def describe(self) -> str:
        host = f" (Host: {self.host})" if self.host else ""
        return f"{self.base_url}{host}"

    def connection(self, timeout: float | None = None) -> http.client.HTTPConnection:
        """A new (unconnected) connection to the target address."""
        wait = self.timeout if timeout is None else timeout
        if self.scheme == "https":
            return _SNIConnection(
                self.address,
                self.port,
                server_name=self.server_name,
                trust=self.trust,
                timeout=wait,
            )
        return http.client.HTTPConnection(self.address, self.port, timeout=wait)

    def request_headers(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        headers = {"User-Agent": "pytest-codelab", **self.headers, **(extra or {})}
        if self.host:
            headers["Host"] = self.host
        return headers

    def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        payload: Any = None,
        headers: Mapping[str, str] | None = None,
        expect: Callable[[Result], bool] = default_expect,
        timeout: float | None = None,
    ) -> Result:
        """One request on a new connection; ``payload`` is sent as a JSON body."""
        if payload is not None:
            body = json.dumps(payload).encode()
            headers = {"Content-Type": "application/json", **(headers or {})}
        with Session(self, keepalive=False) as session:
            return session.request(
                method, path, body=body, headers=headers, expect=expect, timeout=timeout
            )

    def oauth_token(self, client_id: str, client_secret: str) -> Result:
        """``POST /oauth/token`` with client credentials; the token is
        ``result.get("access_token")``. The secret is sent, never kept or shown."""
        form = urllib.parse.urlencode(
            {
                "grant_type": "client_credentials",
                "client_id": client_id,
                "client_secret": client_secret,
            }
        )
        return self.request(
            "POST",
            "/oauth/token",
            body=form.encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )

    def upload(
        self,
        path: str,
        size: int,
        *,
        method: str = "POST",
        headers: Mapping[str, str] | None = None,
        chunk: int = 1 << 20,
        timeout: float | None = None,
    ) -> Result:
        """Stream a ``size``-byte body; see :func:`_upload`."""
        return _upload(
            self, path, size, method=method, headers=headers, chunk=chunk, timeout=timeout
        )

    def served_certificate(self, timeout: float | None = None) -> bytes:
        """DER of the certificate served for ``server_name`` (SNI), once verified like every
        connection (VerificationFailed otherwise): the caller compares it with the one it
        expects."""
        wait = self.timeout if timeout is None else timeout
        with socket.create_connection((self.address, self.port), timeout=wait) as raw:
            where = f"{self.address}:{self.port}"
            with self.trust.wrap(raw, self.server_name, where) as tls:
                der = tls.getpeercert(binary_form=True)
        if not der:
            raise ssl.SSLError(f"{self.describe()} presented no certificate")
        return der


class _SNIConnection(http.client.HTTPSConnection):
    """HTTPS to an address, presenting another name in SNI and verifying the certificate for
    that name (what curl --resolve does)."""

    def __init__(
        self, address: str, port: int, *, server_name: str, trust: Trust, timeout: float
    ) -> None:
        super().__init__(address, port, timeout=timeout, context=trust.context())
        self.server_name = server_name
        self.trust = trust

    def connect(self) -> None:
        http.client.HTTPConnection.connect(self)
        self.sock = self.trust.wrap(self.sock, self.server_name, f"{self.host}:{self.port}")


class Session:
    """Requests over one keep-alive connection, reopened when it breaks.

    A request that fails because a *reused* connection was closed by the peer before any
    response is retried once on a new connection (as browsers and HTTP clients do with
    idempotent requests); the Result says ``retried``. Any other failure is final.
    """

    def __init__(self, target: IngressClient, *, keepalive: bool = True) -> None:
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


def _upload(
    target: IngressClient,
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
