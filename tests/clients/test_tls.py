"""TLS verified like a client would, against a loopback HTTPS server serving a
root -> intermediate -> leaf chain: the trust store (system CAs + extra CA certificates),
partial chains, the failures (unknown issuer, another host name) and where no code may turn
verification off."""

from __future__ import annotations

import base64
import re
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from pytest_codelab.clients import tls
from pytest_codelab.clients.ingress import IngressClient
from pytest_codelab.clients.tls import Trust, VerificationFailed
from pytest_codelab.deploy.secrets import CA_KEY, TLS_SECRET, generate_secrets

if TYPE_CHECKING:
    from clients.conftest import Chain, State, TLSServer

HOST = "codelab.test"
REPO = Path(__file__).resolve().parents[2]


def _ca_file(tmp_path: Path, *pems: str) -> Path:
    """A --codelab-ca-file holding ``pems``."""
    path = tmp_path / "ca.pem"
    path.write_text("".join(pems), encoding="utf-8")
    return path


def _client(server: TLSServer, trust: Trust, host: str = HOST) -> IngressClient:
    return IngressClient(server.url, host=host, trust=trust, timeout=5)


def _port(server: TLSServer) -> str:
    return server.url.rsplit(":", 1)[1]


# ----------------------------------------------------------------- verified connections


def test_root_in_the_ca_file_verifies_the_served_chain(
    tls_server: TLSServer, tmp_path: Path, state: State
) -> None:
    trust = Trust.from_file(_ca_file(tmp_path, tls_server.chain.root))
    result = _client(tls_server, trust).request("GET", "/version")
    assert result.ok, result.describe()
    assert state.sni[-1] == HOST and state.seen_hosts[-1] == HOST


def test_an_intermediate_alone_is_enough(tls_server: TLSServer, tmp_path: Path) -> None:
    """A trust store holding the issuing CA but not its root verifies the chain (partial
    chain), as Python 3.13 does by default."""
    trust = Trust.from_file(_ca_file(tmp_path, tls_server.chain.intermediate))
    result = _client(tls_server, trust).request("GET", "/version")
    assert result.ok, result.describe()


