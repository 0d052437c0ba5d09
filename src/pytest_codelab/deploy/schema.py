"""Validate objects against the OpenAPI schema of the pinned Kubernetes version, offline.

Why: a manifest that the API server would reject (a typo such as ``replica:``, a string where
an integer belongs, a missing required field) should fail the gate before any cluster is
involved. The schema is generated from Kubernetes' own OpenAPI v3 spec by tools/gen_schema.py
and bundled in ``data/``. Kinds without a bundled schema (CRDs such as the VPA) get a basic shape
check and are reported as ``shape-only``, never as validated.
"""

from __future__ import annotations

import difflib
import gzip
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources as importlib_resources
from typing import Any, Literal

import jsonschema
from jsonschema.exceptions import ValidationError

# The pins have one home, the engine's versions table (data only: reading it starts nothing).
from pytest_codelab.engine.versions import KUBERNETES

KUBERNETES_VERSION = KUBERNETES.lstrip("v")
SCHEMA_FILE = f"k8s-{KUBERNETES_VERSION}-schema.json"
MAX_ERRORS = 5

#: Shape checks for well-known CRDs the manifests use: enough to catch a wrong field name at the
#: top of the spec, not the CRD's full schema (which lives in its operator's release).
CRD_SHAPES: Mapping[str, dict[str, Any]] = {
    "autoscaling.k8s.io/v1/VerticalPodAutoscaler": {
        "type": "object",
        "required": ["spec"],
        "properties": {
            "spec": {
                "type": "object",
                "required": ["targetRef"],
                "additionalProperties": False,
                "properties": {
                    "targetRef": {
                        "type": "object",
                        "required": ["kind", "name"],
                        "properties": {
                            "apiVersion": {"type": "string"},
                            "kind": {"type": "string"},
                            "name": {"type": "string"},
                        },
                        "additionalProperties": False,
                    },
                    "updatePolicy": {
                        "type": "object",
                        "properties": {
                            "updateMode": {
                                "enum": [
                                    "Off",
                                    "Initial",
                                    "Recreate",
                                    "Auto",
                                    "InPlaceOrRecreate",
                                    "InPlace",
                                ]
                            },
                            "minReplicas": {"type": "integer"},
                            "evictionRequirements": {"type": "array"},
                        },
                        "additionalProperties": False,
                    },
                    "resourcePolicy": {"type": "object"},
                    "recommenders": {"type": "array"},
                },
            }
        },
    }
}

#: The basic shape every object must have (used alone for unknown kinds).
BASIC_SHAPE: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata"],
    "properties": {
        "apiVersion": {"type": "string", "minLength": 1},
        "kind": {"type": "string", "minLength": 1},
        "metadata": {
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {"type": "string", "minLength": 1},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        },
    },
}

Status = Literal["valid", "invalid", "shape-only", "shape-invalid"]


@dataclass(frozen=True)
class SchemaResult:
    """The outcome for one object. ``validated`` is true only for a full schema check."""

    obj: str
    gvk: str
    status: Status
    errors: tuple[str, ...] = ()
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.status in ("valid", "shape-only")

    @property
    def validated(self) -> bool:
        return self.status == "valid"

    def message(self) -> str:
        """One line per error, for assertion messages."""
        head = f"{self.obj} ({self.gvk})"
        if self.ok:
            return f"{head}: {self.status}{'; ' + self.note if self.note else ''}"
        return "\n".join(f"{head}: {e}" for e in self.errors)


@cache
def bundled_schema() -> dict[str, Any]:
    """The generated document: ``{kubernetesVersion, kinds: {gvk: root schema}, definitions}``."""
    data_dir = importlib_resources.files("pytest_codelab") / "data"
    plain = data_dir / SCHEMA_FILE
    if plain.is_file():
        raw = plain.read_bytes()
    else:
        raw = gzip.decompress((data_dir / (SCHEMA_FILE + ".gz")).read_bytes())
    doc: dict[str, Any] = json.loads(raw)
    return doc


