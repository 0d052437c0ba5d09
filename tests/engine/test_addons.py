"""The add-on manifests: rendered for the cluster's nodes, the ingress controller on the pod
network, the NetworkPolicy enforcer on every node."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from pytest_codelab.engine import addons, versions
from pytest_codelab.engine.layout import Layout, cluster_nodes


def _docs(tmp_path: Path, workers: int = 3) -> list[dict[str, Any]]:
    lay = Layout(state=tmp_path / "state", cache=tmp_path / "cache", bin=tmp_path / "bin")
    return [d for d in yaml.safe_load_all(addons.render(lay, cluster_nodes(workers))) if d]


def _find(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)


def test_traefik_is_a_pod_of_its_namespace_on_the_ingress_node(tmp_path: Path) -> None:
    """Backends see the controller's pod address, so the stack's policies that admit the
    ingress-nginx namespace admit it as on a production cluster."""
    dep = _find(_docs(tmp_path), "Deployment", "ingress-nginx-controller")
    pod = dep["spec"]["template"]["spec"]
    assert dep["metadata"]["namespace"] == "ingress-nginx"
    assert not pod.get("hostNetwork")
    assert pod["nodeSelector"] == {"ingress-ready": "true"}
    ports = {p["name"]: p for p in pod["containers"][0]["ports"]}
    assert (ports["web"]["hostPort"], ports["websecure"]["hostPort"]) == (80, 443)


def test_the_enforcer_runs_on_every_node_as_that_node(tmp_path: Path) -> None:
    ds = _find(_docs(tmp_path), "DaemonSet", "kube-network-policies")
    pod = ds["spec"]["template"]["spec"]
    assert pod["hostNetwork"] is True and pod["tolerations"] == [{"operator": "Exists"}]
    (c,) = pod["containers"]
    assert c["image"] == versions.KUBE_NETWORK_POLICIES_IMAGE
    assert "--hostname-override=$(MY_NODE_NAME)" in c["args"]
    assert "--disable-nri=true" in c["args"]
    assert ("kube-system", "daemonset/kube-network-policies", "nodes-ready") in addons.READY


def test_each_nodes_volumes_stay_in_that_nodes_folder(tmp_path: Path) -> None:
    cm = _find(_docs(tmp_path, workers=2), "ConfigMap", "local-path-config")
    paths = {e["node"]: e["paths"] for e in json.loads(cm["data"]["config.json"])["nodePathMap"]}
    state = tmp_path / "state" / "nodes"
    assert paths == {
        n: [str(state / n / "volumes")] for n in ("codelab", "codelab-w1", "codelab-w2")
    }
