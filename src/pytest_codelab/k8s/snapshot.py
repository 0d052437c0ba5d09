"""The live objects of a namespace as plain dicts, shaped like the manifests.

Why: the guide comparison (:mod:`pytest_codelab.deploy.compare`) reads manifests and live
objects with the same functions, so a live object must look like its manifest: the API's own
JSON (camelCase keys), with ``kind`` and ``apiVersion`` on every item. A kind the cluster does
not serve (a CRD such as VerticalPodAutoscaler that is not installed) is listed as unserved,
not as an error.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client
from kubernetes.dynamic.exceptions import ResourceNotFoundError

from pytest_codelab.k8s.stack import dynamic_client

#: (apiVersion, kind) of every object the guide comparison reads.
COMPARED_KINDS: tuple[tuple[str, str], ...] = (
    ("apps/v1", "Deployment"),
    ("apps/v1", "StatefulSet"),
    ("v1", "Service"),
    ("networking.k8s.io/v1", "Ingress"),
    ("autoscaling/v2", "HorizontalPodAutoscaler"),
    ("autoscaling.k8s.io/v1", "VerticalPodAutoscaler"),
)


@dataclass(frozen=True)
class Snapshot:
    """What a namespace holds: ``objects`` (dicts) and ``unserved`` kinds (``apiVersion Kind``)."""

    namespace: str
    objects: list[dict[str, Any]] = field(default_factory=list)
    unserved: list[str] = field(default_factory=list)


def read_namespace(
    api: client.ApiClient,
    namespace: str,
    kinds: Iterable[tuple[str, str]] = COMPARED_KINDS,
    *,
    request_timeout: float | None = None,
) -> Snapshot:
    """Every object of ``kinds`` in ``namespace``, as the API serves it."""
    dyn = dynamic_client(api)
    snapshot = Snapshot(namespace)
    for api_version, kind in kinds:
        try:
            resource = dyn.resources.get(api_version=api_version, kind=kind)
        except ResourceNotFoundError:
            snapshot.unserved.append(f"{api_version} {kind}")
            continue
        listed = resource.get(namespace=namespace, _request_timeout=request_timeout).to_dict()
        for item in listed.get("items") or []:
            snapshot.objects.append({"apiVersion": api_version, "kind": kind, **item})
    return snapshot
