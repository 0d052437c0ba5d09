"""The VPA add-on without a cluster: upstream's objects, localized."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pytest_codelab.engine import versions, vpa
from pytest_codelab.engine.errors import EngineError

needs_go = pytest.mark.skipif(shutil.which("go") is None, reason="needs the Go module proxy")


@needs_go
def test_objects_are_upstreams_with_local_images() -> None:
    objects = vpa.manifests()
    kinds = {o["kind"] for o in objects}
    assert {"CustomResourceDefinition", "ClusterRole", "Deployment", "Service"} <= kinds
    deployments = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Deployment"}
    assert set(deployments) == {"vpa-recommender", "vpa-updater", "vpa-admission-controller"}
    images = set()
    for d in deployments.values():
        for c in d["spec"]["template"]["spec"]["containers"]:
            assert c["imagePullPolicy"] == "Never"
            assert c["resources"]["requests"] == vpa.REQUESTS
            images.add(c["image"])
    # upstream's image names are the ones the engine builds and imports
    assert images == set(vpa.BINARIES)
    crds = {o["metadata"]["name"] for o in objects if o["kind"] == "CustomResourceDefinition"}
    assert "verticalpodautoscalers.autoscaling.k8s.io" in crds


def test_localized_adds_flags_and_keeps_upstreams() -> None:
    doc = {
        "kind": "Deployment",
        "spec": {"template": {"spec": {"containers": [{"name": "updater", "args": ["--v=4"]}]}}},
    }
    c = vpa.localized(doc)["spec"]["template"]["spec"]["containers"][0]
    assert c["args"] == ["--v=4", "--updater-interval=15s"]
    assert vpa.localized({"kind": "Service"}) == {"kind": "Service"}


def test_image_recipes_name_the_missing_binaries(tmp_path: Path) -> None:
    with pytest.raises(EngineError, match="recommender.*--with vpa"):
        vpa.image_recipes(tmp_path)


def test_component_builds_the_three_binaries() -> None:
    (component,) = [c for c in versions.COMPONENTS if c.addon == "vpa"]
    assert {Path(p).name for p in component.packages} == set(vpa.BINARIES.values())
