"""CodeLab auth-service (reference): OAuth2 client-credentials tokens as HS256 JWTs.

POST /oauth/token   client_credentials (form, JSON or HTTP Basic); the client secret must
                    equal OAUTH2_CLIENT_SECRET; returns a JWT signed with JWT_SECRET_KEY.
GET  /oauth/verify  Authorization: Bearer <jwt> -> 200 claims | 401.
POST /oauth/introspect  RFC 7662 (token=...) -> {"active": bool, ...}.
GET  /oauth/work?n=N  with a valid bearer token: N rounds of SHA-256 (CPU for HPA tests,
                    the same contract as agent-runtime's /api/v1/work); 401 without one.
Stateless on purpose: tokens stay verifiable when PostgreSQL or Redis are down.
"""

from __future__ import annotations

import base64
import hmac
import json
import os
import time
import urllib.parse
import uuid
from typing import Any

from codelab_common import (
    App,
    Request,
    Response,
    TokenError,
    bearer_token,
    jwt_decode,
    jwt_encode,
    log,
    run,
    work_response,
)

ISSUER = os.environ.get("JWT_ISSUER", "codelab-auth-service")
AUDIENCE = os.environ.get("JWT_AUDIENCE", "codelab")
TTL = int(os.environ.get("JWT_TTL_SECONDS", "3600"))
PORT = 8003


def _form(req: Request) -> dict[str, str]:
    ctype = (req.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if ctype == "application/json":
        data = req.json() or {}
        if not isinstance(data, dict):
            raise ValueError("JSON object expected")
        return {str(k): str(v) for k, v in data.items()}
    return dict(urllib.parse.parse_qsl(req.body.decode("utf-8", "replace")))


def _basic(req: Request) -> tuple[str, str] | None:
    scheme, _, value = (req.headers.get("Authorization") or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, _, password = base64.b64decode(value.strip()).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    return urllib.parse.unquote(user), urllib.parse.unquote(password)


def create_app(jwt_secret: str, client_secret: str, client_id: str | None = None) -> App:
    """The auth-service app; ``client_id`` restricts the accepted client when given."""
    app = App()

    def _oauth_error(status: int, code: str, description: str) -> Response:
        headers = {"Cache-Control": "no-store"}
        if status == 401:
            headers["WWW-Authenticate"] = 'Basic realm="codelab"'
        return Response(status, {"error": code, "error_description": description}, headers)

    @app.route("POST", "/oauth/token")
    def token(req: Request) -> Response:
        try:
            form = _form(req)
        except ValueError:
            return _oauth_error(400, "invalid_request", "unreadable body")
        basic = _basic(req)
        cid, secret = basic if basic else (form.get("client_id", ""), form.get("client_secret", ""))
        if form.get("grant_type") != "client_credentials":
            return _oauth_error(400, "unsupported_grant_type", "only client_credentials")
        if not cid or not secret:
            return _oauth_error(401, "invalid_client", "client_id and client_secret required")
        id_ok = client_id is None or hmac.compare_digest(cid.encode(), client_id.encode())
        secret_ok = hmac.compare_digest(secret.encode(), client_secret.encode())
        if not (id_ok and secret_ok):
            log("token_denied", client_id=cid)
            return _oauth_error(401, "invalid_client", "bad client credentials")
        now = int(time.time())
        scope = form.get("scope", "api")
        claims = {
            "iss": ISSUER,
            "sub": cid,
            "aud": AUDIENCE,
            "iat": now,
            "nbf": now,
            "exp": now + TTL,
            "jti": uuid.uuid4().hex,
            "scope": scope,
        }
        log("token_issued", client_id=cid, jti=claims["jti"])
        return Response(
            200,
            {
                "access_token": jwt_encode(claims, jwt_secret),
                "token_type": "Bearer",
                "expires_in": TTL,
                "scope": scope,
            },
            {"Cache-Control": "no-store"},
        )

    def _check(token: str | None) -> tuple[dict[str, Any] | None, str]:
        if not token:
            return None, "missing bearer token"
        try:
            return jwt_decode(token, jwt_secret, audience=AUDIENCE), ""
        except TokenError as exc:
            return None, str(exc)

    @app.route("GET", "/oauth/verify")
    def verify(req: Request) -> Response:
        claims, why = _check(bearer_token(req.headers))
        if claims is None:
            return Response(
                401,
                {"active": False, "error": "invalid_token", "error_description": why},
                {"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        return Response(200, {"active": True, **claims})

    @app.route("POST", "/oauth/introspect")
    def introspect(req: Request) -> Response:
        try:
            form = _form(req)
        except ValueError:
            return _oauth_error(400, "invalid_request", "unreadable body")
        claims, _why = _check(form.get("token"))
        return Response(200, {"active": True, **claims} if claims else {"active": False})

    @app.route("GET", "/oauth/work")
    def do_work(req: Request) -> Response:
        # CPU that scales with the load, so auth-service-hpa can be driven through the
        # Ingress like the others; a token is required so anonymous callers burn nothing.
        claims, why = _check(bearer_token(req.headers))
        if claims is None:
            return Response(
                401,
                {"error": "invalid_token", "error_description": why},
                {"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        return work_response(req)

    @app.route("GET", "/oauth/.well-known")
    def metadata(req: Request) -> Response:
        return Response(
            200,
            {
                "issuer": ISSUER,
                "token_endpoint": "/oauth/token",
                "grant_types_supported": ["client_credentials"],
                "token_endpoint_auth_methods_supported": [
                    "client_secret_basic",
                    "client_secret_post",
                ],
            },
        )

    return app


def main() -> None:
    """Start from the environment (JWT_SECRET_KEY, OAUTH2_CLIENT_SECRET required)."""
    from codelab_common import require_env

    cfg = require_env("JWT_SECRET_KEY", "OAUTH2_CLIENT_SECRET")
    client_id = os.environ.get("OAUTH2_CLIENT_ID") or None
    log(
        "starting",
        config=json.dumps(
            {
                "JWT_SECRET_KEY": "set",
                "OAUTH2_CLIENT_SECRET": "set",
                "OAUTH2_CLIENT_ID": client_id or "(any)",
                "ttl": TTL,
            }
        ),
    )
    run(create_app(cfg["JWT_SECRET_KEY"], cfg["OAUTH2_CLIENT_SECRET"], client_id), PORT)


if __name__ == "__main__":
    main()
