"""The cluster's shape: one control plane and N workers, each with its own address, pod
range, zone, cgroup subtree and folders."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from pytest_codelab.engine.layout import (
    NETNS,
    NODE_IP,
    POD_CIDR,
    Layout,
    Node,
    cluster_nodes,
    node_by_name,
)


def _layout(tmp_path: Path) -> Layout:
    return Layout(state=tmp_path / "state", cache=tmp_path / "cache", bin=tmp_path / "bin")


def test_control_plane_keeps_the_one_node_names_and_address() -> None:
    cp = Node(0)
    assert cp.control_plane and cp.name == cp.netns == NETNS and cp.ip == NODE_IP
    assert cp.zone is None  # like kind's control plane


def test_every_node_differs_in_each_respect_the_kernel_or_kubelet_shares() -> None:
    nodes = cluster_nodes(3)
    assert [n.name for n in nodes] == ["codelab", "codelab-w1", "codelab-w2", "codelab-w3"]
    for attr in ("name", "ip", "pod_cidr", "switch_port", "cgroup_root"):
        values = [getattr(n, attr) for n in nodes]
        assert len(set(values)) == len(values), attr
    assert [n.zone for n in nodes[1:]] == ["zone-1", "zone-2", "zone-3"]
    pods = ipaddress.ip_network(POD_CIDR)
    assert all(ipaddress.ip_network(n.pod_cidr).subnet_of(pods) for n in nodes)
    assert all(len(n.switch_port) <= 15 for n in cluster_nodes(200))  # IFNAMSIZ


def test_node_by_name_round_trips_and_refuses_strangers() -> None:
    for node in cluster_nodes(12):
        assert node_by_name(node.name) == node
    for bad in ("codelab-w0", "codelab-wx", "kind-worker", "codelab-switch"):
        with pytest.raises(ValueError, match="not a node"):
            node_by_name(bad)


def test_component_names_keep_the_control_planes_and_tag_workers() -> None:
    assert Node(0).component("kubelet") == "kubelet"
    assert Node(2).component("kubelet") == "kubelet@codelab-w2"


def test_node_files_live_apart_and_images_survive_down(tmp_path: Path) -> None:
    lay = _layout(tmp_path)
    cp, w1 = Node(0), Node(1)
    assert lay.node_kubelet_root(cp) != lay.node_kubelet_root(w1)
    assert lay.node_containerd_socket(cp) != lay.node_containerd_socket(w1)
    assert lay.node_volumes(w1).is_relative_to(lay.state)
    # Image stores are in the cache (kept by down); the control plane's is the old one.
    assert lay.node_containerd_root(cp) == lay.cache / "containerd"
    assert lay.node_containerd_root(w1) == lay.cache / "containerd-codelab-w1"
    assert lay.kubelet_root == lay.node_kubelet_root(cp)
