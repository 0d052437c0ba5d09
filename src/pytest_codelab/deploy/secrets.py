"""The Secrets the CodeLab stack reads, generated fresh for each deployment.

Why: secret values must never be committed (the seed's best practice 7), yet a deployed stack
needs them. Every value is random (``secrets.token_urlsafe``) unless the caller provides a real
one (e.g. an OpenAI key for a staging run); the TLS secret is a self-signed certificate for the
ingress host. Nothing here logs or prints a value: use :func:`redact` before showing an object.

Secret names and keys follow the seed (postgres-secret, api-keys, jwt-secret, oauth-secret,
codelab-tls) plus the two the manifests add (redis-secret, llm-proxy-secret; see
manifests/README.md).
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import ipaddress
import secrets as _random
from collections.abc import Mapping
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from pytest_codelab.deploy.values import Values
from pytest_codelab.options import BY_NAME

#: The host of a stack rendered without one: the option table's --codelab-ingress-host default.
DEFAULT_HOST = str(BY_NAME["ingress_host"].default)
TLS_SECRET = "codelab-tls"
LABELS = {"app.kubernetes.io/part-of": "codelab", "app.kubernetes.io/managed-by": "pytest-codelab"}
REDACTED = "<redacted>"

#: Secret name -> keys it must hold (what the manifests' secretKeyRefs read).
SECRET_KEYS: Mapping[str, tuple[str, ...]] = {
    "postgres-secret": ("username", "password", "connection-string"),
    "redis-secret": ("password", "url"),
    "api-keys": ("openai-api-key", "internal-api-key"),
    "jwt-secret": ("jwt-secret-key",),
    "oauth-secret": ("client-secret",),
    "llm-proxy-secret": ("master-key",),
    TLS_SECRET: ("tls.crt", "tls.key"),
}


def _token(nbytes: int = 32) -> str:
    return _random.token_urlsafe(nbytes)


def self_signed_tls(host: str, *, days: int = 365) -> tuple[bytes, bytes]:
    """(certificate PEM, private key PEM) for ``host``: an EC P-256 self-signed server cert.

    EC keeps generation instant; ingress controllers (nginx, Traefik) accept it.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, host[:64]),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "pytest-codelab (self-signed)"),
        ]
    )
    try:
        san: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        san = x509.DNSName(host)
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([san]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert_pem, key_pem


def _secret(name: str, data: Mapping[str, str | bytes], *, type_: str = "Opaque") -> dict[str, Any]:
    encoded = {
        k: base64.b64encode(v if isinstance(v, bytes) else v.encode("utf-8")).decode("ascii")
        for k, v in data.items()
    }
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "labels": dict(LABELS)},
        "type": type_,
        "data": encoded,
    }


def generate_secrets(
    values: Values | None = None,
    *,
    ingress_host: str | None = None,
    namespace: str | None = None,
    provided: Mapping[str, Mapping[str, str]] | None = None,
) -> list[dict[str, Any]]:
    """Every Secret of the stack as API objects (``data`` base64-encoded).

    ``provided`` maps secret name -> key -> a real value that replaces the generated one
    (e.g. ``{"api-keys": {"openai-api-key": ...}}``). Unknown names or keys are a ValueError,
    so a typo cannot silently leave a random value in place. Connection strings are derived
    from the (possibly provided) passwords so they always agree.
    """
    provided = provided or {}
    for name, keys in provided.items():
        if name not in SECRET_KEYS:
            raise ValueError(f"unknown secret {name!r}; known: {', '.join(SECRET_KEYS)}")
        for key in keys:
            if key not in SECRET_KEYS[name]:
                known = ", ".join(SECRET_KEYS[name])
                raise ValueError(f"unknown key {key!r} of secret {name!r}; known: {known}")
        if name == TLS_SECRET and set(keys) != set(SECRET_KEYS[TLS_SECRET]):
            raise ValueError(f"secret {TLS_SECRET!r} needs both tls.crt and tls.key")

    def pick(name: str, key: str, default: str) -> str:
        return provided.get(name, {}).get(key, default)

    user = values.postgres_username if values else "codelab"
    database = values.postgres_database if values else "codelab"
    host = ingress_host or _values_host(values) or DEFAULT_HOST
    tls_name = _values_tls_secret(values) or TLS_SECRET

    pg_user = pick("postgres-secret", "username", user)
    pg_password = pick("postgres-secret", "password", _token(24))
    redis_password = pick("redis-secret", "password", _token(24))
    # token_urlsafe only uses [A-Za-z0-9_-], all legal in the userinfo of a URL.
    pg_url = pick(
        "postgres-secret",
        "connection-string",
        f"postgresql://{pg_user}:{pg_password}@postgres:5432/{database}",
    )
    redis_url = pick("redis-secret", "url", f"redis://:{redis_password}@redis:6379/0")

    if TLS_SECRET in provided:
        cert_pem = provided[TLS_SECRET]["tls.crt"].encode()
        key_pem = provided[TLS_SECRET]["tls.key"].encode()
    else:
        cert_pem, key_pem = self_signed_tls(host)

    objects = [
        _secret(
            "postgres-secret",
            {"username": pg_user, "password": pg_password, "connection-string": pg_url},
        ),
        _secret("redis-secret", {"password": redis_password, "url": redis_url}),
        _secret(
            "api-keys",
            {
                # A fake that looks like an OpenAI key; real calls need a provided one.
                "openai-api-key": pick("api-keys", "openai-api-key", "sk-codelab-" + _token(24)),
                "internal-api-key": pick("api-keys", "internal-api-key", _token()),
            },
        ),
        _secret("jwt-secret", {"jwt-secret-key": pick("jwt-secret", "jwt-secret-key", _token(48))}),
        _secret("oauth-secret", {"client-secret": pick("oauth-secret", "client-secret", _token())}),
        # LiteLLM expects master keys to start with "sk-".
        _secret(
            "llm-proxy-secret",
            {"master-key": pick("llm-proxy-secret", "master-key", "sk-" + _token())},
        ),
        _secret(tls_name, {"tls.crt": cert_pem, "tls.key": key_pem}, type_="kubernetes.io/tls"),
    ]
    if namespace:
        for obj in objects:
            obj["metadata"]["namespace"] = namespace
    return objects


def _values_host(values: Values | None) -> str | None:
    if values is None:
        return None
    if values.ingress.hosts:
        return values.ingress.hosts[0].host
    return values.global_.domain


def _values_tls_secret(values: Values | None) -> str | None:
    if values is None or not values.ingress.tls:
        return None
    return values.ingress.tls[0].secret_name


def redact(obj: Mapping[str, Any]) -> dict[str, Any]:
    """A copy safe to log: Secret ``data``/``stringData`` values replaced by a marker."""
    out = copy.deepcopy(dict(obj))
    if out.get("kind") == "Secret":
        for key in ("data", "stringData"):
            if isinstance(out.get(key), Mapping):
                out[key] = {k: REDACTED for k in out[key]}
    return out
