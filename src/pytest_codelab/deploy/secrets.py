"""The Secrets the CodeLab stack reads, generated fresh for each deployment.

Why: secret values must never be committed (the seed's best practice 7), yet a deployed stack
needs them. Every value is random (``secrets.token_urlsafe``) unless the caller provides a real
one (e.g. an OpenAI key for a staging run); the TLS secret holds a certificate for the ingress
host issued by a small CA made for the deployment (root -> intermediate -> leaf, like production;
the root in ``ca.crt`` for clients to trust). Nothing here logs or prints a value: use
:func:`redact` before showing an object.

Secret names and keys follow the seed (postgres-secret, api-keys, jwt-secret, oauth-secret,
codelab-tls) plus the two the manifests add (redis-secret, llm-proxy-secret; see
manifests/README.md).

No value leaves the cluster: :func:`secret_values` lists what the gate generated (raw and
base64, as a log or a dumped object would show them), and :func:`mask` replaces each in a
text before it is written to the report folder (diagnostics, the report, JUnit XML).
:class:`Secret` is a value whose ``repr`` is masked, for what the gate reads back from a
Secret (``pytest --showlocals`` prints locals by ``repr``).
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import functools
import ipaddress
import re
import secrets as _random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
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
#: The TLS Secret's key holding the issuer root clients trust (cert-manager's convention).
CA_KEY = "ca.crt"
LABELS = {"app.kubernetes.io/part-of": "codelab", "app.kubernetes.io/managed-by": "pytest-codelab"}
REDACTED = "<redacted>"
#: What replaces a secret value in anything written to the report folder.
MASK = "***"
#: Values shorter than this are not masked: masking "abc" everywhere would garble reports,
#: and no generated value is this short.
MIN_MASKED = 8

#: Keys of the stack's Secrets that are no secret: shown in reports as they are.
PUBLIC_KEYS = frozenset({("postgres-secret", "username"), ("*", "tls.crt"), ("*", CA_KEY)})

#: Secret name -> keys it must hold (what the manifests' secretKeyRefs read).
SECRET_KEYS: Mapping[str, tuple[str, ...]] = {
    "postgres-secret": ("username", "password", "connection-string"),
    "redis-secret": ("password", "url"),
    "api-keys": ("openai-api-key", "internal-api-key"),
    "jwt-secret": ("jwt-secret-key",),
    "oauth-secret": ("client-secret",),
    "llm-proxy-secret": ("master-key",),
    TLS_SECRET: ("tls.crt", "tls.key", CA_KEY),
}


def _token(nbytes: int = 32) -> str:
    return _random.token_urlsafe(nbytes)


@dataclass(frozen=True)
class IssuedTLS:
    """A server certificate as production gets one: ``chain`` (PEM: the leaf for the host,
    then the intermediate that signed it, what the ingress serves), its ``key``, and the
    ``root`` a client must trust (``ca.crt``). No CA key is kept: nothing else is signed."""

    chain: bytes
    key: bytes
    root: bytes


def issue_tls(host: str, *, days: int = 365) -> IssuedTLS:
    """A fresh root -> intermediate -> leaf chain for ``host`` (in the leaf's SAN), EC P-256.

    Why a CA and not a self-signed leaf: a client verifies a chain up to a root it trusts,
    with the host name; a gate that trusted the served certificate itself would pass a
    deployment that serves no intermediate or a certificate for another name. EC keeps the
    generation instant; ingress controllers (nginx, Traefik) accept it.
    """
    tag = _random.token_hex(4)
    root_key, root = _ca(f"pytest-codelab root CA {tag}", None, path_length=1, days=days)
    inter_key, inter = _ca(
        f"pytest-codelab issuing CA {tag}", (root_key, root), path_length=0, days=days
    )
    key = ec.generate_private_key(ec.SECP256R1())
    try:
        san: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        san = x509.DNSName(host)
    leaf = (
        _builder(_name(host[:64]), key, (inter_key, inter), days)
        .add_extension(x509.SubjectAlternativeName([san]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(ca=False), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(inter_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    key_pem = key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return IssuedTLS(
        chain=leaf.public_bytes(pem) + inter.public_bytes(pem),
        key=key_pem,
        root=root.public_bytes(pem),
    )


_Signer = tuple[ec.EllipticCurvePrivateKey, x509.Certificate]


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "pytest-codelab"),
        ]
    )


def _builder(
    subject: x509.Name, key: ec.EllipticCurvePrivateKey, issuer: _Signer | None, days: int
) -> x509.CertificateBuilder:
    """Subject, key, validity and key identifiers (strict verifiers require them); signed
    by ``issuer`` (key, certificate), or by ``key`` itself when there is none."""
    now = dt.datetime.now(dt.UTC)
    issuer_name = issuer[1].subject if issuer else subject
    issuer_public = (issuer[0] if issuer else key).public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_public), critical=False
        )
    )


def _ca(
    common_name: str, issuer: _Signer | None, *, path_length: int, days: int
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A CA key and certificate: the root (self-signed) when ``issuer`` is None."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        _builder(_name(common_name), key, issuer, days)
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .sign(issuer[0] if issuer else key, hashes.SHA256())
    )
    return key, cert


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not ca,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


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
        if name == TLS_SECRET and not {"tls.crt", "tls.key"} <= set(keys):
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

    tls = _tls_data(provided.get(TLS_SECRET), host)

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
        _secret(tls_name, tls, type_="kubernetes.io/tls"),
    ]
    if namespace:
        for obj in objects:
            obj["metadata"]["namespace"] = namespace
    return objects


def _tls_data(provided: Mapping[str, str] | None, host: str) -> dict[str, bytes]:
    """The TLS Secret's data: the provided certificate (its ``ca.crt`` only if given), else
    one issued for ``host`` by a CA made now."""
    if provided is not None:
        return {k: v.encode() for k, v in provided.items()}
    issued = issue_tls(host)
    return {"tls.crt": issued.chain, "tls.key": issued.key, CA_KEY: issued.root}


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


class Secret(str):
    """A secret value: a ``str`` for every use, but its ``repr`` (what ``--showlocals``,
    assertion messages and debuggers print) is masked."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"'{MASK}'"


def _public(name: str, key: str) -> bool:
    return (name, key) in PUBLIC_KEYS or ("*", key) in PUBLIC_KEYS


def secret_values(objects: Iterable[Mapping[str, Any]]) -> set[str]:
    """Every secret value of the Secrets among ``objects`` as a text could hold it: the
    base64 of ``data``, the decoded value, and each long line of a multi-line one (a PEM
    key logged line by line). Public keys (a user name, certificates) are left out."""
    found: set[str] = set()
    for obj in objects:
        if obj.get("kind") != "Secret":
            continue
        name = str((obj.get("metadata") or {}).get("name", ""))
        for key, encoded in (obj.get("data") or {}).items():
            if _public(name, str(key)):
                continue
            found.add(str(encoded))
            try:
                plain = base64.b64decode(str(encoded)).decode("utf-8")
            except ValueError:
                continue
            found.add(plain)
            found.update(line.strip() for line in plain.splitlines())
    return {v for v in found if len(v) >= MIN_MASKED}


@functools.lru_cache(maxsize=8)
def _pattern(values: frozenset[str]) -> re.Pattern[str]:
    # Longest first: a connection string is masked whole, not around its password.
    return re.compile("|".join(re.escape(v) for v in sorted(values, key=len, reverse=True)))


def mask(text: str, values: Iterable[str]) -> str:
    """``text`` with every value of ``values`` (see :func:`secret_values`) replaced by
    :data:`MASK`."""
    wanted = frozenset(v for v in values if len(v) >= MIN_MASKED)
    if not wanted or not text:
        return text
    return _pattern(wanted).sub(MASK, text)
