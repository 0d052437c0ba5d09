#!/usr/bin/env python3
"""Extract a compact JSON schema per Kubernetes kind from the pinned OpenAPI v3 spec.

Why: the offline suite must validate manifests against a fixed Kubernetes version without a
cluster and without shipping the whole 13 MB spec. This script reads the spec that the
``k8s.io/kubernetes`` Go module ships (``api/openapi-spec/v3``), keeps only the kinds the gate
checks plus the definitions they reach, and rewrites them for plain ``jsonschema``:

* ``$ref`` to ``#/components/schemas/X`` become ``#/definitions/X``; ``allOf: [{$ref}]``
  wrappers (used by the spec to attach defaults) collapse to the ref;
* ``IntOrString`` becomes ``type: [integer, string]``; ``Quantity`` becomes a string matching
  the quantity grammar or a number;
* every object that lists ``properties`` gets ``additionalProperties: false`` unless the spec
  says otherwise, so a typo such as ``replica:`` is an error, as it is for ``kubectl apply``
  with server-side field validation;
* ``required`` lists are kept; ``apiVersion``/``kind`` are pinned per kind; descriptions,
  defaults and formats are dropped to keep the file small; ``status`` is accepted loosely.

Usage: ``python tools/gen_schema.py [--spec-dir DIR] [--version 1.37.2] [--out FILE]``.
Without ``--spec-dir`` the Go module cache is used (``go mod download
k8s.io/kubernetes@v1.37.2`` fetches it: it is network only, nothing is built).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pytest_codelab.engine.versions import KUBERNETES

VERSION = KUBERNETES.lstrip("v")

#: spec file -> apiVersion -> kinds. Kinds beyond the bundled manifests are included because an
#: operator's own manifests folder (``--codelab-manifests``) commonly holds them.
KINDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "api__v1_openapi.json": (
        "v1",
        (
            "ConfigMap",
            "Secret",
            "Service",
            "ServiceAccount",
            "PersistentVolumeClaim",
            "Namespace",
            "LimitRange",
            "ResourceQuota",
        ),
    ),
    "apis__apps__v1_openapi.json": ("apps/v1", ("Deployment", "StatefulSet", "DaemonSet")),
    "apis__batch__v1_openapi.json": ("batch/v1", ("Job", "CronJob")),
    "apis__networking.k8s.io__v1_openapi.json": (
        "networking.k8s.io/v1",
        ("Ingress", "NetworkPolicy", "IngressClass"),
    ),
    "apis__autoscaling__v2_openapi.json": ("autoscaling/v2", ("HorizontalPodAutoscaler",)),
    "apis__policy__v1_openapi.json": ("policy/v1", ("PodDisruptionBudget",)),
    "apis__rbac.authorization.k8s.io__v1_openapi.json": (
        "rbac.authorization.k8s.io/v1",
        ("Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"),
    ),
}

QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
#: The quantity grammar of k8s.io/apimachinery/pkg/api/resource (sign, number, suffix).
QUANTITY_PATTERN = (
    r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)"
    r"([eE][+-]?[0-9]+|[KMGTPE]i|[numkMGTPE])?$"
)
REF_PREFIX = "#/components/schemas/"
MAX_BYTES = 1024 * 1024


def default_spec_dir(version: str) -> Path:
    """The spec folder inside the Go module cache (GOMODCACHE, else ~/go/pkg/mod)."""
    modcache = os.environ.get("GOMODCACHE")
    if not modcache:
        try:
            modcache = subprocess.run(
                ["go", "env", "GOMODCACHE"], check=True, capture_output=True, text=True
            ).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            modcache = str(Path.home() / "go" / "pkg" / "mod")
    return Path(modcache) / f"k8s.io/kubernetes@v{version}" / "api" / "openapi-spec" / "v3"


def _ref_name(ref: str) -> str:
    if not ref.startswith(REF_PREFIX):
        raise ValueError(f"unexpected $ref {ref!r}")
    return ref[len(REF_PREFIX) :]


class Extractor:
    """Walks kind schemas, rewriting them and collecting every definition they reach."""

    def __init__(self) -> None:
        self.definitions: dict[str, Any] = {}
        self._sources: dict[str, dict[str, Any]] = {}

    def add_source(self, schemas: dict[str, Any]) -> None:
        for name, schema in schemas.items():
            self._sources.setdefault(name, schema)

    def ref(self, name: str) -> dict[str, Any]:
        if name not in self.definitions:
            self.definitions[name] = {}  # placeholder breaks recursion (JSONSchemaProps etc.)
            self.definitions[name] = self.definition(name)
        return {"$ref": f"#/definitions/{name}"}

    def definition(self, name: str) -> Any:
        if name == QUANTITY:
            return {"type": ["string", "number"], "pattern": QUANTITY_PATTERN}
        if name == INT_OR_STRING:
            return {"type": ["integer", "string"]}
        return self.node(self._sources[name])

    def node(self, x: Any) -> Any:
        """Rewrite one schema node (never a ``properties`` map: see ``_properties``)."""
        if not isinstance(x, dict):
            return x
        if "$ref" in x:
            return self.ref(_ref_name(x["$ref"]))
        all_of = x.get("allOf")
        if isinstance(all_of, list) and len(all_of) == 1 and "$ref" in all_of[0]:
            return self.ref(_ref_name(all_of[0]["$ref"]))
        out: dict[str, Any] = {}
        for key in ("type", "enum", "required", "pattern"):
            if key in x:
                out[key] = x[key]
        if x.get("nullable") and isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
        if "properties" in x:
            out["properties"] = {k: self.node(v) for k, v in x["properties"].items()}
        if "items" in x:
            out["items"] = self.node(x["items"])
        for key in ("allOf", "oneOf", "anyOf"):
            if key in x:
                out[key] = [self.node(v) for v in x[key]]
        if "additionalProperties" in x:
            ap = x["additionalProperties"]
            out["additionalProperties"] = ap if isinstance(ap, bool) else self.node(ap)
        elif "properties" in x and not x.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
        return out


def kind_schema(
    ex: Extractor, schemas: dict[str, Any], api_version: str, kind: str
) -> dict[str, Any]:
    """The root schema of one kind: a copy of its definition with apiVersion/kind pinned.

    A copy, because the same definition is also reached from inside other objects (a
    PersistentVolumeClaim in a StatefulSet's volumeClaimTemplates) where they are optional.
    """
    group, _, version = api_version.rpartition("/")
    for schema in schemas.values():
        for gvk in schema.get("x-kubernetes-group-version-kind", []):
            if gvk.get("group", "") == group and gvk["version"] == version and gvk["kind"] == kind:
                root: dict[str, Any] = json.loads(json.dumps(ex.node(schema)))
                props = root.setdefault("properties", {})
                props["apiVersion"] = {"type": "string", "enum": [api_version]}
                props["kind"] = {"type": "string", "enum": [kind]}
                if "status" in props:
                    props["status"] = {"type": "object"}
                root["required"] = sorted(
                    set(root.get("required", [])) | {"apiVersion", "kind", "metadata"}
                )
                return root
    raise KeyError(f"{api_version} {kind} not found in spec")


def reachable(definitions: dict[str, Any], roots: Iterable[Any]) -> dict[str, Any]:
    """Only the definitions the kind schemas reach (loosening ``status`` orphans many)."""

    def refs(x: Any) -> list[str]:
        text = json.dumps(x)
        return [part.split('"', 1)[0] for part in text.split('"#/definitions/')[1:]]

    seen: set[str] = set()
    stack = [name for root in roots for name in refs(root)]
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        stack.extend(refs(definitions[name]))
    return {name: definitions[name] for name in seen}


def build(spec_dir: Path, version: str) -> dict[str, Any]:
    """The whole bundled document: version, kind index and definitions."""
    ex = Extractor()
    loaded: dict[str, dict[str, Any]] = {}
    for filename in KINDS:
        path = spec_dir / filename
        doc = json.loads(path.read_text(encoding="utf-8"))
        loaded[filename] = doc["components"]["schemas"]
        ex.add_source(loaded[filename])
    kinds: dict[str, Any] = {}
    for filename, (api_version, names) in KINDS.items():
        for kind in names:
            kinds[f"{api_version}/{kind}"] = kind_schema(ex, loaded[filename], api_version, kind)
    # kubectl's "--dry-run -o yaml" output carries "creationTimestamp: null", which the API
    # server accepts: do not flag it.
    meta = ex.definitions["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]
    meta["properties"]["creationTimestamp"] = {"type": ["string", "null"]}
    definitions = reachable(ex.definitions, kinds.values())
    return {
        "kubernetesVersion": version,
        "source": f"k8s.io/kubernetes@v{version}/api/openapi-spec/v3 (tools/gen_schema.py)",
        "kinds": dict(sorted(kinds.items())),
        "definitions": dict(sorted(definitions.items())),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--version", default=VERSION)
    parser.add_argument("--spec-dir", type=Path)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    spec_dir = args.spec_dir or default_spec_dir(args.version)
    if not spec_dir.is_dir():
        print(
            f"gen_schema: no spec at {spec_dir}; "
            f"run: go mod download k8s.io/kubernetes@v{args.version}",
            file=sys.stderr,
        )
        return 2
    data_dir = Path(__file__).resolve().parent.parent / "src" / "pytest_codelab" / "data"
    out: Path = args.out or data_dir / f"k8s-{args.version}-schema.json"
    text = json.dumps(build(spec_dir, args.version), separators=(",", ":"), sort_keys=True)
    payload = text.encode("utf-8")
    if len(payload) > MAX_BYTES:
        out = out.with_name(out.name + ".gz")
        payload = gzip.compress(payload, mtime=0)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(payload)
    print(f"gen_schema: wrote {out} ({len(payload)} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
