"""Smoke: one client request goes all the way through CodeLab and leaves its traces.

Through the Ingress, as a client would: a token from ``/oauth/token``, then
``POST /api/v1/sessions``; then, from inside the cluster, the PostgreSQL row, the Redis
key and the LLM proxy's completion that this one request produced.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from kubernetes import client

from pytest_codelab.clients.ingress import IngressClient
from pytest_codelab.k8s.pods import ready_pods
from pytest_codelab.k8s.podtools import ExecResult
from pytest_codelab.k8s.stack import StackInfo
from pytest_codelab.k8s.waiting import Timeouts

pytestmark = [pytest.mark.e2e, pytest.mark.cluster]


def _ready_pod(core: client.CoreV1Api, ns: str, app: str) -> str:
    pods = ready_pods(core, ns, f"app={app}")
    if not pods:
        pytest.fail(f"no Ready pod with label app={app} in namespace {ns}")
    return str(pods[0].metadata.name)


@pytest.fixture(scope="module")
def session(
    ingress_target: IngressClient, api_token: str, codelab_timeouts: Timeouts
) -> dict[str, object]:
    """The response of one ``POST /api/v1/sessions`` made through the ingress."""
    result = ingress_target.with_token(api_token).request(
        "POST",
        "/api/v1/sessions",
        payload={"prompt": "smoke: say hi"},
        expect=lambda r: r.status == 201,
        timeout=codelab_timeouts.completion,
    )
    assert result.status == 201, f"POST /api/v1/sessions: {result.describe()}"
    return dict(result.json())


@pytest.mark.requirement("4.4/smoke: a client request reaches every tier")
def test_smoke_api_requires_a_token(ingress_target: IngressClient) -> None:
    """Without a bearer token the gateway answers 401 through the ingress."""
    r = ingress_target.request(
        "POST", "/api/v1/sessions", payload={"prompt": "no token"}, expect=lambda r: True
    )
    assert r.status == 401, f"expected 401 without a token, got {r.describe()}"


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
