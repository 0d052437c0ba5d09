"""The S3 client that measures a backup in its bucket: signature V4, listing, credentials."""

from __future__ import annotations

import base64
import datetime as dt
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from pytest_codelab.clients import s3


def test_sigv4_matches_the_aws_documented_example() -> None:
    """The IAM ListUsers example of AWS's "Signature Version 4" documentation."""
    creds = s3.Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    headers = s3.sigv4_headers(
        "GET",
        "https://iam.amazonaws.com/?Action=ListUsers&Version=2010-05-08",
        creds,
        region="us-east-1",
        service="iam",
        now=dt.datetime(2015, 8, 30, 12, 36, tzinfo=dt.UTC),
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
    )
    assert headers["Authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, "
        "SignedHeaders=content-type;host;x-amz-date, "
        "Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
    )
    assert headers["x-amz-date"] == "20150830T123600Z"


def test_sigv4_s3_signs_the_payload_hash() -> None:
    creds = s3.Credentials("a", "b")
    h = s3.sigv4_headers("GET", "http://m:9000/velero?list-type=2&prefix=backups%2F", creds)
    assert h["x-amz-content-sha256"] == (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )
    assert "SignedHeaders=host;x-amz-content-sha256;x-amz-date" in h["Authorization"]
    assert "/minio/s3/aws4_request" in h["Authorization"]


PAGE = """<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>velero</Name>
{contents}<IsTruncated>{truncated}</IsTruncated>{token}</ListBucketResult>"""


def _page(items: list[tuple[str, int]], token: str | None = None) -> str:
    contents = "".join(f"<Contents><Key>{k}</Key><Size>{s}</Size></Contents>" for k, s in items)
    tok = f"<NextContinuationToken>{token}</NextContinuationToken>" if token else ""
    return PAGE.format(contents=contents, truncated="true" if token else "false", token=tok)


def test_parse_list_objects() -> None:
    items, token = s3.parse_list_objects(_page([("a", 1), ("b/c", 20)], "next"))
    assert items == [("a", 1), ("b/c", 20)] and token == "next"
    assert s3.parse_list_objects(_page([])) == ([], None)


@pytest.fixture
def fake_s3(serve_http: Any) -> tuple[str, list[str]]:
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            seen.append(self.path)
            if not self.headers.get("Authorization", "").startswith("AWS4-HMAC-SHA256 "):
                self.send_response(403)
                self.end_headers()
                return
            body = (
                _page([("backups/b/1", 10), ("backups/b/2", 5)], "t2")
                if "continuation-token" not in self.path
                else _page([("backups/b/3", 1)])
            )
            self.send_response(200)
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args: object) -> None:
            pass

    return serve_http(ThreadingHTTPServer(("127.0.0.1", 0), Handler)), seen


def test_bucket_usage_follows_continuation(fake_s3: tuple[str, list[str]]) -> None:
    endpoint, seen = fake_s3
    creds = s3.Credentials("a", "b")
    assert s3.bucket_usage(endpoint, creds, "velero", "backups/b/", timeout=10) == (3, 16)
    assert seen[0].startswith("/velero?list-type=2&prefix=backups%2Fb%2F")
    assert "continuation-token=t2" in seen[1]


def test_bucket_usage_error_names_the_bucket(
    fake_s3: tuple[str, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint, _ = fake_s3
    monkeypatch.setattr(s3, "sigv4_headers", lambda *a, **k: {})
    with pytest.raises(s3.S3Error, match="ListObjectsV2 velero/x: HTTP 403"):
        s3.bucket_usage(endpoint, s3.Credentials("a", "b"), "velero", "x", timeout=10)


def test_credentials_never_show_in_repr_or_str() -> None:
    creds = s3.Credentials("AKID-VISIBLE", "SECRET-VISIBLE")
    for text in (repr(creds), str(creds), f"{creds}", repr([creds])):
        assert "VISIBLE" not in text


def test_credentials_from_secret_data() -> None:
    enc = {
        k: base64.b64encode(v.encode()).decode()
        for k, v in {"MINIO_ROOT_USER": "u", "MINIO_ROOT_PASSWORD": "p"}.items()
    }
    assert s3.Credentials.from_secret_data(enc) == s3.Credentials("u", "p")
    assert s3.Credentials.from_secret_data({"MINIO_ROOT_USER": enc["MINIO_ROOT_USER"]}) is None
