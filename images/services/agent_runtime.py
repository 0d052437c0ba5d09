"""CodeLab agent-runtime (reference): sessions in PostgreSQL, cache in Redis, LLM via proxy.

GET  /health                  200 only when PostgreSQL and Redis answer (readiness)
POST /api/v1/sessions         {"prompt": ...} -> row in PostgreSQL, key in Redis, completion
                              from the LLM proxy; returns the ids of all three (smoke path)
GET  /api/v1/sessions/<id>    Redis first (X-Cache: hit), else PostgreSQL (X-Cache: miss)
GET  /api/v1/sessions         the latest sessions (?limit=)
GET  /api/v1/work?n=N         N rounds of SHA-256: CPU cost grows with N (autoscaling tests)
GET  /api/v1/whoami           who the gateway says is calling, which pod answered
When INTERNAL_API_KEY is set, /api/v1/* requires X-Internal-Api-Key (sent by the gateway).
"""

from __future__ import annotations

import hmac
import json
import os
import threading
import uuid
from typing import Any

from codelab_common import (
    HOSTNAME,
    App,
    HttpClient,
    Request,
    Response,
    error,
    log,
    redact_url,
    run,
    work_response,
)

PORT = 8001
CACHE_TTL = int(os.environ.get("SESSION_CACHE_TTL", "3600"))
SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id            TEXT PRIMARY KEY,
    subject       TEXT,
    prompt        TEXT NOT NULL,
    model         TEXT,
    response      TEXT,
    completion_id TEXT,
    status        TEXT NOT NULL,
    served_by     TEXT,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now()
)
"""


class Postgres:
    """A small thread-safe pool over psycopg2 (imported lazily: tests run without it)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._pool: Any = None
        self._lock = threading.Lock()
        self.schema_ready = False

    def _get_pool(self) -> Any:
        with self._lock:
            if self._pool is None:
                from psycopg2.pool import ThreadedConnectionPool

                self._pool = ThreadedConnectionPool(
                    0,
                    int(os.environ.get("DB_POOL_SIZE", "20")),
                    dsn=self.url,
                    connect_timeout=3,
                    application_name=f"agent-runtime/{HOSTNAME}",
                    options="-c statement_timeout=10000",
                )
            return self._pool

    def run(self, sql: str, params: tuple[Any, ...] = (), fetch: str = "") -> Any:
        """Execute in a transaction; fetch '' / 'one' / 'all'. Broken connections are
        dropped from the pool (and the statement retried once on a fresh one)."""
        import psycopg2

        for attempt in range(2):
            pool = self._get_pool()
            conn = pool.getconn()
            broken = False
            try:
                with conn, conn.cursor() as cur:
                    cur.execute(sql, params)
                    if fetch == "one":
                        return cur.fetchone()
                    if fetch == "all":
                        return cur.fetchall()
                    return None
            except (psycopg2.OperationalError, psycopg2.InterfaceError):
                broken = True
                if attempt == 1:
                    raise
            finally:
                pool.putconn(conn, close=broken or conn.closed != 0)
        return None  # pragma: no cover

    def ensure_schema(self) -> None:
        """Create the sessions table once (serialized across replicas by an advisory lock)."""
        if not self.schema_ready:
            self.run("SELECT pg_advisory_xact_lock(727001); " + SCHEMA)
            self.schema_ready = True


