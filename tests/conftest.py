"""Shared fixtures of the plugin's own tests.

``fake_apiserver`` is a small in-memory HTTP server that answers the calls the gate makes
(version, SelfSubjectAccessReview, namespaces, pods, events, logs) in the Kubernetes JSON
shapes, so the real official client and the gate's real code run against it; only the
cluster behind it is pretend. Real-cluster tests come with the local engine.

Test modules get these through fixtures only: ``import conftest`` would be ambiguous with
``suites/conftest.py`` (hence the TYPE_CHECKING-only imports of FakeApiServer).
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from pytest_codelab.options import OPTIONS

pytest_plugins = ["pytester"]

VERSION = {
    "major": "1",
    "minor": "37",
    "gitVersion": "v1.37.2",
    "gitCommit": "0" * 40,
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "go1.25",
    "compiler": "gc",
    "platform": "linux/amd64",
}


@pytest.fixture(autouse=True)
def _no_codelab_environment(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Inner pytest runs start from defaults whatever the developer's shell exports.

    Only for tests that run pytest (pytester): e2e tests keep the environment they were
    started with.
    """
    if "pytester" not in request.fixturenames:
        return
    for spec in OPTIONS:
        monkeypatch.delenv(spec.env, raising=False)
    monkeypatch.delenv("KUBECONFIG", raising=False)


