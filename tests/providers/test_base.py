"""A cluster handle travels to xdist workers as plain data; a provider that can lose a node
says so by its shape (NodeControl), one that cannot says why."""

from __future__ import annotations

import json
from pathlib import Path

from pytest_codelab.providers.base import ClusterHandle, NodeControl, node_control_gap
from pytest_codelab.providers.existing import ExistingCluster
from pytest_codelab.settings import Settings


def test_handle_round_trips_through_json() -> None:
    handle = ClusterHandle(
        kubeconfig=Path("/tmp/kubeconfig"),
        context="codelab",
        ingress_url="http://172.31.254.2",
        name="local",
        created=True,
        ingress_gaps={"x/y": "why"},
        load_image="codelab/locust:1",
    )
    data = json.loads(json.dumps(handle.to_dict()))
    assert ClusterHandle.from_dict(data) == handle


def test_older_handles_without_new_fields_still_load() -> None:
    handle = ClusterHandle.from_dict({"kubeconfig": "/k", "name": "existing:dev"})
    assert handle.context is None and handle.load_image is None and handle.ingress_gaps == {}


class _Hands:
    """A provider with hands on its nodes (the shape of the local cluster's)."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def stop_node(self, name: str) -> None:
        self.calls.append(f"stop {name}")

    def start_node(self, name: str) -> None:
        self.calls.append(f"start {name}")


def test_a_provider_that_stops_nodes_has_no_gap() -> None:
    hands = _Hands()
    assert isinstance(hands, NodeControl)
    assert node_control_gap(hands, "local") is None


def test_the_existing_provider_cannot_lose_a_node_and_says_why() -> None:
    gap = node_control_gap(ExistingCluster(Settings()), "existing:staging")
    assert gap is not None
    assert gap.startswith("cluster existing:staging cannot lose a node on purpose: ")
    assert "--codelab-cluster=local" in gap
