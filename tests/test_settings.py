"""Settings: precedence flag > env > ini > default, sources in the header, bad values."""

from __future__ import annotations

import dataclasses
import datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from pytest_codelab.settings import (
    SETTINGS_KEY,
    Settings,
    Source,
    default_kubeconfig,
    display,
    header_lines,
)


def settings_of(pytester: pytest.Pytester, *args: str) -> Settings:
    config = pytester.parseconfigure(*args)
    return config.stash[SETTINGS_KEY]


def test_defaults(pytester: pytest.Pytester) -> None:
    s = settings_of(pytester)
    assert s.cluster is None
    assert s.profile == "small"
    assert s.ingress_host == "codelab.example.com"
    assert s.ingress_class == "nginx"
    assert s.timeout_scale == 1.0
    assert s.load_workers == 0
    assert s.local_workers == 3  # the guide's three workers
    assert s.keep_namespace is False and s.allow_disruptive is False
    assert s.manifests is None and s.values is None and s.namespace is None
    assert s.expect is None  # the guide's expectation
    assert s.report_dir == pytester.path / "codelab-report"
    assert all(s.source(f.name) is Source.DEFAULT for f in dataclasses.fields(s))


@pytest.mark.parametrize(
    ("flag", "env", "ini", "expected", "source"),
    [
        ("prod", "small", "small", "prod", Source.FLAG),
        (None, "prod", "small", "prod", Source.ENV),
        (None, None, "prod", "prod", Source.INI),
        (None, None, None, "small", Source.DEFAULT),
    ],
)
def test_precedence(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    flag: str | None,
    env: str | None,
    ini: str | None,
    expected: str,
    source: Source,
) -> None:
    if ini:
        pytester.makeini(f"[pytest]\ncodelab_profile = {ini}\n")
    if env:
        monkeypatch.setenv("CODELAB_PROFILE", env)
    s = settings_of(pytester, *([f"--codelab-profile={flag}"] if flag else []))
    assert s.profile == expected
    assert s.source("profile") is source


