"""NetworkPolicy evaluation (ingress side): selectors and ports judged as the API defines them."""

from __future__ import annotations

from kubernetes import client

from pytest_codelab.k8s.netpolicy import ingress_verdict, selector_matches


def policy(name: str, target: dict[str, str], peers: list[dict[str, object]]) -> object:
    return client.V1NetworkPolicy(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1NetworkPolicySpec(
            pod_selector=client.V1LabelSelector(match_labels=target),
            policy_types=["Ingress"],
            ingress=[
                client.V1NetworkPolicyIngressRule(
                    _from=[client.V1NetworkPolicyPeer(**p) for p in peers]
                )
            ],
        ),
    )


def test_selectors_match_labels_and_expressions() -> None:
    assert selector_matches(None, {"app": "x"})
    assert selector_matches(client.V1LabelSelector(match_labels={"app": "x"}), {"app": "x"})
    assert not selector_matches(client.V1LabelSelector(match_labels={"app": "x"}), {"app": "y"})
    expression = client.V1LabelSelectorRequirement(key="tier", operator="In", values=["db"])
    assert selector_matches(client.V1LabelSelector(match_expressions=[expression]), {"tier": "db"})
    assert not selector_matches(client.V1LabelSelector(match_expressions=[expression]), {})


def test_a_target_no_policy_selects_admits_everything() -> None:
    assert ingress_verdict([], {"app": "redis"}, 6379, None, {"app": "gateway"}, {}) == (True, [])


def test_a_selecting_policy_admits_only_its_peers() -> None:
    allow = policy(
        "allow-agent",
        {"app": "redis"},
        [{"pod_selector": client.V1LabelSelector(match_labels={"app": "agent-runtime"})}],
    )
    admitted = ingress_verdict([allow], {"app": "redis"}, 6379, None, {"app": "agent-runtime"}, {})
    refused = ingress_verdict([allow], {"app": "redis"}, 6379, None, {"app": "gateway"}, {})
    assert admitted == (True, ["allow-agent"])
    assert refused == (False, ["allow-agent"])


def test_a_pod_selector_peer_never_matches_a_source_of_another_namespace() -> None:
    """The ingress controller lives in its own namespace: a peer without namespaceSelector
    means the policy's namespace, so it must not admit the controller."""
    allow = policy(
        "allow-any-pod",
        {"app": "redis"},
        [{"pod_selector": client.V1LabelSelector(match_labels={})}],
    )
    inside = ingress_verdict([allow], {"app": "redis"}, 6379, None, {"x": "y"}, {})
    outside = ingress_verdict(
        [allow], {"app": "redis"}, 6379, None, {"x": "y"}, {}, same_namespace=False
    )
    assert inside == (True, ["allow-any-pod"])
    assert outside == (False, ["allow-any-pod"])
