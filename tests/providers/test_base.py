"""A cluster handle travels to xdist workers as plain data."""

from __future__ import annotations

import json
from pathlib import Path

from pytest_codelab.providers.base import ClusterHandle


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
