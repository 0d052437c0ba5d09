"""CodeLab gateway (reference): authenticates /api/v1/* and forwards it to agent-runtime.

Every /api/v1/* request needs ``Authorization: Bearer <jwt>``; the gateway asks
auth-service (GET $AUTH_SERVICE_URL/oauth/verify) and caches a positive answer for at most
VERIFY_CACHE_SECONDS (never past the token's exp). Without a valid token: 401. Then the
request goes to $AGENT_RUNTIME_URL with the same method, path, query and body, plus
X-Codelab-Subject, X-Request-Id and X-Internal-Api-Key (when INTERNAL_API_KEY is set).
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from typing import Any

from codelab_common import (
    App,
    HttpClient,
    Request,
    Response,
    bearer_token,
    error,
    log,
    run,
    too_large,
)

PORT = 8000
#: Request headers passed on to agent-runtime (Authorization is not: it stops here).
FORWARD_HEADERS = ("Content-Type", "Accept", "User-Agent", "X-Request-Id")


class TokenChecker:
    """Asks auth-service whether a bearer token is valid, with a short positive cache."""

    def __init__(
        self, auth_url: str, client: HttpClient, cache_seconds: float = 10, max_entries: int = 10000
    ) -> None:
        self.auth_url = auth_url.rstrip("/")
        self.client = client
        self.cache_seconds = cache_seconds
        self.max_entries = max_entries
        self._cache: dict[str, tuple[float, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def check(self, token: str | None) -> tuple[int, dict[str, Any]]:
        """(200, claims) for a valid token, (401, reason) for an invalid or missing one,
        (503, reason) when auth-service cannot be asked."""
        if not token:
            return 401, {"error": "missing bearer token"}
        key = hashlib.sha256(token.encode()).hexdigest()
        now = time.time()
        with self._lock:
            hit = self._cache.get(key)
        if hit and hit[0] > now:
            return 200, hit[1]
        try:
            status, body = self.client.json(
                "GET",
                f"{self.auth_url}/oauth/verify",
                headers={"Authorization": f"Bearer {token}"},
                timeout=5,
            )
        except OSError as exc:
            return 503, {"error": "auth-service unreachable", "detail": type(exc).__name__}
        if status == 200 and isinstance(body, dict) and body.get("active", True):
            until = now + self.cache_seconds
            if "exp" in body:
                until = min(until, float(body["exp"]))
            with self._lock:
                if len(self._cache) >= self.max_entries:
                    self._cache.clear()
                self._cache[key] = (until, body)
            return 200, body
        if status in (401, 403) or (status == 200 and isinstance(body, dict)):
            reason = body.get("error_description") if isinstance(body, dict) else None
            return 401, {"error": "invalid token", "detail": reason or "rejected"}
        return 503, {"error": "auth-service error", "status": status}


def create_app(
    agent_url: str,
    auth_url: str,
    internal_key: str | None = None,
    client: HttpClient | None = None,
    cache_seconds: float = 10,
) -> App:
    """The gateway app forwarding to ``agent_url`` after checking tokens with ``auth_url``."""
    app = App()
    http = client or HttpClient(timeout=float(os.environ.get("UPSTREAM_TIMEOUT", "60")))
    checker = TokenChecker(auth_url, http, cache_seconds)
    agent = agent_url.rstrip("/")

    @app.route("*", "/api/v1/", prefix=True)
    def forward(req: Request) -> Response:
        status, info = checker.check(bearer_token(req.headers))
        if status != 200:
            headers = {"WWW-Authenticate": 'Bearer realm="codelab"'} if status == 401 else {}
            return Response(status, info, headers)
        if req.oversize:
            return too_large(req)
        headers = {h: req.headers[h] for h in FORWARD_HEADERS if req.headers.get(h)}
        headers["X-Request-Id"] = req.request_id
        headers["X-Codelab-Subject"] = str(info.get("sub", ""))
        headers["X-Forwarded-For"] = ", ".join(
            x for x in (req.headers.get("X-Forwarded-For"), req.client) if x
        )
        if internal_key:
            headers["X-Internal-Api-Key"] = internal_key
        url = agent + req.path + (f"?{req.raw_query}" if req.raw_query else "")
        try:
            up_status, up_headers, body = http.request(
                req.method, url, body=req.body if req.body else None, headers=headers
            )
        except OSError as exc:
            log("upstream_error", upstream="agent-runtime", error=type(exc).__name__)
            return error(502, "agent-runtime unreachable")
        out = {"Content-Type": up_headers.get("content-type", "application/json")}
        if "x-cache" in up_headers:
            out["X-Cache"] = up_headers["x-cache"]
        if "x-served-by" in up_headers:
            out["X-Upstream-Served-By"] = up_headers["x-served-by"]
        return Response(up_status, body, out)

    forward.checks_oversize = True  # type: ignore[attr-defined]  # authenticate first
    return app


def main() -> None:
    """Start from the environment."""
    agent = os.environ.get("AGENT_RUNTIME_URL", "http://agent-runtime:8001")
    auth = os.environ.get("AUTH_SERVICE_URL", "http://auth-service:8003")
    key = os.environ.get("INTERNAL_API_KEY") or None
    cache = float(os.environ.get("VERIFY_CACHE_SECONDS", "10"))
    log(
        "starting",
        agent_runtime=agent,
        auth_service=auth,
        internal_api_key="set" if key else "unset",
        verify_cache_seconds=cache,
    )
    run(create_app(agent, auth, key, cache_seconds=cache), PORT)


if __name__ == "__main__":
    main()
