"""Tests of the local image builder and the reference services, without a cluster.

The builder tests use file-only layers (no root, no network); the service tests run the
services on 127.0.0.1 against real HTTP fakes. Tests that need root + mmdebstrap + the
Debian mirror are marked slow.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from pytest_codelab.engine import images
from pytest_codelab.engine.images import (
    Builder,
    FilesLayer,
    ImageConfig,
    ImageError,
    Recipe,
    directory,
    file,
    symlink,
)

ROOT = Path(__file__).resolve().parents[1]
SERVICES = ROOT / "images" / "services"
sys.path.insert(0, str(SERVICES))

import agent_runtime  # noqa: E402
import auth_service  # noqa: E402
import codelab_common  # noqa: E402
import gateway  # noqa: E402

# --------------------------------------------------------------------------- builder


def _recipe(code: str = "print('v1')\n", tags: tuple[str, ...] = ("example/app:1",)) -> Recipe:
    base = FilesLayer(
        "fake-base",
        (
            file("etc/os-release", "ID=test\n"),
            directory("tmp", 0o1777),
            symlink("bin/sh", "/bin/busybox"),
        ),
        role="base layer",
    )
    code_layer = FilesLayer("app-code", (file("app/main.py", code),), role="code layer")
    return Recipe(
        "app",
        tags,
        (base, code_layer),
        ImageConfig(
            entrypoint=("python3", "/app/main.py"),
            workdir="/app",
            ports=("8000/tcp",),
            user="10001:10001",
            env=images.env(SERVICE_VERSION="1.0.0"),
        ),
    )


def _logs() -> tuple[list[str], Any]:
    lines: list[str] = []
    return lines, lines.append


def test_layer_tar_is_deterministic_regardless_of_entry_order(tmp_path: Path) -> None:
    entries = [
        file("b/x.txt", "x"),
        file("a/y.txt", "y", 0o755),
        symlink("c", "a/y.txt"),
        directory("d", 0o700, 5, 5),
    ]
    one, two = io.BytesIO(), io.BytesIO()
    images.write_tar(entries, one)
    images.write_tar(list(reversed(entries)), two)
    assert one.getvalue() == two.getvalue()
    with tarfile.open(fileobj=io.BytesIO(one.getvalue())) as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names == sorted(names)
    assert {m.mtime for m in members} == {images.EPOCH}
    assert all(m.uname == "" and m.gname == "" for m in members)
    assert next(m for m in members if m.name == "a").isdir()  # implied parent
    assert next(m for m in members if m.name == "d").uid == 5


def test_same_inputs_same_digest_in_separate_caches(tmp_path: Path) -> None:
    a = Builder(tmp_path / "c1", lambda _: None).build(_recipe())
    b = Builder(tmp_path / "c2", lambda _: None).build(_recipe())
    assert hashlib.sha256(a.read_bytes()).digest() == hashlib.sha256(b.read_bytes()).digest()


def test_docker_archive_structure(tmp_path: Path) -> None:
    archive = Builder(tmp_path, lambda _: None).build(_recipe())
    assert archive == tmp_path / "images" / "archives" / "app.tar"
    with tarfile.open(archive) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        assert len(manifest) == 1 and manifest[0]["RepoTags"] == ["example/app:1"]
        config_raw = tar.extractfile(manifest[0]["Config"]).read()  # type: ignore[union-attr]
        assert manifest[0]["Config"] == "blobs/sha256/" + hashlib.sha256(config_raw).hexdigest()
        config = json.loads(config_raw)
        layers = [tar.extractfile(p).read() for p in manifest[0]["Layers"]]  # type: ignore[union-attr]
        repositories = json.load(tar.extractfile("repositories"))  # type: ignore[arg-type]
    assert config["architecture"] == "amd64" and config["os"] == "linux"
    assert config["rootfs"]["diff_ids"] == [
        "sha256:" + hashlib.sha256(raw).hexdigest() for raw in layers
    ]
    assert [p.rsplit("/", 1)[1] for p in manifest[0]["Layers"]] == [
        hashlib.sha256(raw).hexdigest() for raw in layers
    ]
    c = config["config"]
    assert c["Entrypoint"] == ["python3", "/app/main.py"]
    assert c["WorkingDir"] == "/app" and c["User"] == "10001:10001"
    assert c["ExposedPorts"] == {"8000/tcp": {}}
    assert c["Env"][0].startswith("PATH=") and "SERVICE_VERSION=1.0.0" in c["Env"]
    assert len(config["history"]) == 2
    assert repositories == {"example/app": {"1": manifest[0]["Config"].rsplit("/", 1)[1]}}
    with tarfile.open(fileobj=io.BytesIO(layers[1])) as code:
        assert code.extractfile("app/main.py").read() == b"print('v1')\n"  # type: ignore[union-attr]


def test_rebuild_is_a_cache_hit(tmp_path: Path) -> None:
    first = Builder(tmp_path, lambda _: None).build(_recipe())
    mtime = first.stat().st_mtime_ns
    lines, log = _logs()
    started = time.monotonic()
    again = Builder(tmp_path, log).build(_recipe())
    assert time.monotonic() - started < 1.0
    assert again == first and again.stat().st_mtime_ns == mtime
    assert lines == ["[images] image app (example/app:1): cached"]


def test_code_change_rebuilds_only_the_code_layer(tmp_path: Path) -> None:
    Builder(tmp_path, lambda _: None).build(_recipe("print('v1')\n"))
    lines, log = _logs()
    Builder(tmp_path, log).build(_recipe("print('v2')\n"))
    assert "[images] base layer fake-base: cached" in lines
    assert "[images] building code layer app-code..." in lines
    assert not any("building base layer" in ln for ln in lines)
    assert len(list((tmp_path / "images" / "layers").glob("*.tar"))) == 3


def test_tag_or_config_change_reassembles_without_rebuilding_layers(tmp_path: Path) -> None:
    Builder(tmp_path, lambda _: None).build(_recipe())
    lines, log = _logs()
    Builder(tmp_path, log).build(_recipe(tags=("example/app:2",)))
    assert not any(ln.startswith("[images] building") for ln in lines)
    assert images.archive_tags(tmp_path / "images" / "archives" / "app.tar") == [
        "docker.io/example/app:2"
    ]


def test_normalize_tar_sorts_clamps_and_fixes_hardlink_order(tmp_path: Path) -> None:
    src = tmp_path / "in.tar"
    with tarfile.open(src, "w", format=tarfile.GNU_FORMAT) as tar:

        def add(name: str, data: bytes | None = None, **kw: Any) -> None:
            info = tarfile.TarInfo(name)
            info.mtime, info.uname, info.uid = 4102444800, "someone", 7  # year 2100
            for k, v in kw.items():
                setattr(info, k, v)
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)

        add("./", type=tarfile.DIRTYPE)
        add("./usr/", type=tarfile.DIRTYPE)
        add("./usr/zz", b"payload")
        add("./usr/aa", type=tarfile.LNKTYPE, linkname="./usr/zz")  # sorts before its target
        add("./dev/", type=tarfile.DIRTYPE)
        add("./dev/null", type=tarfile.CHRTYPE, devmajor=1, devminor=3)
    dst = tmp_path / "out.tar"
    images.normalize_tar(src, dst)
    with tarfile.open(dst) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert list(members) == sorted(members) == ["dev", "usr", "usr/aa", "usr/zz"]
        assert members["usr/aa"].isreg() and members["usr/zz"].islnk()
        assert members["usr/zz"].linkname == "usr/aa"
        assert tar.extractfile("usr/aa").read() == b"payload"  # type: ignore[union-attr]
        assert all(m.mtime == images.EPOCH and m.uname == "" for m in members.values())
        assert members["usr/aa"].uid == 7
    out = tmp_path / "x"
    with tarfile.open(dst) as tar:
        tar.extractall(out, filter="fully_trusted")
    assert (out / "usr" / "zz").read_bytes() == b"payload"


@pytest.mark.parametrize(
    ("ref", "full", "short"),
    [
        ("busybox", "docker.io/library/busybox:latest", "busybox:latest"),
        ("busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"),
        (
            "codelab/python-base:bookworm",
            "docker.io/codelab/python-base:bookworm",
            "codelab/python-base:bookworm",
        ),
        (
            "ghcr.io/codelab/gateway:1.0.0",
            "ghcr.io/codelab/gateway:1.0.0",
            "ghcr.io/codelab/gateway:1.0.0",
        ),
        ("localhost:5000/x", "localhost:5000/x:latest", "localhost:5000/x:latest"),
    ],
)
def test_normalize_ref(ref: str, full: str, short: str) -> None:
    assert images.normalize_ref(ref) == full
    assert images.normalize_ref(ref, short=True) == short


def test_apt_mirrors_reads_deb822_and_one_line_sources(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\n"
        "Components: main\n\nTypes: deb\nURIs: http://mirror.example/debian-security\n"
        "Suites: bookworm-security\nComponents: main\n"
    )
    (tmp_path / "sources.list.d" / "other.list").write_text(
        "deb [arch=amd64] https://packages.example/apt stable main\n"
    )
    (tmp_path / "sources.list.d" / "off.list.disabled").write_text(
        "deb http://off.example/debian bookworm main\n"
    )
    assert images.apt_mirrors("bookworm", tmp_path) == [
        "deb http://mirror.example/debian bookworm main",
        "deb http://mirror.example/debian bookworm-updates main",
        "deb http://mirror.example/debian-security bookworm-security main",
    ]
    assert images.apt_mirrors("bookworm", tmp_path / "none") == list(images.DEFAULT_MIRRORS)


def test_recipe_table_names_and_tags() -> None:
    table = images.recipes()
    assert set(images.DEFAULT_SET) <= set(table)
    assert table["busybox"].tags == ("busybox:1.36", "busybox:latest")
    assert table["postgres"].tags == ("postgres:15-alpine",)
    assert table["redis"].tags == ("redis:7-alpine",)
    for svc in ("gateway", "agent-runtime", "auth-service"):
        for ver in ("1.0.0", "1.1.0"):
            r = table[f"{svc}-{ver}"]
            assert r.tags == (f"ghcr.io/codelab/{svc}:{ver}",)
            assert f"SERVICE_VERSION={ver}" in r.config.to_json()["Env"]  # type: ignore[operator]
    one, two = table["gateway-1.0.0"], table["gateway-1.1.0"]
    assert [la.key() for la in one.layers] == [la.key() for la in two.layers]
    assert one.key() != two.key()
    assert table["python"].layers[0].key() == one.layers[0].key()
    assert images.recipes(litellm_image="example/litellm:x")["litellm"].tags == (
        "example/litellm:x",
    )


def test_litellm_image_name_matches_bundled_manifests() -> None:
    text = (ROOT / "manifests" / "20-llm-proxy.yaml").read_text()
    assert f"image: {images.LITELLM_IMAGE}" in text


def test_static_recipe(tmp_path: Path) -> None:
    binary = tmp_path / "tool"
    binary.write_bytes(b"\x7fELF fake")
    recipe = images.static("registry.k8s.io/pause:3.10", binary, ["/tool", "-v"])
    assert recipe.name == "registry.k8s.io_pause_3.10"
    assert recipe.tags == ("registry.k8s.io/pause:3.10",)
    assert recipe.config.entrypoint == ("/tool", "-v")
    files = recipe.layers[-1]
    assert isinstance(files, FilesLayer) and files.entries[0].path == "tool"
    base = recipe.layers[1]
    assert isinstance(base, FilesLayer)
    paths = {e.path: e for e in base.entries}
    assert paths["tmp"].mode == 0o1777 and "etc/passwd" in paths and "etc/group" in paths
    assert b"nonroot:x:65532" in paths["etc/passwd"].data


def _fake_ctr(tmp_path: Path, fail: bool = False) -> Path:
    script = tmp_path / "ctr"
    log = tmp_path / "ctr.log"
    script.write_text(
        "#!/bin/sh\n"
        f'echo "$@" >> {log}\n'
        + ("echo 'ctr: failed to import: boom' >&2; exit 3\n" if fail else "echo unpacking done\n")
    )
    script.chmod(0o755)
    return script


def test_load_image_imports_and_retags(tmp_path: Path) -> None:
    archive = Builder(tmp_path, lambda _: None).build(_recipe(tags=("busybox:1.36",)))
    ctr = _fake_ctr(tmp_path)
    names = images.load_image(
        archive, containerd_address="/run/c.sock", name="example/bb:x", ctr=str(ctr)
    )
    assert names == ["docker.io/library/busybox:1.36", "docker.io/example/bb:x"]
    calls = (tmp_path / "ctr.log").read_text().splitlines()
    assert calls[0] == f"--address /run/c.sock --namespace k8s.io images import {archive}"
    assert calls[1] == (
        "--address /run/c.sock --namespace k8s.io images tag --force "
        "docker.io/library/busybox:1.36 docker.io/example/bb:x"
    )


def test_load_image_error_names_the_command_and_output(tmp_path: Path) -> None:
    archive = Builder(tmp_path, lambda _: None).build(_recipe())
    with pytest.raises(ImageError) as err:
        images.load_image(
            archive, containerd_address="/run/c.sock", ctr=str(_fake_ctr(tmp_path, fail=True))
        )
    assert "images import" in str(err.value) and "exit 3" in str(err.value)
    assert "boom" in err.value.detail


def test_unknown_recipe_lists_known_ones() -> None:
    with pytest.raises(ImageError, match="known: busybox"):
        images.build("nope")


@pytest.mark.slow
@pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("apt-get"), reason="needs root and Debian's apt"
)
def test_busybox_image_from_debian(tmp_path: Path) -> None:
    archive = images.build("busybox", cache=tmp_path)
    with tarfile.open(archive) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        layer = tar.extractfile(manifest[0]["Layers"][0]).read()  # type: ignore[union-attr]
    with tarfile.open(fileobj=io.BytesIO(layer)) as tar:
        names = {m.name: m for m in tar.getmembers()}
    assert names["bin/busybox"].isreg() and names["bin/sh"].issym()
    assert manifest[0]["RepoTags"] == ["busybox:1.36", "busybox:latest"]


@pytest.mark.slow
@pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("mmdebstrap"), reason="needs root and mmdebstrap"
)
def test_python_base_layer_is_cached_across_services() -> None:
    lines, log = _logs()
    images.build_all(["gateway-1.0.0", "gateway-1.1.0"], log=log)
    lines.clear()
    images.build_all(["gateway-1.0.0"], force=False, log=log)
    assert lines == ["[images] image gateway-1.0.0 (ghcr.io/codelab/gateway:1.0.0): cached"]


# --------------------------------------------------------------------------- services


def test_jwt_roundtrip_and_rejections() -> None:
    now = 1_700_000_000
    token = codelab_common.jwt_encode({"sub": "c1", "aud": "codelab", "exp": now + 60}, "k")
    assert codelab_common.jwt_decode(token, "k", audience="codelab", now=now)["sub"] == "c1"
    header, payload, sig = token.split(".")
    assert json.loads(codelab_common.b64url_decode(header)) == {"alg": "HS256", "typ": "JWT"}
    with pytest.raises(codelab_common.TokenError, match="signature"):
        codelab_common.jwt_decode(token, "other", now=now)
    with pytest.raises(codelab_common.TokenError, match="expired"):
        codelab_common.jwt_decode(token, "k", now=now + 1000)
    with pytest.raises(codelab_common.TokenError, match="audience"):
        codelab_common.jwt_decode(token, "k", audience="x", now=now)
    forged = codelab_common.b64url(b'{"sub":"admin","aud":"codelab"}')
    with pytest.raises(codelab_common.TokenError, match="signature"):
        codelab_common.jwt_decode(f"{header}.{forged}.{sig}", "k", now=now)
    none_header = codelab_common.b64url(b'{"alg":"none"}')
    with pytest.raises(codelab_common.TokenError, match="algorithm"):
        codelab_common.jwt_decode(f"{none_header}.{payload}.", "k", now=now)
    with pytest.raises(codelab_common.TokenError):
        codelab_common.jwt_decode("garbage", "k")


def test_redact_url() -> None:
    assert (
        codelab_common.redact_url("postgresql://u:s3cret@db:5432/x")
        == "postgresql://u:***@db:5432/x"
    )
    assert codelab_common.redact_url("redis://:pw@redis:6379/0") == "redis://:***@redis:6379/0"
    assert codelab_common.redact_url("http://llm-proxy:4000") == "http://llm-proxy:4000"


def test_work_is_deterministic_and_grows() -> None:
    assert agent_runtime.work(0) == b"codelab".hex()
    assert agent_runtime.work(2) == hashlib.sha256(hashlib.sha256(b"codelab").digest()).hexdigest()


@pytest.fixture
def serve(serve_http: Any) -> Any:
    """Start an App on a free loopback port; a function returning its base URL."""
    return lambda app: serve_http(app.make_server("127.0.0.1", 0))


def _call(
    method: str, url: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, Any, dict[str, str]]:
    data = None
    hdrs = dict(headers or {})
    if isinstance(body, dict):
        data = json.dumps(body).encode()
        hdrs.setdefault("Content-Type", "application/json")
    elif isinstance(body, str):
        data = body.encode()
        hdrs.setdefault("Content-Type", "application/x-www-form-urlencoded")
    req = urllib.request.Request(url, data=data, headers=hdrs, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            raw, status, h = resp.read(), resp.status, dict(resp.headers)
    except urllib.error.HTTPError as exc:
        raw, status, h = exc.read(), exc.code, dict(exc.headers)
    return status, json.loads(raw) if raw else None, h


class _FakeAgent(BaseHTTPRequestHandler):
    """A real HTTP server standing in for agent-runtime: echoes what it received."""

    seen: list[dict[str, Any]] = []

    def _any(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        record = {
            "method": self.command,
            "path": self.path,
            "body": body,
            "headers": {k.lower(): v for k, v in self.headers.items()},
        }
        _FakeAgent.seen.append(record)
        data = json.dumps(record).encode()
        self.send_response(201 if self.command == "POST" else 200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_DELETE = _any

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def fake_agent(serve_http: Any) -> str:
    _FakeAgent.seen.clear()
    return str(serve_http(ThreadingHTTPServer(("127.0.0.1", 0), _FakeAgent)))


def test_auth_service_issues_and_verifies_tokens(serve: Any) -> None:
    url = serve(auth_service.create_app("jwt-key", "client-secret"))
    status, body, _ = _call(
        "POST",
        f"{url}/oauth/token",
        "grant_type=client_credentials&client_id=ci&client_secret=nope",
    )
    assert status == 401 and body["error"] == "invalid_client"
    status, body, _ = _call(
        "POST",
        f"{url}/oauth/token",
        {"grant_type": "password", "client_id": "ci", "client_secret": "client-secret"},
    )
    assert status == 400 and body["error"] == "unsupported_grant_type"
    status, body, _ = _call(
        "POST",
        f"{url}/oauth/token",
        "grant_type=client_credentials&client_id=ci&client_secret=client-secret",
    )
    assert status == 200 and body["token_type"] == "Bearer" and body["expires_in"] == 3600
    token = body["access_token"]
    claims = codelab_common.jwt_decode(token, "jwt-key", audience="codelab")
    assert claims["sub"] == "ci" and claims["exp"] - claims["iat"] == 3600
    status, body, _ = _call(
        "GET", f"{url}/oauth/verify", headers={"Authorization": f"Bearer {token}"}
    )
    assert status == 200 and body["active"] is True and body["sub"] == "ci"
    status, body, h = _call(
        "GET", f"{url}/oauth/verify", headers={"Authorization": "Bearer " + token[:-2] + "xx"}
    )
    assert status == 401 and body["active"] is False and "WWW-Authenticate" in h
    status, body, _ = _call("POST", f"{url}/oauth/introspect", f"token={token}")
    assert status == 200 and body["active"] is True
    status, body, _ = _call("GET", f"{url}/version")
    assert status == 200 and {"service", "version", "hostname"} <= set(body)
    import base64

    basic = base64.b64encode(b"ci:client-secret").decode()
    status, body, _ = _call(
        "POST",
        f"{url}/oauth/token",
        "grant_type=client_credentials",
        headers={"Authorization": f"Basic {basic}"},
    )
    assert status == 200


def test_gateway_requires_valid_token_and_forwards(serve: Any, fake_agent: str) -> None:
    auth_url = serve(auth_service.create_app("jwt-key", "client-secret"))
    gw = serve(gateway.create_app(fake_agent, auth_url, internal_key="internal"))
    status, body, h = _call("GET", f"{gw}/api/v1/whoami")
    assert status == 401 and h.get("WWW-Authenticate", "").startswith("Bearer")
    status, _, _ = _call("GET", f"{gw}/api/v1/whoami", headers={"Authorization": "Bearer x.y.z"})
    assert status == 401
    forged = codelab_common.jwt_encode({"sub": "evil", "aud": "codelab"}, "wrong-key")
    status, _, _ = _call(
        "GET", f"{gw}/api/v1/whoami", headers={"Authorization": f"Bearer {forged}"}
    )
    assert status == 401
    assert _FakeAgent.seen == []  # nothing reached the upstream without a valid token
    _, tok, _ = _call(
        "POST",
        f"{auth_url}/oauth/token",
        "grant_type=client_credentials&client_id=ci&client_secret=client-secret",
    )
    auth = {"Authorization": f"Bearer {tok['access_token']}", "X-Request-Id": "req-1"}
    status, body, h = _call("POST", f"{gw}/api/v1/sessions?x=1", {"prompt": "hi"}, auth)
    assert status == 201 and h["X-Request-Id"] == "req-1"
    assert body["method"] == "POST" and body["path"] == "/api/v1/sessions?x=1"
    assert json.loads(body["body"]) == {"prompt": "hi"}
    assert body["headers"]["x-codelab-subject"] == "ci"
    assert body["headers"]["x-internal-api-key"] == "internal"
    assert body["headers"]["x-request-id"] == "req-1"
    assert "authorization" not in body["headers"]
    status, _, _ = _call("GET", f"{gw}/health")
    assert status == 200


def test_gateway_reads_large_bodies_and_refuses_them_after_auth(
    serve: Any, fake_agent: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A body over the buffer limit is read to the end (the connection survives): 401
    without a token, 413 with one, and nothing reaches agent-runtime."""
    monkeypatch.setattr(codelab_common, "MAX_BUFFERED_BODY", 1024)
    auth_url = serve(auth_service.create_app("jwt-key", "client-secret"))
    gw = serve(gateway.create_app(fake_agent, auth_url))
    big = "x" * 4096
    status, _, _ = _call("POST", f"{gw}/api/v1/sessions", big)
    assert status == 401
    _, tok, _ = _call(
        "POST",
        f"{auth_url}/oauth/token",
        "grant_type=client_credentials&client_id=ci&client_secret=client-secret",
    )
    auth = {"Authorization": f"Bearer {tok['access_token']}"}
    status, body, _ = _call("POST", f"{gw}/api/v1/sessions", big, auth)
    assert status == 413 and body["size"] == 4096 and body["limit"] == 1024
    status, _, _ = _call("POST", f"{auth_url}/oauth/token", big)
    assert status == 413
    assert _FakeAgent.seen == []
    status, _, _ = _call("POST", f"{gw}/api/v1/sessions", {"prompt": "small"}, auth)
    assert status == 201


