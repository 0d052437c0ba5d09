"""Local HTTP(S) servers for the clients' tests: what they answer is in a State the test changes."""

from __future__ import annotations

import datetime
import functools
import json
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

#: Bodies above this size get 413 at once, like a proxy checking Content-Length.
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


@dataclass(frozen=True)
class Chain:
    """A root -> intermediate -> leaf chain (PEM), made here with ``cryptography`` so the
    client is tested against certificates the gate did not make."""

    root: str
    intermediate: str
    leaf: str
    key: str

    @property
    def served(self) -> str:
        """What a server sends, as ingress controllers do: the leaf, then the intermediate."""
        return self.leaf + self.intermediate


def _certificate(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[ec.EllipticCurvePrivateKey, x509.Certificate] | None,
    *,
    ca: bool,
    san: str | None = None,
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = datetime.datetime.now(datetime.UTC)
    signer = issuer[0] if issuer else key
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer[1].subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), False
        )
    )
    if san:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(san)]), critical=False
        )
    return builder.sign(signer, hashes.SHA256())


def make_chain(host: str) -> Chain:
    """A new root, an intermediate it signed, and a leaf for ``host`` the intermediate signed."""
    root_key = ec.generate_private_key(ec.SECP256R1())
    root = _certificate("test root", root_key, None, ca=True)
    inter_key = ec.generate_private_key(ec.SECP256R1())
    inter = _certificate("test intermediate", inter_key, (root_key, root), ca=True)
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = _certificate(host, leaf_key, (inter_key, inter), ca=False, san=host)
    pem = serialization.Encoding.PEM
    key_pem = leaf_key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return Chain(*(c.public_bytes(pem).decode() for c in (root, inter, leaf)), key=key_pem)


@dataclass(frozen=True)
class TLSServer:
    """A loopback HTTPS server for ``codelab.test`` serving ``chain`` (leaf + intermediate)."""

    url: str
    chain: Chain


def serve_tls(serve_http: Any, state: State, directory: Path, cert_pem: str, key_pem: str) -> str:
    """Start the test server behind TLS with ``cert_pem`` (the chain it sends) and its key;
    the SNI names it is asked for go to ``state.sni``. Returns its base URL."""
    (directory / "tls.crt").write_text(cert_pem)
    (directory / "tls.key").write_text(key_pem)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(directory / "tls.crt", directory / "tls.key")

    def remember_sni(sock: ssl.SSLObject, name: str | None, ctx: ssl.SSLContext) -> None:
        state.sni.append(name)

    context.sni_callback = remember_sni
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.state = state  # type: ignore[attr-defined]
    server.socket = context.wrap_socket(server.socket, server_side=True)
    return str(serve_http(server))


@pytest.fixture
def tls_chain() -> Callable[[str], Chain]:
    """``tls_chain(host)``: a new root -> intermediate -> leaf chain for ``host``."""
    return make_chain


@pytest.fixture
def start_tls(state: State, tmp_path: Path, serve_http: Any) -> Callable[[str, str], str]:
    """``start_tls(cert_pem, key_pem)``: the test server behind TLS sending ``cert_pem``;
    returns its base URL."""
    return functools.partial(serve_tls, serve_http, state, tmp_path)


@pytest.fixture
def tls_server(start_tls: Callable[[str, str], str]) -> TLSServer:
    """An HTTPS server for ``codelab.test`` with a root -> intermediate -> leaf chain."""
    chain = make_chain("codelab.test")
    return TLSServer(start_tls(chain.served, chain.key), chain)


@pytest.fixture
def upload_limit() -> int:
    """The test servers' body size limit."""
    return UPLOAD_LIMIT
