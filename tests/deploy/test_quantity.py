"""Sizes: Kubernetes quantities and nginx sizes as numbers."""

from __future__ import annotations

from decimal import Decimal

import pytest

from pytest_codelab.deploy.quantity import parse_nginx_size, parse_quantity


@pytest.mark.parametrize(
    ("q", "value"),
    [
        ("500m", Decimal("0.5")),
        ("1Gi", Decimal(2**30)),
        (2, Decimal(2)),
        ("1e3", Decimal(1000)),
        ("128Mi", Decimal(128 * 2**20)),
        ("1.5", Decimal("1.5")),
    ],
)
def test_parse_quantity(q: str | int, value: Decimal) -> None:
    assert parse_quantity(q) == value


def test_parse_quantity_rejects_garbage() -> None:
    for bad in ("1 Gi", "lots", "", "1Gb"):
        with pytest.raises(ValueError):
            parse_quantity(bad)


@pytest.mark.parametrize(
    ("text", "size"), [("50m", 50 << 20), ("512k", 512 << 10), ("1g", 1 << 30), (" 1024 ", 1024)]
)
def test_parse_nginx_size(text: str, size: int) -> None:
    assert parse_nginx_size(text) == size


def test_parse_nginx_size_rejects_garbage() -> None:
    with pytest.raises(ValueError, match="not an nginx size"):
        parse_nginx_size("50MiB")
