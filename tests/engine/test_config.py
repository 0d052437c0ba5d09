"""What each node's components are told: own addresses, ranges, sockets, cgroups."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import yaml

from pytest_codelab.engine import config
from pytest_codelab.engine.layout import (
    CONTROL_PLANE_TAINT,
    POD_CIDR,
    ZONE_LABEL,
    Layout,
    Node,
)


def _layout(tmp_path: Path) -> Layout:
    return Layout(state=tmp_path / "state", cache=tmp_path / "cache", bin=tmp_path / "bin")


def test_kubelets_differ_per_node_and_only_the_control_plane_is_tainted(tmp_path: Path) -> None:
    lay = _layout(tmp_path)
    cp, w2 = Node(0), Node(2)
    cp_cfg = yaml.safe_load(config.kubelet_config(lay, cp))
    w_cfg = yaml.safe_load(config.kubelet_config(lay, w2))
    assert cp_cfg["registerWithTaints"] == [{"key": CONTROL_PLANE_TAINT, "effect": "NoSchedule"}]
    assert "registerWithTaints" not in w_cfg
    assert (w_cfg["address"], w_cfg["podCIDR"], w_cfg["cgroupRoot"]) == (
        w2.ip,
        w2.pod_cidr,
        "/codelab-w2",
    )
    assert w_cfg["containerRuntimeEndpoint"].endswith("codelab-w2/containerd/containerd.sock")
    args = config.kubelet_args(lay, w2)
    assert f"--node-labels={ZONE_LABEL}=zone-2" in args
    assert "--hostname-override=codelab-w2" in args
    assert f"--root-dir={lay.node_kubelet_root(w2)}" in args


def test_containerd_has_its_own_store_socket_and_no_shared_nri(tmp_path: Path) -> None:
    lay = _layout(tmp_path)
    doc = tomllib.loads(config.containerd_config(lay, Node(1)))
    assert doc["root"] == str(lay.cache / "containerd-codelab-w1")
    assert doc["grpc"]["address"] == str(lay.node_containerd_socket(Node(1)))
    assert doc["plugins"]["io.containerd.nri.v1.nri"]["disable"] is True


def test_pods_keep_their_address_across_nodes(tmp_path: Path) -> None:
    """No masquerade by the bridge (NetworkPolicies must see the caller's pod address);
    the node's own rule masquerades only what leaves the pod network."""
    cni = json.loads(config.cni_config(_layout(tmp_path), Node(3)))
    bridge = cni["plugins"][0]
    assert bridge["ipMasq"] is False
    assert bridge["ipam"]["ranges"] == [[{"subnet": Node(3).pod_cidr}]]
    rule = config.masquerade_rule()
    assert rule[rule.index("-s") + 1] == POD_CIDR
    assert rule[rule.index("!") + 1 : rule.index("!") + 3] == ["-d", POD_CIDR]


def test_kube_proxy_runs_as_its_node(tmp_path: Path) -> None:
    cfg = yaml.safe_load(config.kube_proxy_config(_layout(tmp_path), Node(1)))
    assert (cfg["hostnameOverride"], cfg["bindAddress"]) == ("codelab-w1", Node(1).ip)