def test_gateway_without_auth_service_is_503_and_without_agent_502(serve: Any) -> None:
    gw = serve(gateway.create_app("http://127.0.0.1:9", "http://127.0.0.1:9"))
    status, body, _ = _call("GET", f"{gw}/api/v1/whoami", headers={"Authorization": "Bearer t"})
    assert status == 503 and "auth-service" in body["error"]
    auth_url = serve(auth_service.create_app("k", "s"))
    gw2 = serve(gateway.create_app("http://127.0.0.1:9", auth_url))
    token = codelab_common.jwt_encode({"sub": "a", "aud": "codelab", "exp": time.time() + 60}, "k")
    status, body, _ = _call(
        "GET", f"{gw2}/api/v1/whoami", headers={"Authorization": f"Bearer {token}"}
    )
    assert status == 502


def test_gateway_caches_positive_verifications(serve: Any, fake_agent: str) -> None:
    calls: list[str] = []
    auth = auth_service.create_app("k", "s")
    original = auth.dispatch

    def counting(req: codelab_common.Request) -> codelab_common.Response:
        calls.append(req.path)
        return original(req)

    auth.dispatch = counting  # type: ignore[method-assign]
    gw = serve(gateway.create_app(fake_agent, serve(auth), cache_seconds=30))
    token = codelab_common.jwt_encode({"sub": "a", "aud": "codelab", "exp": time.time() + 60}, "k")
    for _ in range(3):
        assert (
            _call("GET", f"{gw}/api/v1/x", headers={"Authorization": f"Bearer {token}"})[0] == 200
        )
    assert calls == ["/oauth/verify"]


