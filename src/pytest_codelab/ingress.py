"""Talking to CodeLab the way a client does: through the ingress, by host name.

The ingress address (an IP or a load balancer name) is rarely resolvable as the product's
host, so requests go to the address with the ``Host`` header set, and for HTTPS with the
TLS server name (SNI) set to the host, so the controller picks the host's certificate.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter


class _SNIAdapter(HTTPAdapter):
    """An adapter that sends ``server_hostname`` (SNI) and checks the certificate for it."""

    def __init__(self, host: str, **kw: Any) -> None:
        self._host = host
        super().__init__(**kw)

    def init_poolmanager(self, *args: Any, **kw: Any) -> None:
        kw["server_hostname"] = self._host
        kw["assert_hostname"] = self._host
        super().init_poolmanager(*args, **kw)


class IngressClient:
    """HTTP(S) to ``base_url`` as if it were ``https://<host>``; redirects are not followed,
    so a test sees exactly what the ingress answered."""

    def __init__(
        self, base_url: str, host: str, *, verify: bool | str = False, timeout: float = 10.0
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.host = host
        self.timeout = timeout
        self.session = requests.Session()
        self.session.mount("https://", _SNIAdapter(host))
        self.verify = verify

    def url(self, path: str, scheme: str | None = None) -> str:
        """The address-based URL for ``path`` (optionally switching to ``scheme``)."""
        parts = urlsplit(self.base_url)
        netloc = parts.netloc
        if scheme and scheme != parts.scheme:
            netloc = parts.hostname or netloc
        return urlunsplit((scheme or parts.scheme, netloc, path, "", ""))

    def request(
        self, method: str, path: str, *, scheme: str | None = None, **kw: Any
    ) -> requests.Response:
        """One request with the product host in ``Host`` (and SNI for HTTPS)."""
        headers = {"Host": self.host, **kw.pop("headers", {})}
        kw.setdefault("timeout", self.timeout)
        kw.setdefault("allow_redirects", False)
        return self.session.request(
            method, self.url(path, scheme), headers=headers, verify=self.verify, **kw
        )

    def get(self, path: str, **kw: Any) -> requests.Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> requests.Response:
        return self.request("POST", path, **kw)

    def close(self) -> None:
        self.session.close()
