"""A small schema language for YAML documents: leaves, fixed mappings, free mappings, lists.

Why not JSON Schema: the messages. A problem is one line naming the full key path and what was
expected (``gateway.replicaCount: expected an integer, got 'two'``), an unknown key comes with a
suggestion, and a value marked sensitive is never repeated."""

from __future__ import annotations

import datetime
import difflib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

#: Largest YAML input read (manifests, values files): a stack's files are kilobytes; a file
#: past this is a mistake, and parsing it would stall the run before saying so.
MAX_FILE_BYTES = 4 * 1024 * 1024
#: Most nodes a document may expand to: YAML aliases can make a small file enormous.
MAX_NODES = 200_000
#: Deepest nesting accepted: far beyond any Kubernetes object or values file, well within
#: what the recursive code after the load (copies, comparisons) can take.
MAX_DEPTH = 64
_PLAIN = (str, int, float, bool, type(None))


@dataclass(frozen=True)
class Scalar:
    """A leaf: accepted Python types, how to name it in errors, and an optional extra check."""

    kinds: tuple[type, ...]
    label: str
    check: Callable[[Any], str | None] | None = None
    sensitive: bool = False


@dataclass(frozen=True)
class Obj:
    """A mapping with a fixed set of keys; ``required`` is enforced only on complete values.

    ``open``: other keys are passed through unchecked (a Kubernetes object, where only the
    fields the gate reads are typed and the API server's schema judges the rest). ``whole``:
    ``required`` is enforced in partial values too, for a block that means nothing in part
    (an image without its tag, autoscaling bounds without saying whether it is on)."""

    fields: Mapping[str, Spec]
    required: tuple[str, ...] = ()
    open: bool = False
    whole: bool = False


@dataclass(frozen=True)
class MapOf:
    """A mapping with free-form keys (annotations, secrets); ``keys`` restricts them if set."""

    value: Spec
    keys: tuple[str, ...] | None = None
    what: str = "key"


@dataclass(frozen=True)
class ListOf:
    item: Spec


@dataclass(frozen=True)
class Anything:
    """Free-form content passed through (LiteLLM settings, valueFrom)."""


Spec = Scalar | Obj | MapOf | ListOf | Anything


def int_range(lo: int | None = None, hi: int | None = None) -> Callable[[Any], str | None]:
    def check(v: Any) -> str | None:
        if lo is not None and v < lo:
            return f"must be >= {lo}, got {v}"
        if hi is not None and v > hi:
            return f"must be <= {hi}, got {v}"
        return None

    return check


def one_of(*choices: str) -> Callable[[Any], str | None]:
    def check(v: Any) -> str | None:
        return None if v in choices else f"expected one of {', '.join(choices)}, got {v!r}"

    return check


def nonempty(v: Any) -> str | None:
    return None if str(v).strip() else "must not be empty"


def describe(value: Any, sensitive: bool) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return "true" if value else "false"
    if sensitive:
        return f"a value of type {type(value).__name__}"
    if isinstance(value, float):
        return f'{value!r} (quote it: "{value}")'
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "...'"


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _suggest(key: str, known: Sequence[str]) -> str:
    lowered = {k.lower(): k for k in known}
    close = difflib.get_close_matches(key.lower(), list(lowered), n=1, cutoff=0.6)
    return f" (did you mean {lowered[close[0]]}?)" if close else ""


def problems(spec: Spec, value: Any, path: str, partial: bool, errors: list[str]) -> None:
    """Append one message per problem; stops descending where the shape is already wrong."""
    if isinstance(spec, Anything):
        return
    if isinstance(spec, Scalar):
        ok = isinstance(value, spec.kinds) and not (
            isinstance(value, bool) and bool not in spec.kinds
        )
        if not ok:
            errors.append(f"{path}: expected {spec.label}, got {describe(value, spec.sensitive)}")
        elif spec.check is not None:
            problem = spec.check(value)
            if problem:
                errors.append(f"{path}: {problem if not spec.sensitive else 'invalid value'}")
        return
    if isinstance(spec, ListOf):
        if not isinstance(value, list):
            errors.append(f"{path}: expected a list, got {describe(value, False)}")
            return
        # A list replaces the profile's whole list when merged, so its items must be complete.
        for i, item in enumerate(value):
            problems(spec.item, item, f"{path}[{i}]", False, errors)
        return
    if not isinstance(value, Mapping):
        errors.append(f"{path or 'top level'}: expected a mapping, got {describe(value, False)}")
        return
    if isinstance(spec, MapOf):
        for key, item in value.items():
            key_s = str(key)
            if spec.keys is not None and key_s not in spec.keys:
                errors.append(
                    f"unknown {spec.what} {_join(path, key_s)}{_suggest(key_s, spec.keys)}"
                    f" (known: {', '.join(spec.keys)})"
                )
                continue
            problems(spec.value, item, _join(path, key_s), partial, errors)
        return
    if not partial or spec.whole:  # the shallowest problem first: it explains those below
        for key in spec.required:
            if key not in value:
                errors.append(f"missing key {_join(path, key)}")
    for key, item in value.items():
        key_s = str(key)
        if key_s not in spec.fields:
            if spec.open:
                continue
            errors.append(f"unknown key {_join(path, key_s)}{_suggest(key_s, list(spec.fields))}")
            continue
        problems(spec.fields[key_s], item, _join(path, key_s), partial, errors)


def too_large(size: int) -> str | None:
    """Why a file of ``size`` bytes is not read, or None."""
    if size <= MAX_FILE_BYTES:
        return None
    return f"too large ({size / 2**20:.1f} MiB; at most {MAX_FILE_BYTES // 2**20} MiB is read)"


def _kind_of(value: Any) -> str:
    if isinstance(value, datetime.date):
        return "a date or time (quote it)"
    if isinstance(value, bytes):
        return "binary data"
    if isinstance(value, (set, frozenset)):
        return "a set"
    return f"a {type(value).__name__}"


def plain_problem(data: Any) -> str | None:
    """Why ``data`` is not plain JSON-like data (what a Kubernetes object or a values file
    is), or None: keys must be strings, leaves strings, numbers, booleans or null, no alias
    may contain itself, nothing nests past :data:`MAX_DEPTH` and the whole may not expand
    past :data:`MAX_NODES`. Iterative, so
    that no input can exhaust the stack; checked before any code walks the data."""
    stack: list[tuple[Any, str, frozenset[int]]] = [(data, "", frozenset())]
    seen = 0
    while stack:
        value, path, parents = stack.pop()
        seen += 1
        if seen > MAX_NODES:
            return f"more than {MAX_NODES} values (YAML aliases expanding?)"
        if isinstance(value, _PLAIN):
            continue
        where = path or "top level"
        if not isinstance(value, (dict, list)):
            return f"{where}: {_kind_of(value)} is not a YAML string, number or boolean"
        if id(value) in parents:
            return f"{where}: a YAML alias that contains itself"
        if len(parents) >= MAX_DEPTH:
            return f"{where}: nested more than {MAX_DEPTH} levels deep"
        inner = parents | {id(value)}
        if isinstance(value, list):
            stack.extend((item, f"{path}[{i}]", inner) for i, item in enumerate(value))
            continue
        for key, item in value.items():
            if not isinstance(key, str):
                return f"{where}: key {repr(key)[:40]} is not a string (quote it)"
            stack.append((item, _join(path, key), inner))
    return None