def test_agent_runtime_without_backends(serve: Any) -> None:
    url = serve(
        agent_runtime.create_app(None, None, "http://127.0.0.1:9", None, internal_key="internal")
    )
    status, body, _ = _call("GET", f"{url}/health")
    assert status == 503 and "postgres" in body["checks"] and "redis" in body["checks"]
    assert _call("GET", f"{url}/livez")[0] == 200
    assert _call("GET", f"{url}/api/v1/work?n=10")[0] == 401
    status, body, _ = _call(
        "GET", f"{url}/api/v1/work?n=1000", headers={"X-Internal-Api-Key": "internal"}
    )
    assert status == 200 and body["digest"] == agent_runtime.work(1000)
    status, _, _ = _call(
        "GET", f"{url}/api/v1/work?n=-1", headers={"X-Internal-Api-Key": "internal"}
    )
    assert status == 400
    status, _, _ = _call(
        "POST",
        f"{url}/api/v1/sessions",
        {"prompt": "x"},
        headers={"X-Internal-Api-Key": "internal"},
    )
    assert status == 503


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _raw_get(sock: Any, path: str) -> bytes:
    """Send one GET on an open socket and read until the server closes it."""
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_drain_closes_idle_keepalives_first_and_the_port_after_the_delay(serve: Any) -> None:
    """A proxy retrying a request that raced a closing keep-alive must find the port open."""
    import http.client
    import socket

    from pytest_codelab.waiting import wait_until

    app = codelab_common.App("t", "1", shutdown_delay=1.0)
    port = int(serve(app).rsplit(":", 1)[1])
    reused = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    reused.request("GET", "/version")
    first = reused.getresponse()
    assert first.status == 200 and first.getheader("Connection") != "close"
    first.read()
    fresh = socket.create_connection(("127.0.0.1", port), timeout=5)
    wait_until(
        lambda: (len(app.server.conns) == 2, f"{len(app.server.conns)} connections open"),
        timeout=5,
        what="the server to register both connections",
        interval=0.02,
    )

    app.shutdown()

    assert reused.sock is not None and reused.sock.recv(1) == b""  # closed by the server
    answer = _raw_get(fresh, "/health")  # accepted before the drain: answered, then closed
    assert answer.startswith(b"HTTP/1.1 503") and b"Connection: close" in answer
    fresh.close()
    status, body, headers = _call("GET", f"http://127.0.0.1:{port}/version")
    assert status == 200 and headers.get("Connection") == "close"

    def refused() -> tuple[bool, str]:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except ConnectionRefusedError:
            return True, "connection refused"
        return False, "port still accepting"

    wait_until(refused, timeout=10, what="the port to close after the delay", interval=0.1)
    reused.close()