def test_typed_values_from_every_source(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makeini("[pytest]\ncodelab_timeout_scale = 2.5\ncodelab_keep_namespace = yes\n")
    monkeypatch.setenv("CODELAB_LOAD_WORKERS", "3")
    monkeypatch.setenv("CODELAB_ALLOW_DISRUPTIVE", "0")
    s = settings_of(pytester, "--codelab-cluster=existing", "--codelab-context=staging")
    assert (s.timeout_scale, s.keep_namespace, s.load_workers) == (2.5, True, 3)
    assert s.allow_disruptive is False
    assert (s.cluster, s.context) == ("existing", "staging")
    assert s.source("allow_disruptive") is Source.ENV
    assert s.source("keep_namespace") is Source.INI


def test_bool_flag_wins_over_env(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CODELAB_KEEP_NAMESPACE", "false")
    s = settings_of(pytester, "--codelab-keep-namespace")
    assert s.keep_namespace is True and s.source("keep_namespace") is Source.FLAG


def test_paths_relative_to_their_source(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ini paths start at the ini file's folder; flag and env paths at the working dir."""
    (pytester.path / "conf").mkdir()
    (pytester.path / "conf" / "manifests").mkdir()
    (pytester.path / "conf" / "pytest.ini").write_text(
        "[pytest]\ncodelab_manifests = manifests\n", encoding="utf-8"
    )
    config = pytester.parseconfigure("-c", str(pytester.path / "conf" / "pytest.ini"))
    assert config.stash[SETTINGS_KEY].manifests == pytester.path / "conf" / "manifests"
    (pytester.path / "vals.yaml").write_text("{}\n", encoding="utf-8")
    monkeypatch.setenv("CODELAB_VALUES", "vals.yaml")
    assert settings_of(pytester).values == pytester.path / "vals.yaml"


def test_kubeconfig_default_follows_kubectl(tmp_path: Path) -> None:
    second = tmp_path / "second"
    second.write_text("{}", encoding="utf-8")
    joined = f"{tmp_path / 'missing'}:{second}"
    # the whole list, merged when read (k8s/kube.py), as kubectl does
    assert default_kubeconfig({"KUBECONFIG": joined}) == Path(joined)
    assert default_kubeconfig({"KUBECONFIG": str(tmp_path / "missing")}) == tmp_path / "missing"
    assert default_kubeconfig({}) == Path("~/.kube/config").expanduser()


def test_settings_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Settings().profile = "prod"  # type: ignore[misc]


def test_header_shows_values_and_sources(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makeini("[pytest]\ncodelab_timeout_scale = 2\n")
    monkeypatch.setenv("CODELAB_INGRESS_HOST", "codelab.test")
    pytester.makepyfile("def test_ok():\n    pass\n")
    result = pytester.runpytest("--codelab-profile=prod")
    header = [line for line in result.stdout.lines if line.startswith(("codelab:", "  "))]
    text = " ".join(header)
    assert "profile=prod (flag)" in text
    assert "ingress_host=codelab.test (env)" in text
    assert "timeout_scale=2.0 (ini)" in text
    assert "cluster=none" in text and "manifests=bundled" in text
    assert 1 <= len(header) <= 10  # compact: a few lines, not one per setting (26)


def test_header_never_shows_url_credentials() -> None:
    assert display("ingress_url", "https://user:pw@codelab.test:8443/x") == (
        "https://***@codelab.test:8443/x"
    )
    lines = header_lines(Settings(ingress_url="https://user:pw@h/"))
    assert "pw" not in " ".join(lines)
    assert all(len(line) <= 100 for line in lines)


BAD_VALUES = [
    ("cluster", "bogus", "valid: existing, local"),
    ("profile", "huge", "valid: prod, small"),
    ("timeout_scale", "abc", "valid: a number greater than 0"),
    ("timeout_scale", "0", "valid: a number greater than 0"),
    ("timeout_scale", "-1", "valid: a number greater than 0"),
    ("timeout_scale", "nan", "valid: a number greater than 0"),
    ("load_workers", "-1", "valid: an integer, 0 or more"),
    ("load_workers", "two", "valid: an integer, 0 or more"),
    ("local_workers", "0", "valid: an integer, 1 or more"),
    ("local_workers", "three", "valid: an integer, 1 or more"),
    ("keep_namespace", "maybe", "valid: 1, true, yes, on, 0, false, no, off"),
    ("namespace", "Bad_NS", "not a valid namespace name"),
    ("ingress_url", "codelab.test", "valid: http://... or https://..."),
    ("values", "missing.yaml", "values file not found"),
    ("expect", "missing.yaml", "expected-values file not found"),
    ("manifests", "no-such-dir", "manifests folder not found"),
    ("ca_file", "missing.pem", "CA file not found"),
    ("waive", "vpa,no-such-promise", "'no-such-promise' (from"),  # checked by report/plugin.py
    ("local_addons", "vpa,istio", "valid: velero, cert-manager, vpa"),
]


BAD_CASES = [
    pytest.param(via, name, raw, valid, id=f"{via}-{name}-{raw}")
    for via in ("flag", "env", "ini")
    for name, raw, valid in BAD_VALUES
    if not (via == "flag" and name == "keep_namespace")  # a bool flag takes no value
]


@pytest.mark.parametrize(("via", "name", "raw", "valid"), BAD_CASES)
def test_bad_value_is_one_usage_error_line(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    via: str,
    name: str,
    raw: str,
    valid: str,
) -> None:
    flag = "--codelab-" + name.replace("_", "-")
    args = []
    if via == "flag":
        args = [f"{flag}={raw}"]
    elif via == "env":
        monkeypatch.setenv(f"CODELAB_{name.upper()}", raw)
    else:
        pytester.makeini(f"[pytest]\ncodelab_{name} = {raw}\n")
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.stderr.lines if line.strip()]
    assert len(errors) == 1, errors
    assert errors[0].startswith(f"ERROR: {flag}: ")
    assert valid in errors[0]
    where = {"flag": "command line", "env": f"env CODELAB_{name.upper()}", "ini": "ini codelab_"}
    assert f"(from {where[via]}" in errors[0]
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


CERTIFICATE = """-----BEGIN CERTIFICATE-----
MIIBbzCCARWgAwIBAgIUHwKjvx9c8n1rD2F3mT1yS6m0nWcwCgYIKoZIzj0EAwIw
DTELMAkGA1UEAwwCY2EwHhcNMjYwMTAxMDAwMDAwWhcNMzYwMTAxMDAwMDAwWjAN
MQswCQYDVQQDDAJjYTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABAsQ6d+QmNvA
-----END CERTIFICATE-----
"""


def _pem_certificate() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def test_ca_file_with_several_certificates(pytester: pytest.Pytester) -> None:
    (pytester.path / "ca.pem").write_text(_pem_certificate() + _pem_certificate())
    s = settings_of(pytester, "--codelab-ca-file=ca.pem")
    assert s.ca_file == pytester.path / "ca.pem" and s.source("ca_file") is Source.FLAG


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("not a certificate\n", "no PEM certificate in it"),
        ("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "no PEM certificate"),
        (CERTIFICATE, "a PEM certificate in it does not parse"),
        (None, "cannot read CA file"),
    ],
    ids=["text", "key-only", "corrupt", "folder"],
)
def test_bad_ca_file_is_one_usage_error_line(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, content: str | None, problem: str
) -> None:
    """A CA file that is no CA file stops the run before any test, naming its source."""
    path = pytester.path / "ca.pem"
    if content is None:
        path.mkdir()
    else:
        path.write_text(content)
    monkeypatch.setenv("CODELAB_CA_FILE", "ca.pem")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.stderr.lines if line.strip()]
    assert len(errors) == 1, errors
    assert errors[0].startswith("ERROR: --codelab-ca-file: "), errors[0]
    assert problem in errors[0] and str(path) in errors[0], errors[0]
    assert errors[0].endswith("(from env CODELAB_CA_FILE)"), errors[0]


def test_waive_is_a_list_and_require_all_offline_are_bools(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CODELAB_REQUIRE_ALL", "yes")
    s = settings_of(pytester, "--codelab-waive", " vpa, tls,,vpa ", "--codelab-offline")
    assert s.waive == ("vpa", "tls") and display("waive", s.waive) == "vpa,tls"
    assert s.require_all is True and s.source("require_all") is Source.ENV
    assert s.offline is True and s.source("offline") is Source.FLAG
    assert settings_of(pytester).waive == () and display("waive", ()) == "none"


def test_local_addons_are_the_engines_optional_addons(pytester: pytest.Pytester) -> None:
    from pytest_codelab.engine.versions import OPTIONAL_ADDONS
    from pytest_codelab.options import LOCAL_ADDON_CHOICES

    assert LOCAL_ADDON_CHOICES == OPTIONAL_ADDONS
    s = settings_of(pytester, "--codelab-local-addons", "vpa, cert-manager")
    assert s.local_addons == ("vpa", "cert-manager")