def free_port() -> int:
    """A local TCP port with nothing listening on it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_kubeconfig(path: Path, server: str, contexts: tuple[str, ...] = ("dev", "prod")) -> Path:
    """A kubeconfig with the given contexts, all pointing at ``server`` (current: first)."""
    data = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": server}}],
        "users": [{"name": "u", "user": {"token": "not-a-secret"}}],
        "contexts": [{"name": c, "context": {"cluster": "c", "user": "u"}} for c in contexts],
        "current-context": contexts[0],
    }
    path.write_text(json.dumps(data), encoding="utf-8")  # JSON is YAML
    return path


def status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "reason": reason,
        "message": message,
        "code": code,
    }


ServeHttp = Callable[[ThreadingHTTPServer], str]


@pytest.fixture
def serve_http() -> Iterator[ServeHttp]:
    """``serve_http(server)``: run a bound HTTP server in a thread until the test ends and
    return its base URL (``https`` when its socket is TLS-wrapped)."""
    servers: list[ThreadingHTTPServer] = []

    def start(server: ThreadingHTTPServer) -> str:
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        scheme = "https" if hasattr(server.socket, "context") else "http"
        return f"{scheme}://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def closed_port() -> int:
    """A local TCP port with nothing listening on it (connections are refused)."""
    return free_port()


@pytest.fixture
def make_kubeconfig() -> Callable[..., Path]:
    """``make_kubeconfig(path, server, contexts=("dev", "prod"))`` writes a kubeconfig."""
    return write_kubeconfig


@dataclass
class FakeApiServer:
    """An in-memory API server for the calls the gate makes; tests edit its state.

    ``allowed(attributes) -> bool`` decides each SelfSubjectAccessReview; ``namespaces``,
    ``pods`` and ``events`` hold objects in their JSON form (key ``*``: any namespace);
    ``requests`` logs ``(method, path)`` so tests can assert what the gate did (and did not);
    ``logs``: a line more in the log of each container of a pod (key: pod name).
    """

    url: str = ""
    allowed: Callable[[dict[str, Any]], bool] = lambda attrs: True
    version_status: int = 200
    reviews: list[dict[str, Any]] = field(default_factory=list)
    namespaces: dict[str, dict[str, Any]] = field(default_factory=dict)
    pods: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    events: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    logs: dict[str, str] = field(default_factory=dict)

    def kubeconfig(self, path: Path, contexts: tuple[str, ...] = ("fake",)) -> Path:
        return write_kubeconfig(path, self.url, contexts)

    def deleted(self) -> list[str]:
        return [p.rsplit("/", 1)[1] for m, p in self.requests if m == "DELETE"]

    def get(self, parts: list[str], query: dict[str, str]) -> tuple[int, Any]:
        if parts == ["version"]:
            if self.version_status != 200:
                return self.version_status, status(self.version_status, "Unauthorized", "no")
            return 200, VERSION
        if parts == ["api", "v1", "namespaces"]:
            return 200, {"kind": "NamespaceList", "metadata": {}, "items": self._select(query)}
        if parts[:3] != ["api", "v1", "namespaces"] or parts[3] not in self.namespaces:
            return 404, status(404, "NotFound", f"{'/'.join(parts)} not found")
        ns = parts[3]
        rest = parts[4:]
        if not rest:
            return 200, self.namespaces[ns]
        if rest == ["serviceaccounts", "default"]:
            return 200, {"metadata": {"name": "default", "namespace": ns}}
        if rest == ["events"]:
            return 200, {"kind": "EventList", "metadata": {}, "items": self._for(self.events, ns)}
        if rest == ["pods"]:
            return 200, {"kind": "PodList", "metadata": {}, "items": self._for(self.pods, ns)}
        if len(rest) == 3 and rest[0] == "pods" and rest[2] == "log":
            previous = query.get("previous", "false")
            extra = f"\n{self.logs[rest[1]]}" if rest[1] in self.logs else ""
            return 200, f"log of {rest[1]}/{query.get('container')} previous={previous}{extra}"
        return 404, status(404, "NotFound", "not found")

    @staticmethod
    def _for(store: dict[str, list[dict[str, Any]]], ns: str) -> list[dict[str, Any]]:
        """Objects of a namespace; key ``*`` serves every namespace (names are random)."""
        return store.get(ns, store.get("*", []))

    def _select(self, query: dict[str, str]) -> list[dict[str, Any]]:
        wanted = dict(
            term.split("=", 1) for term in query.get("labelSelector", "").split(",") if term
        )
        return [
            ns
            for ns in self.namespaces.values()
            if all((ns["metadata"].get("labels") or {}).get(k) == v for k, v in wanted.items())
        ]

    def post(self, parts: list[str], body: dict[str, Any]) -> tuple[int, Any]:
        if parts[-1] == "selfsubjectaccessreviews":
            attrs = body["spec"]["resourceAttributes"]
            self.reviews.append(attrs)
            body["status"] = {"allowed": self.allowed(attrs)}
            return 201, body
        if parts == ["api", "v1", "namespaces"]:
            name = body["metadata"]["name"]
            if name in self.namespaces:
                return 409, status(409, "AlreadyExists", f"namespaces {name!r} already exists")
            body["status"] = {"phase": "Active"}
            self.namespaces[name] = body
            return 201, body
        return 404, status(404, "NotFound", "not found")

    def delete(self, parts: list[str]) -> tuple[int, Any]:
        if parts[:3] == ["api", "v1", "namespaces"] and len(parts) == 4:
            ns = self.namespaces.pop(parts[3], None)
            if ns is None:
                return 404, status(404, "NotFound", "not found")
            ns["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
            ns["status"] = {"phase": "Terminating"}
            return 200, ns
        return 404, status(404, "NotFound", "not found")


@pytest.fixture
def fake_apiserver(serve_http: ServeHttp) -> FakeApiServer:
    state = FakeApiServer()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _reply(self, code: int, body: Any) -> None:
            is_text = isinstance(body, str)
            data = body.encode() if is_text else json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "text/plain" if is_text else "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _route(self) -> tuple[list[str], dict[str, str]]:
            url = urlsplit(self.path)
            state.requests.append((self.command, url.path))
            return [p for p in url.path.split("/") if p], dict(parse_qsl(url.query))

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            self._reply(*state.get(*self._route()))

        def do_POST(self) -> None:  # noqa: N802
            parts, _ = self._route()
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            self._reply(*state.post(parts, body))

        def do_DELETE(self) -> None:  # noqa: N802
            parts, _ = self._route()
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self._reply(*state.delete(parts))

    state.url = serve_http(ThreadingHTTPServer(("127.0.0.1", 0), Handler))
    return state