def test_without_the_partial_chain_flag_an_intermediate_is_not_enough(
    tls_server: TLSServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The flag is what makes the previous test pass (Python 3.11's default context refuses)."""
    monkeypatch.setattr(tls, "PARTIAL_CHAIN", 0)
    tls._context.cache_clear()
    try:
        trust = Trust.from_file(_ca_file(tmp_path, tls_server.chain.intermediate))
        result = _client(tls_server, trust).request("GET", "/version")
    finally:
        tls._context.cache_clear()
    assert not result.ok and "unable to get issuer certificate" in str(result.error), (
        result.describe()
    )


def test_several_certificates_in_one_ca_file(
    tls_server: TLSServer, tmp_path: Path, tls_chain: Callable[[str], Chain]
) -> None:
    other = tls_chain("unrelated.test").root
    trust = Trust.from_file(_ca_file(tmp_path, other, tls_server.chain.root))
    assert _client(tls_server, trust).request("GET", "/version").ok


def test_served_certificate_is_the_verified_leaf(tls_server: TLSServer) -> None:
    trust = Trust().adding(tls_server.chain.root, "test root")
    served = _client(tls_server, trust).served_certificate()
    assert served == ssl.PEM_cert_to_DER_cert(tls_server.chain.leaf)


# ----------------------------------------------------------------- rejected certificates


def test_an_unrelated_ca_fails_naming_host_and_reason(
    tls_server: TLSServer, tmp_path: Path, tls_chain: Callable[[str], Chain]
) -> None:
    ca_file = _ca_file(tmp_path, tls_chain("unrelated.test").root)
    result = _client(tls_server, Trust.from_file(ca_file)).request("GET", "/version")
    assert not result.ok and result.status is None
    assert result.error == (
        f"VerificationFailed: TLS verification of {HOST} at 127.0.0.1:{_port(tls_server)} "
        f"failed: unable to get local issuer certificate; trusted: system CAs + {ca_file}"
    )
    assert HOST in result.describe()


def test_the_system_cas_alone_do_not_trust_a_private_root(tls_server: TLSServer) -> None:
    result = _client(tls_server, Trust()).request("GET", "/version")
    assert not result.ok
    assert result.error and "unable to get local issuer certificate" in result.error
    assert result.error.endswith("trusted: system CAs")


def test_another_host_name_fails_verification(tls_server: TLSServer) -> None:
    trust = Trust().adding(tls_server.chain.root, "test root")
    result = _client(tls_server, trust, host="other.test").request("GET", "/version")
    assert not result.ok
    assert result.error and "TLS verification of other.test" in result.error
    assert "Hostname mismatch" in result.error, result.error


def test_served_certificate_is_never_read_unverified(tls_server: TLSServer) -> None:
    with pytest.raises(VerificationFailed, match=f"TLS verification of {HOST} at 127.0.0.1"):
        _client(tls_server, Trust()).served_certificate()


def test_uploads_verify_too(tls_server: TLSServer) -> None:
    result = _client(tls_server, Trust()).upload("/upload", 1024)
    assert not result.ok and result.error and "VerificationFailed" in result.error


# ----------------------------------------------------------------- the trust store


def test_trust_adds_certificates_and_says_where_from(tls_server: TLSServer) -> None:
    chain = tls_server.chain
    trust = Trust().adding(chain.root, "secret/codelab-tls ca.crt").adding("", "empty")
    trust = trust.adding(chain.intermediate, "ca.pem")
    assert trust.describe() == "system CAs + secret/codelab-tls ca.crt + ca.pem"
    assert trust.pem.count("BEGIN CERTIFICATE") == 2
    assert trust.context().verify_mode is ssl.CERT_REQUIRED and trust.context().check_hostname
    assert trust.context().verify_flags & tls.PARTIAL_CHAIN


@pytest.mark.parametrize(
    ("pem", "problem"),
    [
        ("not a certificate\n", "no PEM certificate in it"),
        ("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "does not parse"),
    ],
)
def test_trust_refuses_what_is_no_certificate(pem: str, problem: str) -> None:
    with pytest.raises(ValueError, match=f"^secret/x ca.crt: .*{problem}"):
        Trust().adding(pem, "secret/x ca.crt")


def test_the_gate_generated_tls_secret_verifies_like_production(
    start_tls: Callable[[str, str], str],
) -> None:
    """The codelab-tls the gate deploys: the ingress serves tls.crt (leaf + intermediate); a
    client trusting ca.crt (the root) verifies it, one trusting the system CAs alone does
    not."""
    secrets = generate_secrets(ingress_host=HOST)
    secret = next(s for s in secrets if s["metadata"]["name"] == TLS_SECRET)
    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert data["tls.crt"].count("BEGIN CERTIFICATE") == 2
    url = start_tls(data["tls.crt"], data["tls.key"])
    trusted = IngressClient(url, host=HOST, trust=Trust().adding(data[CA_KEY], "ca.crt"))
    assert trusted.request("GET", "/version").ok
    untrusted = IngressClient(url, host=HOST).request("GET", "/version")
    assert not untrusted.ok and "unable to get local issuer certificate" in str(untrusted.error)


# ----------------------------------------------------------------- no verification turned off

#: Code that turns verification off or trusts whatever is served.
UNVERIFIED = re.compile(
    r"verify\s*=\s*False|[\"']verify[\"']\s*:\s*False|CERT_NONE|check_hostname\s*=\s*False"
    r"|_create_unverified_context|insecure\s*=\s*True|insecure_ssl_context_factory"
)
#: The engine's own health probes of kube-controller-manager and kube-scheduler, whose serving
#: certificates are self-signed by the components: cluster bootstrap, not a request of the
#: suites or of the load users. Any other occurrence fails.
KNOWN = {
    (
        "src/pytest_codelab/engine/up.py",
        '(cm, f"https://{NODE_IP}:10257/healthz", {"verify": False}),',
    ),
    (
        "src/pytest_codelab/engine/up.py",
        '(sched, f"https://{NODE_IP}:10259/healthz", {"verify": False}),',
    ),
}


def unverified(
    root: Path, folders: tuple[str, ...] = ("src", "suites", "loadtests")
) -> set[tuple[str, str]]:
    """(path, line) of every Python line under ``folders`` that turns verification off."""
    found = set()
    for folder in folders:
        for path in sorted((root / folder).rglob("*.py")):
            for line in path.read_text(encoding="utf-8").splitlines():
                if UNVERIFIED.search(line):
                    found.add((str(path.relative_to(root)), line.strip()))
    return found


def test_no_code_turns_verification_off() -> None:
    found = unverified(REPO)
    assert found - KNOWN == set(), "verification turned off:\n" + "\n".join(
        f"{path}: {line}" for path, line in sorted(found - KNOWN)
    )


@pytest.mark.parametrize(
    "line",
    [
        "requests.get(url, verify=False)",
        'kw = {"verify": False}',
        "context.verify_mode = ssl.CERT_NONE",
        "context.check_hostname = False",
        "ctx = ssl._create_unverified_context()",
        "    insecure = True",
    ],
)
def test_the_scan_sees_what_it_must_refuse(tmp_path: Path, line: str) -> None:
    (tmp_path / "suites").mkdir()
    (tmp_path / "suites" / "test_x.py").write_text(f"ok = 1\n{line}\n", encoding="utf-8")
    assert unverified(tmp_path, ("suites",)) == {("suites/test_x.py", line.strip())}
