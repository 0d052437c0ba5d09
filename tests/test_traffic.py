"""traffic.py against a real HTTP(S) server on 127.0.0.1 (no cluster)."""

from __future__ import annotations

import datetime
import json
import socket
import ssl
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from pytest_codelab import traffic
from pytest_codelab.traffic import Result, Target, Traffic

UPLOAD_LIMIT = 1 << 20


@dataclass
class State:
    """What the test server answers; tests change it while traffic runs."""

    version: str = "1.0.0"
    status: int = 200
    seen_hosts: list[str] = field(default_factory=list)
    sni: list[str | None] = field(default_factory=list)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ThreadingHTTPServer

    def log_message(self, *args: object) -> None:
        pass

    @property
    def state(self) -> State:
        return self.server.state  # type: ignore[attr-defined, no-any-return]

    def _send(self, status: int, payload: object, *, close: bool = False) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Served-By", "test-server")
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self.state.seen_hosts.append(self.headers.get("Host", ""))
        if self.path == "/version":
            self._send(self.state.status, {"version": self.state.version})
        elif self.path.startswith("/status/"):
            self._send(int(self.path.rsplit("/", 1)[1]), {"status": "as asked"})
        elif self.path == "/slow":
            time.sleep(0.2)
            self._send(200, {"slow": True})
        elif self.path == "/drop-idle":
            # Answer as keep-alive, then close the connection without saying so: the next
            # request on it finds a stale connection.
            self._send(200, {"dropped": True})
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
        else:
            self._send(404, {"error": "not found"})

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        if length > UPLOAD_LIMIT:  # like a proxy checking Content-Length: answer at once
            self._send(413, {"error": "too large"}, close=True)
            return
        received = 0
        while received < length:
            received += len(self.rfile.read(min(65536, length - received)))
        self._send(200, {"received": received})


@pytest.fixture
def state() -> State:
    return State()


@pytest.fixture
def http_url(state: State, serve_http: Any) -> str:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.state = state  # type: ignore[attr-defined]
    return str(serve_http(server))


def _self_signed(host: str) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return cert_pem, key_pem


@pytest.fixture
def tls_server(state: State, tmp_path: Path, serve_http: Any) -> tuple[str, str]:
    """An HTTPS server for ``codelab.test``: (base URL, certificate PEM)."""
    cert_pem, key_pem = _self_signed("codelab.test")
    (tmp_path / "tls.crt").write_text(cert_pem)
    (tmp_path / "tls.key").write_text(key_pem)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "tls.crt", tmp_path / "tls.key")

    def remember_sni(sock: ssl.SSLObject, name: str | None, ctx: ssl.SSLContext) -> None:
        state.sni.append(name)

    context.sni_callback = remember_sni
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.state = state  # type: ignore[attr-defined]
    server.socket = context.wrap_socket(server.socket, server_side=True)
    return str(serve_http(server)), cert_pem


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --------------------------------------------------------------------- addresses


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "10.96.0.10", "172.31.254.2", "[::1]"])
def test_loopback_and_cluster_addresses_are_accepted(host: str) -> None:
    traffic.check_address(host)


@pytest.mark.parametrize("url", ["http://8.8.8.8", "https://1.1.1.1:8443"])
def test_public_addresses_are_refused(url: str) -> None:
    with pytest.raises(ValueError, match="not a loopback or cluster address"):
        Target(url)


def test_target_url_must_be_http() -> None:
    with pytest.raises(ValueError, match="http"):
        Target("ftp://127.0.0.1")


# --------------------------------------------------------------------- single requests


def test_request_records_status_headers_body_and_host(http_url: str, state: State) -> None:
    result = traffic.request(Target(http_url, host="codelab.example.com"), "GET", "/version")
    assert result.ok, result.describe()
    assert result.status == 200
    assert result.headers["x-served-by"] == "test-server"
    assert result.get("version") == "1.0.0"
    assert state.seen_hosts == ["codelab.example.com"]
    assert result.elapsed >= 0 and result.wall > 0


def test_non_2xx_is_not_ok_and_says_why(http_url: str) -> None:
    result = traffic.request(Target(http_url), "GET", "/status/503")
    assert not result.ok
    assert "HTTP 503" in result.describe()
    assert "as asked" in result.describe()


def test_custom_expectation(http_url: str) -> None:
    result = traffic.request(
        Target(http_url), "GET", "/status/401", expect=lambda r: r.status == 401
    )
    assert result.ok


def test_refused_connection_is_a_recorded_failure_not_an_exception() -> None:
    result = traffic.request(Target(f"http://127.0.0.1:{_closed_port()}"), "GET", "/")
    assert not result.ok
    assert result.status is None
    assert result.error and "ConnectionRefusedError" in result.error
    assert "no response" in result.describe()


def test_stale_keepalive_connection_is_retried_once(http_url: str) -> None:
    with traffic.Session(Target(http_url)) as session:
        first = session.request("GET", "/drop-idle")
        time.sleep(0.1)  # let the server's close arrive
        second = session.request("GET", "/version")
    assert first.ok and not first.retried
    assert second.ok, second.describe()
    assert second.retried


# --------------------------------------------------------------------- uploads


def test_upload_under_the_limit_is_streamed_whole(http_url: str) -> None:
    size = UPLOAD_LIMIT - 1024
    result = traffic.upload(Target(http_url), "/upload", size, chunk=65536)
    assert result.ok, result.describe()
    assert result.get("received") == size


