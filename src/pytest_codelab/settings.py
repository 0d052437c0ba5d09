"""Effective settings of a run: one frozen value per option, and where it came from.

``resolve`` is the only place that applies precedence (flag > env > ini > default), so
the report header can say truthfully which source won. A bad value stops the run with a
``pytest.UsageError`` of one line that lists the valid values.
"""

from __future__ import annotations

import math
import os
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from pytest_codelab.options import BY_NAME, OPTIONS, Kind, OptionSpec


class Source(StrEnum):
    """Where a setting's value came from."""

    FLAG = "flag"
    ENV = "env"
    INI = "ini"
    DEFAULT = "default"


def _from_table(name: str) -> Any:
    """A Settings field whose default is the option table's, parsed like a given value."""
    return field(default_factory=lambda: _table_default(name))


@dataclass(frozen=True)
class Settings:
    """The effective options; ``sources`` maps each field name to its Source. Defaults come
    from the option table (:mod:`pytest_codelab.options`), the only place they are written."""

    cluster: str | None = _from_table("cluster")
    kubeconfig: Path = _from_table("kubeconfig")
    context: str | None = _from_table("context")
    namespace: str | None = _from_table("namespace")
    keep_namespace: bool = _from_table("keep_namespace")
    manifests: Path | None = _from_table("manifests")
    profile: str = _from_table("profile")
    values: Path | None = _from_table("values")
    expect: Path | None = _from_table("expect")
    image_registry: str | None = _from_table("image_registry")
    image_tag: str | None = _from_table("image_tag")
    ingress_url: str | None = _from_table("ingress_url")
    ingress_host: str = _from_table("ingress_host")
    ingress_class: str = _from_table("ingress_class")
    ca_file: Path | None = _from_table("ca_file")
    report_dir: Path = _from_table("report_dir")
    allow_disruptive: bool = _from_table("allow_disruptive")
    timeout_scale: float = _from_table("timeout_scale")
    local_velero: bool = _from_table("local_velero")
    local_addons: tuple[str, ...] = _from_table("local_addons")
    local_workers: int = _from_table("local_workers")
    load_workers: int = _from_table("load_workers")
    load_image: str | None = _from_table("load_image")
    load_master_host: str | None = _from_table("load_master_host")
    offline: bool = _from_table("offline")
    require_all: bool = _from_table("require_all")
    waive: tuple[str, ...] = _from_table("waive")
    sources: Mapping[str, Source] = field(default_factory=lambda: MappingProxyType({}))

    def source(self, name: str) -> Source:
        return self.sources.get(name, Source.DEFAULT)


