"""The guide's architecture graph (pytest_codelab.deploy.graph): parsed from the bundled
manifests/README.md, the edges of the seed's mermaid graph plus documented deviations, and
the forbidden paths derived from it."""

from __future__ import annotations

import pytest

from pytest_codelab.deploy.graph import INGRESS_CONTROLLER, GraphError, guide_graph, parse_graph
from pytest_codelab.deploy.manifests import load_manifests
from pytest_codelab.resources import bundled_path

#: The seed's mermaid edges (Архитектура в Kubernetes), data layer to volumes left out.
SEED_EDGES = {
    ("ingress-controller", "gateway"),
    ("ingress-controller", "auth-service"),
    ("gateway", "agent-runtime"),
    ("agent-runtime", "llm-proxy"),
    ("agent-runtime", "postgres"),
    ("agent-runtime", "redis"),
    ("auth-service", "postgres"),
    ("auth-service", "redis"),
    ("gateway", "postgres"),
}


def test_the_bundled_graph_holds_the_seed_edges_and_marks_the_others_as_deviations() -> None:
    graph = guide_graph()
    edges = {(e.source, e.target): e for e in graph.allowed()}
    assert SEED_EDGES <= set(edges)
    extra = {k: e for k, e in edges.items() if k not in SEED_EDGES}
    assert extra and all(e.deviation for e in extra.values()), extra
    assert ("gateway", "auth-service") in extra


def test_forbidden_is_every_other_ordered_pair() -> None:
    graph = guide_graph()
    allowed = {(e.source, e.target) for e in graph.allowed()}
    forbidden = {(e.source, e.target) for e in graph.forbidden()}
    n = len(graph.components)
    assert not allowed & forbidden
    # components x components minus the diagonal, plus the controller to each component
    assert len(allowed) + len(forbidden) == n * (n - 1) + n
    assert (INGRESS_CONTROLLER, "postgres") in forbidden
    assert ("gateway", "redis") in forbidden
    assert all(e.port == graph.ports()[e.target] for e in graph.forbidden())


def test_the_graph_ports_are_the_bundled_services_ports() -> None:
    services = {
        o["metadata"]["name"]: {p["port"] for p in o["spec"]["ports"]}
        for o in load_manifests(bundled_path("manifests"))
        if o["kind"] == "Service"
    }
    for target, port in guide_graph().ports().items():
        assert port in services[target], (target, port, services.get(target))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("no block here", "no ```codelab-graph block"),
        ("```codelab-graph\na => b\n```\n", "line 1 is not 'from -> to:port'"),
        ("```codelab-graph\na -> b:1\nc -> b:2\n```\n", "b on port 2, earlier on 1"),
        ("```codelab-graph\n# only a comment\n```\n", "has no edge"),
    ],
)
def test_a_bad_block_is_one_line_naming_it(text: str, message: str) -> None:
    with pytest.raises(GraphError, match=message.replace("(", r"\(").replace("`", "`")):
        parse_graph(text, "x.md")