def create_app(
    database_url: str | None,
    redis_url: str | None,
    llm_url: str,
    llm_key: str | None,
    internal_key: str | None = None,
    model: str = "gpt-4",
) -> App:
    """The agent-runtime app; database/redis URLs may be None (then /health says so)."""
    app = App()
    db = Postgres(database_url) if database_url else None
    http = HttpClient(timeout=float(os.environ.get("LLM_TIMEOUT", "60")))
    redis_client: list[Any] = []
    redis_lock = threading.Lock()

    def get_redis() -> Any:
        with redis_lock:
            if not redis_client:
                import redis

                kwargs: dict[str, Any] = {
                    "socket_connect_timeout": 2,
                    "socket_timeout": 2,
                    "health_check_interval": 30,
                }
                password = os.environ.get("REDIS_PASSWORD")
                if password and "@" not in (redis_url or ""):
                    kwargs["password"] = password
                redis_client.append(redis.Redis.from_url(redis_url, **kwargs))
            return redis_client[0]

    def health() -> tuple[bool, dict[str, Any]]:
        checks: dict[str, Any] = {}
        if db is None:
            checks["postgres"] = "not configured (DATABASE_URL)"
        else:
            try:
                db.ensure_schema()
                db.run("SELECT 1", fetch="one")
                checks["postgres"] = "ok"
            except Exception as exc:  # noqa: BLE001 - report, never crash the probe
                checks["postgres"] = f"error: {type(exc).__name__}"
        if not redis_url:
            checks["redis"] = "not configured (REDIS_URL)"
        else:
            try:
                get_redis().ping()
                checks["redis"] = "ok"
            except Exception as exc:  # noqa: BLE001
                checks["redis"] = f"error: {type(exc).__name__}"
        return all(v == "ok" for v in checks.values()), checks

    app.health_check = health

    def authorized(req: Request) -> Response | None:
        if internal_key is None:
            return None
        given = req.headers.get("X-Internal-Api-Key") or ""
        if hmac.compare_digest(given.encode(), internal_key.encode()):
            return None
        return error(401, "missing or wrong X-Internal-Api-Key")

    def need_backends() -> Response | None:
        if db is None or not redis_url:
            return error(503, "DATABASE_URL and REDIS_URL are required for sessions")
        return None

    def complete(prompt: str, use_model: str) -> tuple[str, str]:
        headers = {"Authorization": f"Bearer {llm_key}"} if llm_key else {}
        status, body = http.json(
            "POST",
            f"{llm_url.rstrip('/')}/v1/chat/completions",
            {"model": use_model, "messages": [{"role": "user", "content": prompt}]},
            headers=headers,
        )
        if status != 200 or not isinstance(body, dict):
            detail = body.get("error") if isinstance(body, dict) else None
            raise RuntimeError(f"LLM proxy answered {status}: {str(detail)[:200]}")
        content = body["choices"][0]["message"]["content"]
        return str(body.get("id") or ""), str(content)

    @app.route("POST", "/api/v1/sessions")
    def create_session(req: Request) -> Response:
        denied = authorized(req) or need_backends()
        if denied:
            return denied
        assert db is not None
        try:
            data = req.json() or {}
        except ValueError:
            return error(400, "body must be JSON")
        prompt = data.get("prompt") if isinstance(data, dict) else None
        if not isinstance(prompt, str) or not prompt.strip():
            return error(400, "'prompt' (non-empty string) is required")
        use_model = str(data.get("model") or model)
        subject = req.headers.get("X-Codelab-Subject") or None
        session_id = uuid.uuid4().hex
        db.ensure_schema()
        db.run(
            "INSERT INTO sessions (id, subject, prompt, model, status, served_by) "
            "VALUES (%s, %s, %s, %s, 'pending', %s)",
            (session_id, subject, prompt, use_model, HOSTNAME),
        )
        try:
            completion_id, content = complete(prompt, use_model)
        except (OSError, RuntimeError, KeyError, IndexError, TypeError) as exc:
            db.run("UPDATE sessions SET status = 'failed' WHERE id = %s", (session_id,))
            log("llm_error", session_id=session_id, error=type(exc).__name__, detail=str(exc)[:200])
            return error(502, "LLM proxy failed", session_id=session_id)
        db.run(
            "UPDATE sessions SET response = %s, completion_id = %s, status = 'completed' "
            "WHERE id = %s",
            (content, completion_id, session_id),
        )
        record = {
            "session_id": session_id,
            "subject": subject,
            "prompt": prompt,
            "model": use_model,
            "response": content,
            "completion_id": completion_id,
            "status": "completed",
            "served_by": HOSTNAME,
        }
        redis_key = f"codelab:session:{session_id}"
        get_redis().set(redis_key, json.dumps(record), ex=CACHE_TTL)
        return Response(201, {**record, "redis_key": redis_key})

    @app.route("GET", "/api/v1/sessions/", prefix=True)
    def get_session(req: Request) -> Response:
        denied = authorized(req) or need_backends()
        if denied:
            return denied
        assert db is not None
        session_id = req.path.rsplit("/", 1)[-1]
        redis_key = f"codelab:session:{session_id}"
        cached = get_redis().get(redis_key)
        if cached:
            return Response(200, json.loads(cached), {"X-Cache": "hit"})
        db.ensure_schema()
        row = db.run(
            "SELECT id, subject, prompt, model, response, completion_id, status, "
            "served_by FROM sessions WHERE id = %s",
            (session_id,),
            fetch="one",
        )
        if row is None:
            return error(404, "no such session")
        keys = (
            "session_id",
            "subject",
            "prompt",
            "model",
            "response",
            "completion_id",
            "status",
            "served_by",
        )
        record = dict(zip(keys, row, strict=True))
        get_redis().set(redis_key, json.dumps(record), ex=CACHE_TTL)
        return Response(200, record, {"X-Cache": "miss"})

    @app.route("GET", "/api/v1/sessions")
    def list_sessions(req: Request) -> Response:
        denied = authorized(req) or need_backends()
        if denied:
            return denied
        assert db is not None
        try:
            limit = max(1, min(100, int(req.query.get("limit", "20"))))
        except ValueError:
            return error(400, "limit must be an integer")
        db.ensure_schema()
        rows = db.run(
            "SELECT id, status, created_at FROM sessions ORDER BY created_at DESC LIMIT %s",
            (limit,),
            fetch="all",
        )
        return Response(
            200,
            {
                "sessions": [
                    {"session_id": r[0], "status": r[1], "created_at": r[2].isoformat()}
                    for r in rows
                ]
            },
        )

    @app.route("GET", "/api/v1/work")
    def do_work(req: Request) -> Response:
        denied = authorized(req)
        if denied:
            return denied
        return work_response(req)

    @app.route("GET", "/api/v1/whoami")
    def whoami(req: Request) -> Response:
        denied = authorized(req)
        if denied:
            return denied
        return Response(
            200,
            {
                "subject": req.headers.get("X-Codelab-Subject"),
                "served_by": HOSTNAME,
                "service": app.name,
                "version": app.version,
            },
        )

    return app


def main() -> None:
    """Start from the environment; PostgreSQL/Redis may come up later (health says so)."""
    database_url = os.environ.get("DATABASE_URL") or None
    redis_url = os.environ.get("REDIS_URL") or None
    llm_url = os.environ.get("LLM_PROXY_URL", "http://llm-proxy:4000")
    llm_key = (
        os.environ.get("LLM_PROXY_API_KEY")
        or os.environ.get("LITELLM_MASTER_KEY")
        or os.environ.get("OPENAI_API_KEY")
        or None
    )
    internal = os.environ.get("INTERNAL_API_KEY") or None
    model = os.environ.get("LLM_MODEL", "gpt-4")
    log(
        "starting",
        database=redact_url(database_url) if database_url else None,
        redis=redact_url(redis_url) if redis_url else None,
        llm_proxy=redact_url(llm_url),
        llm_key="set" if llm_key else "unset",
        internal_api_key="set" if internal else "unset",
        model=model,
    )
    run(create_app(database_url, redis_url, llm_url, llm_key, internal, model), PORT)


if __name__ == "__main__":
    main()