def test_sigterm_finishes_in_flight_request_and_exits_0(tmp_path: Path) -> None:
    port = _free_port()
    env = {
        **os.environ,
        "PORT": str(port),
        "SERVICE_NAME": "agent-runtime",
        "SERVICE_VERSION": "9.9.9",
        "OPENAI_API_KEY": "sk-must-not-appear",
    }
    proc = subprocess.Popen(
        [sys.executable, "-u", str(SERVICES / "agent_runtime.py")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 15
        while True:
            try:
                status, body, _ = _call("GET", f"{base}/version")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        assert status == 200 and body["version"] == "9.9.9"
        assert body["service"] == "agent-runtime"
        result: dict[str, Any] = {}

        def slow() -> None:
            result["r"] = _call("GET", f"{base}/api/v1/work?n=1500000")

        t = threading.Thread(target=slow)
        t.start()
        time.sleep(0.3)  # the request is in flight
        proc.send_signal(signal.SIGTERM)
        t.join(30)
        assert result["r"][0] == 200 and result["r"][1]["n"] == 1500000
        assert proc.wait(30) == 0
        with pytest.raises(OSError):
            _call("GET", f"{base}/health")
    finally:
        if proc.poll() is None:
            proc.kill()
    out = proc.stdout.read() if proc.stdout else ""
    lines = [json.loads(ln) for ln in out.splitlines() if ln.startswith("{")]
    events = [ln["event"] for ln in lines]
    assert events[0] == "starting" and "draining" in events and events[-1] == "stopped"
    requests = [ln for ln in lines if ln["event"] == "request"]
    assert {r["path"] for r in requests} == {"/version", "/api/v1/work"}
    assert "sk-must-not-appear" not in out


def test_auth_service_exits_1_without_secrets() -> None:
    env = {
        k: v for k, v in os.environ.items() if k not in ("JWT_SECRET_KEY", "OAUTH2_CLIENT_SECRET")
    }
    proc = subprocess.run(
        [sys.executable, str(SERVICES / "auth_service.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 1
    assert "JWT_SECRET_KEY" in proc.stdout and "OAUTH2_CLIENT_SECRET" in proc.stdout