def supported_kinds() -> frozenset[str]:
    """``apiVersion/Kind`` strings with a full bundled schema."""

    return frozenset(bundled_schema()["kinds"])


def gvk_of(obj: Mapping[str, Any]) -> str:
    return f"{obj.get('apiVersion', '?')}/{obj.get('kind', '?')}"


@cache
def _validator(gvk: str) -> jsonschema.protocols.Validator:
    doc = bundled_schema()
    schema = dict(doc["kinds"][gvk])
    schema["definitions"] = doc["definitions"]
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
    validator: jsonschema.protocols.Validator = cls(schema)
    return validator


@cache
def _shape_validator(gvk: str | None) -> jsonschema.protocols.Validator:
    schema = dict(BASIC_SHAPE)
    if gvk is not None:
        schema = {"allOf": [BASIC_SHAPE, CRD_SHAPES[gvk]]}
    return jsonschema.Draft7Validator(schema)


def _path(error: ValidationError) -> str:
    parts: list[str] = []
    for p in error.absolute_path:
        if isinstance(p, int):
            parts.append(f"[{p}]")
        else:
            parts.append(("." if parts else "") + str(p))
    return "".join(parts) or "(top level)"


def _leaf_errors(error: ValidationError) -> Iterator[ValidationError]:
    """The most specific errors (anyOf/oneOf wrap their alternatives' errors in context)."""
    if error.context:
        for sub in error.context:
            yield from _leaf_errors(sub)
    else:
        yield error


def _describe(error: ValidationError, secret: bool) -> str:
    path = _path(error)
    if error.validator == "additionalProperties" and isinstance(error.instance, Mapping):
        known = list(
            (error.schema.get("properties") or {}) if isinstance(error.schema, Mapping) else []
        )
        extra = [k for k in error.instance if k not in known]
        hints = []
        for key in extra:
            close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
            hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        return f"{path}: unknown field {', '.join(hints)}"
    if error.validator == "required":
        return f"{path}: {error.message}"
    if error.validator == "pattern" and "KMGTPE" in str(error.validator_value) and not secret:
        return f"{path}: {error.instance!r} is not a quantity (such as '500m', '1Gi' or 2)"
    if secret:
        # Never echo a Secret's content.
        return f"{path}: fails the '{error.validator}' check"
    message = error.message
    return f"{path}: {message if len(message) <= 200 else message[:197] + '...'}"


def _errors(validator: jsonschema.protocols.Validator, obj: Mapping[str, Any]) -> tuple[str, ...]:
    secret = obj.get("kind") == "Secret"
    found: list[str] = []
    for error in sorted(validator.iter_errors(obj), key=lambda e: list(map(str, e.absolute_path))):
        for leaf in _leaf_errors(error):
            text = _describe(leaf, secret)
            if text not in found:
                found.append(text)
    if len(found) > MAX_ERRORS:
        found = found[:MAX_ERRORS] + [f"... and {len(found) - MAX_ERRORS} more"]
    return tuple(found)


def validate_object(obj: Mapping[str, Any]) -> SchemaResult:
    """Check one object: full schema if bundled, else a shape check, reported as such."""
    name = f"{obj.get('kind', '?')}/{(obj.get('metadata') or {}).get('name', '?')}"
    gvk = gvk_of(obj)
    if gvk in supported_kinds():
        errors = _errors(_validator(gvk), obj)
        return SchemaResult(name, gvk, "invalid" if errors else "valid", errors)
    crd = gvk if gvk in CRD_SHAPES else None
    errors = _errors(_shape_validator(crd), obj)
    note = (
        f"no OpenAPI schema bundled for {gvk} (Kubernetes {KUBERNETES_VERSION} core kinds only); "
        + ("checked the CRD's basic shape only" if crd else "checked apiVersion/kind/metadata only")
    )
    return SchemaResult(name, gvk, "shape-invalid" if errors else "shape-only", errors, note)
