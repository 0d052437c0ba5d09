"""Smoke: one client request goes all the way through CodeLab and leaves its traces.

Through the Ingress, as a client would: a token from ``/oauth/token``, then
``POST /api/v1/sessions``; then, from inside the cluster, the PostgreSQL row, the Redis
key and the LLM proxy's completion that this one request produced.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest
from kubernetes import client

from pytest_codelab.credentials import oauth_client_secret
from pytest_codelab.ingress import IngressClient
from pytest_codelab.podtools import ExecResult
from pytest_codelab.settings import Settings
from pytest_codelab.stack import StackInfo
from pytest_codelab.waiting import Waiter

pytestmark = [pytest.mark.e2e, pytest.mark.cluster]


def _ready_pod(core: client.CoreV1Api, ns: str, app: str) -> str:
    for pod in core.list_namespaced_pod(ns, label_selector=f"app={app}").items:
        conds = {c.type: c.status for c in pod.status.conditions or []}
        if conds.get("Ready") == "True" and pod.metadata.deletion_timestamp is None:
            return str(pod.metadata.name)
    pytest.fail(f"no Ready pod with label app={app} in namespace {ns}")


@pytest.fixture(scope="module")
def ingress(codelab_stack: StackInfo, codelab_settings: Settings) -> Iterator[IngressClient]:
    """A client of the stack's ingress, addressed by the configured host."""
    if not codelab_stack.ingress_url:
        pytest.skip("no ingress address: pass --codelab-ingress-url (the cluster gave none)")
    c = IngressClient(
        codelab_stack.ingress_url, codelab_stack.ingress_host or codelab_settings.ingress_host
    )
    yield c
    c.close()


@pytest.fixture(scope="module")
def token(
    ingress: IngressClient,
    codelab_stack: StackInfo,
    core_v1: client.CoreV1Api,
    waiter_module: Waiter,
) -> str:
    """An access token from auth-service through the ingress (client credentials)."""
    secret = oauth_client_secret(core_v1, codelab_stack.namespace)
    last: dict[str, object] = {}

    def probe() -> tuple[bool, str]:
        r = ingress.post(
            "/oauth/token",
            scheme="https",
            data={
                "grant_type": "client_credentials",
                "client_id": "codelab-smoke",
                "client_secret": secret,
            },
        )
        last["r"] = r
        return r.status_code == 200, f"HTTP {r.status_code} {r.text[:120]!r}"

    waiter_module.until(probe, "POST /oauth/token through the ingress to answer 200", kind="http")
    body = last["r"].json()  # type: ignore[attr-defined]
    assert body.get("token_type") == "Bearer", body
    return str(body["access_token"])


@pytest.fixture(scope="module")
def waiter_module(codelab_timeouts: object) -> Waiter:
    """A module-scoped waiter (the ``waiter`` fixture is per test)."""
    return Waiter(codelab_timeouts)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def session(ingress: IngressClient, token: str) -> dict[str, object]:
    """The response of one ``POST /api/v1/sessions`` made through the ingress."""
    r = ingress.post(
        "/api/v1/sessions",
        scheme="https",
        json={"prompt": "smoke: say hi"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )
    assert r.status_code == 201, f"POST /api/v1/sessions: HTTP {r.status_code} {r.text[:300]}"
    return dict(r.json())


@pytest.mark.requirement("4.4/smoke: a client request reaches every tier")
def test_smoke_api_requires_a_token(ingress: IngressClient, codelab_stack: StackInfo) -> None:
    """Without a bearer token the gateway answers 401 through the ingress."""
    r = ingress.post("/api/v1/sessions", scheme="https", json={"prompt": "no token"})
    assert r.status_code == 401, f"expected 401 without a token, got {r.status_code}"


@pytest.mark.requirement("4.4/smoke: a client request reaches every tier")
def test_smoke_session_completed_with_llm(session: dict[str, object]) -> None:
    """The request came back completed, with a completion id from the LLM proxy."""
    assert session.get("status") == "completed", session
    assert session.get("completion_id"), f"no completion id from the LLM proxy: {session}"
    assert session.get("response"), f"empty completion: {session}"


@pytest.mark.requirement("4.4/smoke: a client request reaches every tier")
def test_smoke_row_written_in_postgres(
    session: dict[str, object],
    codelab_stack: StackInfo,
    core_v1: client.CoreV1Api,
    pod_exec: Callable[..., ExecResult],
) -> None:
    """The session's row is in PostgreSQL, marked completed."""
    pod = _ready_pod(core_v1, codelab_stack.namespace, "postgres")
    sql = f"SELECT status FROM sessions WHERE id = '{session['session_id']}'"
    res = pod_exec(
        pod,
        ["sh", "-c", f'psql -U "$POSTGRES_USER" -d "$POSTGRES_DB" -tAc "{sql}"'],
        container="postgres",
    )
    assert res.exit_code == 0, res.stderr
    assert res.stdout.strip() == "completed", f"row for {session['session_id']}: {res.stdout!r}"


@pytest.mark.requirement("4.4/smoke: a client request reaches every tier")
def test_smoke_key_set_in_redis(
    session: dict[str, object],
    codelab_stack: StackInfo,
    core_v1: client.CoreV1Api,
    pod_exec: Callable[..., ExecResult],
) -> None:
    """The session is cached in Redis under the key the service reported."""
    pod = _ready_pod(core_v1, codelab_stack.namespace, "redis")
    res = pod_exec(
        pod, ["redis-cli", "--no-auth-warning", "GET", str(session["redis_key"])], container="redis"
    )
    assert res.exit_code == 0, res.stderr
    cached = json.loads(res.stdout)
    assert cached.get("completion_id") == session["completion_id"], cached
