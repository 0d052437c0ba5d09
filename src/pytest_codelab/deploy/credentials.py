"""The deployment's credentials as the gate reads them: from its Secrets, never logged.

A suite that cannot read a Secret (RBAC, a deployment without it) skips with the reason:
the gate may lack rights on a staging namespace, which is not a failure of CodeLab.
"""

from __future__ import annotations

import base64

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from pytest_codelab.deploy.secrets import CA_KEY, Secret

#: The Secret and key holding auth-service's OAuth client secret (see manifests/).
OAUTH_SECRET, OAUTH_SECRET_KEY = "oauth-secret", "client-secret"
#: The client id the gate presents when auth-service accepts any.
GATE_CLIENT_ID = "pytest-codelab"


def secret_value(core: client.CoreV1Api, namespace: str, name: str, key: str) -> Secret:
    """One decoded Secret value (its ``repr`` masked); skips the test when it cannot be
    read."""
    try:
        data = core.read_namespaced_secret(name, namespace).data or {}
    except ApiException as exc:
        pytest.skip(f"cannot read secret/{name} in {namespace}: HTTP {exc.status}")
    if key not in data:
        pytest.skip(f"secret/{name} in {namespace} has no key {key!r}")
    return Secret(base64.b64decode(data[key]).decode())


def issuer_root(core: client.CoreV1Api, namespace: str, name: str) -> str:
    """The issuer root a TLS Secret publishes for clients (``ca.crt``, cert-manager's
    convention; the CA the gate made for a stack it deploys), "" when it has none. A Secret
    the gate may not read gives "" too: a client of the product reads no Secret either, so
    HTTPS is then verified against the system CAs and --codelab-ca-file alone."""
    try:
        data = core.read_namespaced_secret(name, namespace).data or {}
    except ApiException:
        return ""
    return base64.b64decode(data.get(CA_KEY) or "").decode()


def oauth_client_id(
    apps: client.AppsV1Api, core: client.CoreV1Api, namespace: str, default: str = GATE_CLIENT_ID
) -> str:
    """auth-service's OAUTH2_CLIENT_ID when it restricts the client, else ``default``."""
    deployment = apps.read_namespaced_deployment("auth-service", namespace)
    pod_spec = deployment.spec.template.spec if deployment.spec else None
    for container in pod_spec.containers if pod_spec else []:
        for env in container.env or []:
            if env.name != "OAUTH2_CLIENT_ID":
                continue
            ref = env.value_from.secret_key_ref if env.value_from else None
            if ref is not None:
                return secret_value(core, namespace, str(ref.name), ref.key)
            return str(env.value or default)
    return default


def oauth_client_secret(core: client.CoreV1Api, namespace: str) -> str:
    """auth-service's OAuth client secret."""
    return secret_value(core, namespace, OAUTH_SECRET, OAUTH_SECRET_KEY)
