"""What every HTTPS request of the gate trusts, and how it verifies: as a client would.

A user's browser or HTTP client trusts the system's CAs; a private deployment also hands
its users the root of its issuer. The gate trusts exactly that and nothing ad hoc: the
system CAs, the issuer root the cluster publishes for the stack (``ca.crt`` of its TLS
Secret: the CA the gate generates for a stack it deploys, a CA issuer's root elsewhere) and
the certificates of ``--codelab-ca-file``. Verification is always on, the host name
included; a certificate the trust store rejects is a :class:`VerificationFailed` naming the
host, the reason and what was trusted, never a retry without verification.

Servers send their intermediates; a trust store may still hold an intermediate without its
root (a company's issuing CA). ``VERIFY_X509_PARTIAL_CHAIN`` makes that enough, as Python
3.13 does by default and 3.11 does not.
"""

from __future__ import annotations

import functools
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

from pytest_codelab.settings import pem_problem

#: OpenSSL's flag accepting a chain that ends at any certificate of the trust store (0 when
#: this Python's ssl lacks it: then only roots anchor a chain).
PARTIAL_CHAIN = getattr(ssl, "VERIFY_X509_PARTIAL_CHAIN", 0)


class VerificationFailed(ssl.SSLCertVerificationError):
    """The served certificate was rejected: the message names the host, the address, the
    reason and the trust store. An ``ssl.SSLError`` (an ``OSError``), so every caller that
    records network errors records this one as the failure it is."""


def check_pem(text: str, source: str) -> None:
    """ValueError unless ``text`` holds PEM certificates that all parse (one line, naming
    ``source``)."""
    problem = pem_problem(text)
    if problem:
        raise ValueError(f"{source}: {problem}")


@dataclass(frozen=True)
class Trust:
    """The trust store of a run: the system CAs plus ``pem`` (extra CA certificates, each
    from one of ``sources``, which say where for messages)."""

    pem: str = ""
    sources: tuple[str, ...] = ()

    @classmethod
    def from_file(cls, path: Path | None) -> Trust:
        """The system CAs plus the certificates of ``path`` (``--codelab-ca-file``) if any."""
        if path is None:
            return cls()
        return cls().adding(path.read_text(encoding="utf-8"), str(path))

    def adding(self, pem: str, source: str) -> Trust:
        """This store plus the certificates of ``pem`` (checked: ValueError naming
        ``source``); itself when ``pem`` is empty."""
        if not pem.strip():
            return self
        check_pem(pem, source)
        joined = "\n".join(p.strip() for p in (self.pem, pem) if p.strip()) + "\n"
        return Trust(joined, (*self.sources, source))

    def describe(self) -> str:
        return " + ".join(("system CAs", *self.sources))

    def context(self) -> ssl.SSLContext:
        """The client context: chain and host name verified against this store (shared:
        loading the system CAs once, not per connection)."""
        return _context(self.pem)

    def wrap(self, sock: socket.socket, server_name: str, where: str) -> ssl.SSLSocket:
        """TLS over ``sock`` to ``server_name`` (SNI and the name verified), reached at
        ``where``; a rejected certificate is a VerificationFailed saying why."""
        try:
            return self.context().wrap_socket(sock, server_hostname=server_name)
        except ssl.SSLCertVerificationError as exc:
            reason = exc.verify_message or exc.reason or str(exc)
            raise VerificationFailed(
                exc.errno,  # with errno, str() is the message alone
                f"TLS verification of {server_name} at {where} failed: {reason}; "
                f"trusted: {self.describe()}",
            ) from None


@functools.lru_cache(maxsize=8)
def _context(pem: str) -> ssl.SSLContext:
    context = ssl.create_default_context()  # the system CAs, CERT_REQUIRED, host names
    if pem:
        context.load_verify_locations(cadata=pem)
    context.verify_flags |= PARTIAL_CHAIN
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    return context