SETTINGS_KEY = pytest.StashKey[Settings]()

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def resolve(config: pytest.Config, environ: Mapping[str, str] | None = None) -> Settings:
    """Settings of this run: flag > env > ini > default, each value validated."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    sources: dict[str, Source] = {}
    for spec in OPTIONS:
        raw, source, base = _raw_value(config, spec, env)
        values[spec.name] = _parse(spec, raw, source, base)
        sources[spec.name] = source
    if sources["kubeconfig"] is Source.DEFAULT:
        values["kubeconfig"] = default_kubeconfig(env)
    _validate(values, sources)
    return Settings(**values, sources=MappingProxyType(sources))


def default_kubeconfig(environ: Mapping[str, str]) -> Path:
    """Like kubectl: every file of $KUBECONFIG (merged when read, k8s/kube.py), else
    ~/.kube/config."""
    entries = [
        str(Path(e).expanduser()) for e in environ.get("KUBECONFIG", "").split(os.pathsep) if e
    ]
    if entries:
        return Path(os.pathsep.join(entries))
    return Path(str(BY_NAME["kubeconfig"].default)).expanduser()


def _table_default(name: str) -> Any:
    spec = BY_NAME[name]
    return _parse(spec, spec.default, Source.DEFAULT, Path())


def _raw_value(
    config: pytest.Config, spec: OptionSpec, environ: Mapping[str, str]
) -> tuple[str | bool | None, Source, Path]:
    """The winning raw value, its source, and the folder relative paths start from."""
    cwd = config.invocation_params.dir
    flag = config.getoption(spec.dest, default=None)
    if flag is not None:
        return flag, Source.FLAG, cwd
    env = environ.get(spec.env, "")
    if env.strip():
        return env.strip(), Source.ENV, cwd
    ini = config.getini(spec.ini)
    if isinstance(ini, str) and ini.strip():
        base = config.inipath.parent if config.inipath else config.rootpath
        return ini.strip(), Source.INI, base
    return spec.default, Source.DEFAULT, cwd


def _where(spec: OptionSpec, source: Source) -> str:
    return {
        Source.FLAG: "command line",
        Source.ENV: f"env {spec.env}",
        Source.INI: f"ini {spec.ini}",
        Source.DEFAULT: "default",
    }[source]


def _bad(spec: OptionSpec, raw: object, source: Source, valid: str) -> pytest.UsageError:
    return pytest.UsageError(
        f"{spec.flag}: invalid value {raw!r} (from {_where(spec, source)}); valid: {valid}"
    )


def _parse(spec: OptionSpec, raw: str | bool | None, source: Source, base: Path) -> Any:
    if raw is None:
        return () if spec.kind is Kind.LIST else None
    if isinstance(raw, bool):
        return raw
    if spec.kind is Kind.BOOL:
        return _parse_bool(spec, raw, source)
    if spec.kind is Kind.CHOICE:
        if raw not in spec.choices:
            raise _bad(spec, raw, source, ", ".join(spec.choices))
        return raw
    if spec.kind is Kind.FLOAT:
        return _parse_number(spec, raw, source, float, "a number greater than 0")
    if spec.kind is Kind.INT:
        return _parse_number(spec, raw, source, int, f"an integer, {spec.minimum} or more")
    if spec.kind is Kind.PATH:
        path = Path(raw).expanduser()
        return path if path.is_absolute() else base / path
    if spec.kind is Kind.LIST:
        items = tuple(dict.fromkeys(item.strip() for item in raw.split(",") if item.strip()))
        if spec.choices and not set(items) <= set(spec.choices):
            raise _bad(spec, raw, source, ", ".join(spec.choices))
        return items
    return raw


def _parse_bool(spec: OptionSpec, raw: str, source: Source) -> bool:
    text = raw.lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise _bad(spec, raw, source, ", ".join(_TRUE + _FALSE))


def _parse_number(
    spec: OptionSpec, raw: str, source: Source, kind: type[int] | type[float], valid: str
) -> int | float:
    try:
        number = kind(raw)
    except ValueError:
        raise _bad(spec, raw, source, valid) from None
    in_range = number >= spec.minimum if kind is int else math.isfinite(number) and number > 0
    if not in_range:
        raise _bad(spec, raw, source, valid)
    return number


def _validate(values: dict[str, Any], sources: Mapping[str, Source]) -> None:
    """Checks that need the parsed value: files exist, names are valid."""

    def fail(name: str, problem: str) -> pytest.UsageError:
        spec = BY_NAME[name]
        return pytest.UsageError(f"{spec.flag}: {problem} (from {_where(spec, sources[name])})")

    values_file = values["values"]
    if values_file is not None and not values_file.is_file():
        raise fail("values", f"values file not found: {values_file}")
    expect_file = values["expect"]
    if expect_file is not None and not expect_file.is_file():
        raise fail("expect", f"expected-values file not found: {expect_file}")
    manifests = values["manifests"]
    if manifests is not None and not manifests.is_dir():
        raise fail("manifests", f"manifests folder not found: {manifests}")
    namespace = values["namespace"]
    if namespace is not None and not (len(namespace) <= 63 and _DNS_LABEL.match(namespace)):
        raise fail("namespace", f"{namespace!r} is not a valid namespace name (RFC 1123 label)")
    url = values["ingress_url"]
    if url is not None and urlsplit(url).scheme not in ("http", "https"):
        raise fail("ingress_url", f"{url!r} is not a URL; valid: http://... or https://...")
    if values["offline"] and values["cluster"] is not None:
        cluster = BY_NAME["cluster"]
        raise fail(
            "offline",
            f"cannot be combined with {cluster.flag}={values['cluster']} (given by "
            f"{_where(cluster, sources['cluster'])}): an offline run tests no cluster",
        )
    ca_file = values["ca_file"]
    problem = _ca_file_problem(ca_file) if ca_file is not None else None
    if problem:
        raise fail("ca_file", problem)


def _ca_file_problem(path: Path) -> str | None:
    """Why ``path`` is no CA file (absent, unreadable, no PEM certificate, one that does not
    parse), or None: checked before any test, so a typo never runs the gate on the system
    CAs alone."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return f"CA file not found: {path}"
    except (OSError, UnicodeDecodeError) as exc:
        return f"cannot read CA file {path}: {getattr(exc, 'strerror', None) or exc}"
    problem = pem_problem(text)
    return f"CA file {path}: {problem}; valid: PEM CA certificates" if problem else None


def pem_problem(text: str) -> str | None:
    """Why ``text`` is not PEM certificates that all parse, or None (the one check of CA
    certificates, for --codelab-ca-file and for the cluster's issuer root alike)."""
    if "-----BEGIN CERTIFICATE-----" not in text:
        return "no PEM certificate in it"
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cadata=text)
    except ssl.SSLError as exc:
        return f"a PEM certificate in it does not parse ({exc.reason or exc})"
    return None


def bad_value(settings: Settings, name: str, raw: object, valid: str) -> pytest.UsageError:
    """The one-line usage error for a setting whose value only a higher layer can judge
    (e.g. promise ids for --codelab-waive), naming where the value came from."""
    return _bad(BY_NAME[name], raw, settings.source(name), valid)


def display(name: str, value: object) -> str:
    """A setting as shown to people: absent values explained, no credentials in URLs."""
    if value is None:
        absent = {
            "cluster": "none",
            "namespace": "ephemeral",
            "manifests": "bundled",
            "expect": "guide",
        }
        return absent.get(name, "-")
    if name == "ingress_url" and isinstance(value, str):
        return _strip_userinfo(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ",".join(map(str, value)) or "none"
    return str(value)


def _strip_userinfo(url: str) -> str:
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def header_lines(settings: Settings, width: int = 100) -> list[str]:
    """Compact report header: every setting, with its source unless it is the default.

    Only paths are shown for files (never a kubeconfig's contents).
    """
    items = []
    for f in fields(settings):
        if f.name == "sources":
            continue
        item = f"{f.name}={display(f.name, getattr(settings, f.name))}"
        source = settings.source(f.name)
        items.append(item if source is Source.DEFAULT else f"{item} ({source})")
    lines = ["codelab:"]
    for item in items:
        if len(lines[-1]) + 1 + len(item) > width and lines[-1].strip() != "codelab:":
            lines.append(" ")
        lines[-1] += " " + item
    return [line.rstrip() for line in lines]