def test_upload_over_the_limit_hears_the_early_answer(http_url: str) -> None:
    started = time.monotonic()
    result = traffic.upload(Target(http_url), "/upload", 512 << 20)
    assert result.status == 413, result.describe()
    assert result.error is None
    assert time.monotonic() - started < 10  # it did not push 512 MiB first


def test_tls_upload_is_not_stopped_by_session_tickets(tls_server: tuple[str, str]) -> None:
    """A TLS 1.3 server sends session tickets after the handshake: the socket is readable
    with no answer in it, which must not stop the upload (it used to, and then waited for
    an answer the server never sends before the whole body)."""
    url, cert_pem = tls_server
    target = Target(url, host="codelab.test", ca_pem=cert_pem, timeout=5)
    size = UPLOAD_LIMIT - 1024
    result = traffic.upload(target, "/upload", size, chunk=65536)
    assert result.ok, result.describe()
    assert result.get("received") == size


def test_tls_upload_over_the_limit_hears_the_early_answer(tls_server: tuple[str, str]) -> None:
    url, cert_pem = tls_server
    target = Target(url, host="codelab.test", ca_pem=cert_pem, timeout=5)
    result = traffic.upload(target, "/upload", 256 << 20)
    assert result.status == 413 and result.get("error") == "too large", result.describe()


# --------------------------------------------------------------------- TLS


def test_tls_with_sni_and_pinned_certificate(tls_server: tuple[str, str], state: State) -> None:
    url, cert_pem = tls_server
    target = Target(url, host="codelab.test", ca_pem=cert_pem)
    result = traffic.request(target, "GET", "/version")
    assert result.ok, result.describe()
    assert state.sni[-1] == "codelab.test"
    assert state.seen_hosts[-1] == "codelab.test"
    served = traffic.served_certificate(target)
    assert served == ssl.PEM_cert_to_DER_cert(cert_pem)


def test_tls_for_another_name_fails_verification(tls_server: tuple[str, str]) -> None:
    url, cert_pem = tls_server
    result = traffic.request(Target(url, host="other.test", ca_pem=cert_pem), "GET", "/version")
    assert not result.ok
    assert result.error and "certificate" in result.error.lower()


# --------------------------------------------------------------------- continuous traffic


def test_traffic_is_bounded_in_count(http_url: str) -> None:
    with Traffic(Target(http_url), "/version", interval=0, max_requests=7) as run:
        run.wait_for(7, timeout=10)
        time.sleep(0.1)
    report = run.report()
    assert len(report.results) == 7
    assert "limit of 7 requests" in report.stopped
    assert [r.seq for r in report.results] == list(range(1, 8))


def test_traffic_is_bounded_in_time(http_url: str) -> None:
    run = Traffic(Target(http_url), "/slow", interval=0, max_seconds=0.5).start()
    time.sleep(1.2)
    assert not run.running
    report = run.stop()
    assert "limit of 0.5s" in report.stopped
    assert 1 <= len(report.results) <= 4


@pytest.mark.parametrize(
    "kwargs", [{"max_requests": 0}, {"max_requests": 10**9}, {"max_seconds": 10**6}]
)
def test_traffic_bounds_are_checked(http_url: str, kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Traffic(Target(http_url), "/", **kwargs)  # type: ignore[arg-type]


def test_traffic_records_failures_with_timestamps_and_markers(http_url: str, state: State) -> None:
    with traffic.running(Traffic(Target(http_url), "/version", interval=0.01)) as run:
        run.wait_for(5, timeout=10)
        run.mark("outage")
        state.status = 503
        time.sleep(0.15)
        state.status = 200
        run.mark("recovered")
        run.wait_for(len(run.results()) + 5, timeout=10)
    report = run.report()
    assert report.failures, report.describe()
    assert all(f.status == 503 for f in report.failures)
    outage_at = report.marker("outage").at
    # A request in flight when the status flipped may fail: only those that ended before
    # the mark were certainly served healthy.
    before = [r for r in report.between(None, "outage") if r.started + r.elapsed < outage_at]
    assert before and all(r.ok for r in before)
    outage = report.between("outage", "recovered")
    assert outage and all(report.marker("outage").at <= r.started for r in outage)
    text = report.describe(limit=2)
    assert "failed" in text and "HTTP 503" in text and "markers: outage at +" in text
    assert "more failures" in text or len(report.failures) <= 2
    times = [r.started for r in report.results]
    assert times == sorted(times)


def test_transitions_show_the_versions_in_order(http_url: str, state: State) -> None:
    with traffic.running(Traffic(Target(http_url), "/version", interval=0.01)) as run:
        run.wait_for(3, timeout=10)
        state.version = "1.1.0"
        run.wait_for(len(run.results()) + 3, timeout=10)
    runs = run.report().transitions(lambda r: r.get("version"))
    assert [value for value, _ in runs] == ["1.0.0", "1.1.0"]
    assert all(count >= 1 for _, count in runs)


def test_traffic_against_a_dead_target_records_errors(http_url: str) -> None:
    target = Target(f"http://127.0.0.1:{_closed_port()}")
    with Traffic(target, "/", interval=0, max_requests=3) as run:
        run.wait_for(3, timeout=10)
    report = run.report()
    assert len(report.failures) == 3
    assert "3 failed" in report.summary()
    assert "statuses {error: 3}" in report.summary()


def test_result_json_of_non_json_body() -> None:
    result = Result(1, "GET", "/", 0.0, 0.0, 0.0, 200, body=b"<html>")
    assert result.json() is None
    assert result.get("x") is None
