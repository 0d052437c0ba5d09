"""A small S3 client (signature V4, list only): what a Velero backup occupies in its bucket.

Used by the backup and restore suite against any cluster whose Velero stores its backups
in an S3-compatible object store it can reach (the local cluster's MinIO through a
port-forward). Credentials are never printed: ``Credentials`` hides them in its repr.
"""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import hmac
import urllib.parse
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass

import requests

#: The bucket Velero's storage location uses unless it names another.
BUCKET = "velero"
#: The Secret (in Velero's namespace) holding MinIO's root user, which is also Velero's S3
#: key pair: ``MINIO_ROOT_USER`` and ``MINIO_ROOT_PASSWORD``.
MINIO_SECRET = "minio-credentials"


class S3Error(Exception):
    """An S3 request failed; ``detail`` holds the start of the response body."""

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail


@dataclass(frozen=True)
class Credentials:
    """An S3 key pair, as read from Secret minio-credentials. repr never shows the values."""

    access_key: str
    secret_key: str

    def __repr__(self) -> str:
        return "Credentials(<hidden>)"

    __str__ = __repr__

    @classmethod
    def from_secret_data(cls, data: Mapping[str, str]) -> Credentials | None:
        """From Secret minio-credentials' base64 ``data``; None when a key is missing."""
        try:
            return cls(
                base64.b64decode(data["MINIO_ROOT_USER"]).decode(),
                base64.b64decode(data["MINIO_ROOT_PASSWORD"]).decode(),
            )
        except (KeyError, ValueError):
            return None


def _sign(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def sigv4_headers(
    method: str,
    url: str,
    creds: Credentials,
    *,
    region: str = "minio",
    service: str = "s3",
    now: _dt.datetime | None = None,
    payload: bytes = b"",
    headers: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Headers (Authorization, x-amz-date, x-amz-content-sha256) signing one request with
    AWS signature version 4."""
    now = now or _dt.datetime.now(_dt.UTC)
    amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    parts = urllib.parse.urlsplit(url)
    payload_hash = hashlib.sha256(payload).hexdigest()
    hdrs = {k.lower(): " ".join(str(v).split()) for k, v in (headers or {}).items()}
    hdrs.update({"host": parts.netloc, "x-amz-date": amz_date})
    if service == "s3":
        hdrs["x-amz-content-sha256"] = payload_hash
    names = sorted(hdrs)
    query = sorted(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
    canonical_query = "&".join(
        f"{urllib.parse.quote(k, safe='-_.~')}={urllib.parse.quote(v, safe='-_.~')}"
        for k, v in query
    )
    canonical = "\n".join(
        [
            method,
            urllib.parse.quote(parts.path or "/", safe="/-_.~"),
            canonical_query,
            "".join(f"{n}:{hdrs[n]}\n" for n in names),
            ";".join(names),
            payload_hash,
        ]
    )
    scope = f"{day}/{region}/{service}/aws4_request"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = _sign(
        _sign(_sign(_sign(f"AWS4{creds.secret_key}".encode(), day), region), service),
        "aws4_request",
    )
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    out = {k: v for k, v in hdrs.items() if k != "host"}
    out["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={creds.access_key}/{scope}, "
        f"SignedHeaders={';'.join(names)}, Signature={signature}"
    )
    return out


_S3 = "{http://s3.amazonaws.com/doc/2006-03-01/}"


def parse_list_objects(xml_text: str) -> tuple[list[tuple[str, int]], str | None]:
    """(key, size) pairs of one ListObjectsV2 page and the continuation token, if any."""
    root = ET.fromstring(xml_text)
    items = [
        (c.findtext(f"{_S3}Key") or "", int(c.findtext(f"{_S3}Size") or 0))
        for c in root.iter(f"{_S3}Contents")
    ]
    truncated = (root.findtext(f"{_S3}IsTruncated") or "false") == "true"
    return items, (root.findtext(f"{_S3}NextContinuationToken") if truncated else None)


def bucket_usage(
    endpoint: str,
    creds: Credentials,
    bucket: str = BUCKET,
    prefix: str = "",
    *,
    timeout: float,
) -> tuple[int, int]:
    """(objects, bytes) under ``prefix`` in ``bucket`` (ListObjectsV2, path style);
    ``timeout`` bounds each listing request (the run's scaled ``Timeouts.request``)."""
    count = size = 0
    token: str | None = None
    while True:
        query = {"list-type": "2", "prefix": prefix}
        if token:
            query["continuation-token"] = token
        url = f"{endpoint.rstrip('/')}/{bucket}?{urllib.parse.urlencode(query)}"
        r = requests.get(url, headers=sigv4_headers("GET", url, creds), timeout=timeout)
        if r.status_code != 200:
            raise S3Error(f"S3 ListObjectsV2 {bucket}/{prefix}: HTTP {r.status_code}", r.text[:500])
        items, token = parse_list_objects(r.text)
        count += len(items)
        size += sum(s for _, s in items)
        if not token:
            return count, size
