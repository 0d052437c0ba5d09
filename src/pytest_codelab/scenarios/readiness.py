"""A readiness check copy: a Deployment whose readiness a test can switch off, pod by pod.

The contract offers no way to fail one agent-runtime pod's /health alone, so the check runs a
2-replica copy of a pod template whose readiness probe also fails while a marker file exists
in the pod; a test creates and removes the marker with ``kubectl exec``."""

from __future__ import annotations

from typing import Any

from kubernetes import client

from pytest_codelab.safety import MANAGED_BY, MANAGED_BY_LABEL

#: Name of the copy's Deployment, Service and NetworkPolicy (and its ``app`` label).
READINESS_CHECK = "codelab-readiness-check"
#: The folder of the marker file; ``<MARKER_DIR>/unready`` makes the pod not Ready.
MARKER_DIR = "/codelab-readiness"


def _probe_script(port: int) -> str:
    return (
        "import os, sys, urllib.request\n"
        f"if os.path.exists('{MARKER_DIR}/unready'): sys.exit(1)\n"
        f"urllib.request.urlopen('http://127.0.0.1:{port}/livez', timeout=2).read()\n"
    )


def readiness_check_objects(
    source: client.V1Deployment, api: client.ApiClient
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """A 2-replica copy of ``source``'s pod template (same image and env) whose readiness
    probe also fails while a marker file exists, a Service for it and a NetworkPolicy that
    lets the namespace's pods reach it."""
    template: dict[str, Any] = api.sanitize_for_serialization(source.spec.template)
    labels = {"app": READINESS_CHECK, MANAGED_BY_LABEL: MANAGED_BY}
    template["metadata"] = {"labels": labels}
    spec = template["spec"]
    spec.pop("topologySpreadConstraints", None)
    spec["terminationGracePeriodSeconds"] = 5
    spec.setdefault("volumes", []).append({"name": "readiness-marker", "emptyDir": {}})
    container = spec["containers"][0]
    spec["containers"] = [container]
    port = int(container["ports"][0]["containerPort"])
    for key in ("livenessProbe", "startupProbe", "lifecycle"):
        container.pop(key, None)
    container["readinessProbe"] = {
        "exec": {"command": ["python3", "-c", _probe_script(port)]},
        "periodSeconds": 2,
        "timeoutSeconds": 5,
        "failureThreshold": 1,
        "successThreshold": 1,
    }
    container.setdefault("volumeMounts", []).append(
        {"name": "readiness-marker", "mountPath": MARKER_DIR}
    )
    meta = {"name": READINESS_CHECK, "labels": labels}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": READINESS_CHECK}},
            "template": template,
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta,
        "spec": {
            "selector": {"app": READINESS_CHECK},
            "ports": [{"name": "http", "port": port, "targetPort": port}],
        },
    }
    policy = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": meta,
        "spec": {
            "podSelector": {"matchLabels": {"app": READINESS_CHECK}},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [{"podSelector": {}}]}],
        },
    }
    return deployment, service, policy


#: Runs in a client pod: ``python3 -c SCRIPT URL COUNT`` prints the X-Served-By of COUNT
#: requests as a JSON list.
SERVED_BY_SCRIPT = """
import json, sys, urllib.request
url, count = sys.argv[1], int(sys.argv[2])
seen = []
for _ in range(count):
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            seen.append(resp.headers.get("X-Served-By") or "?")
    except Exception as exc:
        seen.append("error: %s" % type(exc).__name__)
print(json.dumps(seen))
"""


def marker_argv(unready: bool) -> list[str]:
    """argv that makes a pod of the copy not Ready (creates the marker) or Ready again."""
    if unready:
        return ["python3", "-c", f"open('{MARKER_DIR}/unready', 'w').close()"]
    return ["python3", "-c", f"import os; os.remove('{MARKER_DIR}/unready')"]
