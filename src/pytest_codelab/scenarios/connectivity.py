"""Connectivity checks run from inside a source pod, with the source's own configuration.

``CHECK_SCRIPT`` runs in a CodeLab container (python3): it reads the target's URL or address
from the container's environment, tries it (TCP, HTTP /health, ``SELECT 1``, ``PING``, the
LLM proxy's models) and prints one JSON line; secret values of the environment are masked
in what it prints."""

from __future__ import annotations

import json
from collections.abc import Callable

from kubernetes import client

from pytest_codelab.k8s import podtools
from pytest_codelab.k8s.objects import name_of
from pytest_codelab.k8s.pods import main_container

Exec = Callable[..., podtools.ExecResult]
#: Seconds a TCP connection may take inside the cluster network (in the script and ``nc -w``):
#: a path the NetworkPolicies forbid must be told apart from a slow one quickly.
CONNECT_TIMEOUT = 3


#: Runs in a source pod: ``python3 -c SCRIPT CHECK SETTING``; prints one JSON line
#: {"ok": bool, "detail": str}. Secret values from the environment are masked.
CHECK_SCRIPT = r"""
import json, os, re, socket, sys, urllib.parse, urllib.request
check, setting = sys.argv[1], sys.argv[2]
name, _, default = setting.partition("=")
value = os.environ.get(name) or default
SECRET = re.compile("KEY|SECRET|PASSWORD|TOKEN|URL")

def mask(text):
    text = str(text)
    for key, val in os.environ.items():
        if SECRET.search(key) and len(val) >= 6:
            parts = urllib.parse.urlsplit(val) if "://" in val else None
            if parts is not None and parts.password:
                text = text.replace(parts.password, "***")
            elif parts is None:
                text = text.replace(val, "***")
    return text

def http(url, headers=None):
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()

def run():
    if not value:
        return False, "%s is not set in the source container" % name
    if check == "tcp":
        host, _, port = value.rpartition(":")
        socket.create_connection((host, int(port)), timeout=%(timeout)d).close()
        return True, "connected to %s" % value
    if check == "http":
        status, body = http(value.rstrip("/") + "/health")
        return status == 200, "GET %s/health: HTTP %d %s" % (value, status, body[:200])
    if check == "postgres":
        import psycopg2
        conn = psycopg2.connect(value, connect_timeout=5)
        try:
            cur = conn.cursor()
            cur.execute("SELECT 1")
            return cur.fetchone()[0] == 1, "SELECT 1 via %s" % name
        finally:
            conn.close()
    if check == "redis":
        import redis
        password = os.environ.get("REDIS_PASSWORD")
        if urllib.parse.urlsplit(value).password:
            password = None
        pong = redis.Redis.from_url(value, password=password, socket_timeout=5).ping()
        return bool(pong), "PING via %s: %s" % (name, pong)
    if check == "llm":
        base = value.rstrip("/")
        status, body = http(base + "/health/liveliness")
        if status != 200:
            return False, "GET %s/health/liveliness: HTTP %d %s" % (base, status, body[:200])
        key = next((os.environ[k] for k in ("LLM_PROXY_API_KEY", "LITELLM_MASTER_KEY",
                    "OPENAI_API_KEY") if os.environ.get(k)), "")
        status, body = http(base + "/v1/models", {"Authorization": "Bearer " + key})
        model = os.environ.get("LLM_MODEL", "gpt-4")
        ids = [m.get("id") for m in json.loads(body).get("data", [])] if status == 200 else []
        return model in ids, "GET %s/v1/models with the proxy key: HTTP %d, models %s" % (
            base, status, ids or body[:200])
    return False, "unknown check " + check

try:
    ok, detail = run()
except Exception as exc:
    ok, detail = False, "%s: %s" % (type(exc).__name__, exc)
print(json.dumps({"ok": ok, "detail": mask(detail)}))
""".replace("%(timeout)d", str(CONNECT_TIMEOUT))


def run_check(pod_exec: Exec, pod: client.V1Pod, check: str, setting: str) -> tuple[bool, str]:
    """Run CHECK_SCRIPT in the pod's first container; (ok, what it saw)."""
    container = main_container(pod, "")
    result = pod_exec(
        name_of(pod), ["python3", "-c", CHECK_SCRIPT, check, setting], container=container
    )
    try:
        answer = json.loads(result.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return False, f"exit {result.exit_code}: {result.stderr.strip()[:300]}"
    return bool(answer["ok"]), str(answer["detail"])
