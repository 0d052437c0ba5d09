"""Live objects as manifest-shaped dicts: kind and apiVersion on every item, unserved kinds
listed instead of failing."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes.dynamic.exceptions import ResourceNotFoundError

from pytest_codelab.k8s import snapshot


class FakeList:
    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.items = items

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "List", "items": self.items}


class FakeResource:
    def __init__(self, items: list[dict[str, Any]], calls: list[tuple[str, Any]]) -> None:
        self.items, self.calls = items, calls

    def get(self, namespace: str, _request_timeout: Any = None) -> FakeList:
        self.calls.append((namespace, _request_timeout))
        return FakeList(self.items)


class FakeResources:
    def __init__(self, served: dict[str, list[dict[str, Any]]], calls: list[Any]) -> None:
        self.served, self.calls = served, calls

    def get(self, api_version: str, kind: str) -> FakeResource:
        if kind not in self.served:
            raise ResourceNotFoundError(f"{api_version} {kind}")
        return FakeResource(self.served[kind], self.calls)


class FakeDynamic:
    def __init__(self, served: dict[str, list[dict[str, Any]]], calls: list[Any]) -> None:
        self.resources = FakeResources(served, calls)


def test_read_namespace(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Any] = []
    served = {
        "Deployment": [{"metadata": {"name": "gateway"}, "spec": {"replicas": 3}}],
        "Service": [{"metadata": {"name": "gateway"}}, {"metadata": {"name": "redis"}}],
        "StatefulSet": [],
        "Ingress": [],
        "HorizontalPodAutoscaler": [],
    }
    monkeypatch.setattr(snapshot, "dynamic_client", lambda api: FakeDynamic(served, calls))
    snap = snapshot.read_namespace(object(), "codelab", request_timeout=7.5)  # type: ignore[arg-type]
    assert snap.namespace == "codelab"
    assert snap.objects == [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "gateway"},
            "spec": {"replicas": 3},
        },
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "gateway"}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "redis"}},
    ]
    assert snap.unserved == ["autoscaling.k8s.io/v1 VerticalPodAutoscaler"]
    assert calls == [("codelab", 7.5)] * 5
