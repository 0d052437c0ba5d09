"""The ingress client against a real HTTP(S) server on 127.0.0.1 (no cluster)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pytest

from pytest_codelab.clients.ingress import IngressClient, Result, Session, check_address
from pytest_codelab.clients.tls import Trust

if TYPE_CHECKING:
    from clients.conftest import State, TLSServer


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "10.96.0.10", "172.31.254.2", "[::1]"])
def test_loopback_and_cluster_addresses_are_accepted(host: str) -> None:
    check_address(host)


@pytest.mark.parametrize("url", ["http://8.8.8.8", "https://1.1.1.1:8443"])
def test_public_addresses_are_refused(url: str) -> None:
    with pytest.raises(ValueError, match="not a loopback or cluster address"):
        IngressClient(url)


def test_target_url_must_be_http() -> None:
    with pytest.raises(ValueError, match="http"):
        IngressClient("ftp://127.0.0.1")


def test_request_records_status_headers_body_and_host(http_url: str, state: State) -> None:
    result = IngressClient(http_url, host="codelab.example.com").request("GET", "/version")
    assert result.ok, result.describe()
    assert result.status == 200
    assert result.headers["x-served-by"] == "test-server"
    assert result.get("version") == "1.0.0"
    assert state.seen_hosts == ["codelab.example.com"]
    assert result.elapsed >= 0 and result.wall > 0


def test_non_2xx_is_not_ok_and_says_why(http_url: str) -> None:
    result = IngressClient(http_url).request("GET", "/status/503")
    assert not result.ok
    assert "HTTP 503" in result.describe()
    assert "as asked" in result.describe()


def test_custom_expectation(http_url: str) -> None:
    result = IngressClient(http_url).request("GET", "/status/401", expect=lambda r: r.status == 401)
    assert result.ok


def test_refused_connection_is_a_recorded_failure_not_an_exception(closed_port: int) -> None:
    result = IngressClient(f"http://127.0.0.1:{closed_port}").request("GET", "/")
    assert not result.ok
    assert result.status is None
    assert result.error and "ConnectionRefusedError" in result.error
    assert "no response" in result.describe()


def test_stale_keepalive_connection_is_retried_once(http_url: str) -> None:
    with Session(IngressClient(http_url)) as session:
        first = session.request("GET", "/drop-idle")
        time.sleep(0.1)  # let the server's close arrive
        second = session.request("GET", "/version")
    assert first.ok and not first.retried
    assert second.ok, second.describe()
    assert second.retried


def test_upload_under_the_limit_is_streamed_whole(http_url: str, upload_limit: int) -> None:
    size = upload_limit - 1024
    result = IngressClient(http_url).upload("/upload", size, chunk=65536)
    assert result.ok, result.describe()
    assert result.get("received") == size


def test_upload_over_the_limit_hears_the_early_answer(http_url: str) -> None:
    started = time.monotonic()
    result = IngressClient(http_url).upload("/upload", 512 << 20)
    assert result.status == 413, result.describe()
    assert result.error is None
    assert time.monotonic() - started < 10  # it did not push 512 MiB first


def _trusting_root(server: TLSServer) -> IngressClient:
    trust = Trust().adding(server.chain.root, "test root")
    return IngressClient(server.url, host="codelab.test", trust=trust, timeout=5)


def test_tls_upload_is_not_stopped_by_session_tickets(
    tls_server: TLSServer, upload_limit: int
) -> None:
    """A TLS 1.3 server sends session tickets after the handshake: the socket is readable
    with no answer in it, which must not stop the upload (it used to, and then waited for
    an answer the server never sends before the whole body)."""
    target = _trusting_root(tls_server)
    size = upload_limit - 1024
    result = target.upload("/upload", size, chunk=65536)
    assert result.ok, result.describe()
    assert result.get("received") == size


def test_tls_upload_over_the_limit_hears_the_early_answer(tls_server: TLSServer) -> None:
    result = _trusting_root(tls_server).upload("/upload", 256 << 20)
    assert result.status == 413 and result.get("error") == "too large", result.describe()


def test_result_json_of_non_json_body() -> None:
    result = Result(1, "GET", "/", 0.0, 0.0, 0.0, 200, body=b"<html>")
    assert result.json() is None
    assert result.get("x") is None


def test_https_twin_and_token_keep_the_host_and_trust(tls_server: TLSServer) -> None:
    trust = Trust().adding(tls_server.chain.root, "test root")
    client = IngressClient("http://127.0.0.1:8080", host="codelab.test", trust=trust)
    https = client.https()
    assert (https.base_url, https.host, https.trust) == (
        "https://127.0.0.1",
        "codelab.test",
        trust,
    )
    assert https.https() is https
    authorized = client.with_token("t0k3n")
    assert authorized.request_headers()["Authorization"] == "Bearer t0k3n"
    assert "Authorization" not in client.request_headers()


def test_json_payload_is_sent_with_its_type(http_url: str) -> None:
    result = IngressClient(http_url).request("POST", "/upload", payload={"prompt": "hi"})
    assert result.ok and result.get("received") == len(b'{"prompt": "hi"}'), result.describe()
