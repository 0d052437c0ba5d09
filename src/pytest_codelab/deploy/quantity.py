"""Sizes as numbers: Kubernetes quantities ('500m', '1Gi', 2) for values and the offline rules,
and the nginx size syntax of ingress-nginx annotations ('50m')."""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal

_QUANTITY_RE = re.compile(
    r"^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))"
    r"(?:([eE][+-]?[0-9]+)|(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E))?$"
)
_SUFFIX: Mapping[str, Decimal] = {
    "": Decimal(1),
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
    "Ki": Decimal(2**10),
    "Mi": Decimal(2**20),
    "Gi": Decimal(2**30),
    "Ti": Decimal(2**40),
    "Pi": Decimal(2**50),
    "Ei": Decimal(2**60),
}


def parse_quantity(value: str | int | float) -> Decimal:
    """A Kubernetes quantity ('500m', '1Gi', 2) as a number; ValueError if malformed."""
    if isinstance(value, bool):
        raise ValueError(f"not a quantity: {value!r}")
    if isinstance(value, int | float):
        return Decimal(str(value))
    m = _QUANTITY_RE.match(value.strip()) if isinstance(value, str) else None
    if m is None:
        raise ValueError(f"not a quantity: {value!r}")
    number, exponent, suffix = m.groups()
    if exponent:
        return Decimal(number) * (Decimal(10) ** int(exponent[1:]))
    return Decimal(number) * _SUFFIX[suffix or ""]


_NGINX_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def parse_nginx_size(text: str) -> int:
    """nginx size syntax ("50m", "512k", "1g", "1024") in bytes."""
    match = re.fullmatch(r"\s*(\d+)\s*([kKmMgG]?)\s*", text)
    if not match:
        raise ValueError(f"not an nginx size: {text!r}")
    return int(match.group(1)) * _NGINX_UNITS[match.group(2).lower()]
