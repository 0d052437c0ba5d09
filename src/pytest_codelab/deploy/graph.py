"""The guide's architecture graph: which network paths must work and which must be refused.

Why a file of its own: the expected side of a network check must not come from the
NetworkPolicies under test (a policy that admits everything would then forbid nothing, and
the check would have nothing to try). The graph is written down once, as a fenced
``codelab-graph`` block of the bundled ``manifests/README.md`` (the seed's mermaid edges plus
the documented deviations), and everything else derives from it: the allowed paths are its
edges; the forbidden ones are every other ordered pair of its components, the ingress
controller included as a source.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from pytest_codelab.errors import GateError
from pytest_codelab.resources import bundled_path

#: The ingress controller: a source of paths only (it lives in its own namespace).
INGRESS_CONTROLLER = "ingress-controller"
FENCE = "codelab-graph"
_BLOCK = re.compile(rf"^```{FENCE}[ \t]*\n(?P<body>.*?)^```", re.M | re.S)
_EDGE = re.compile(
    r"^(?P<source>[a-z0-9-]+)\s*->\s*(?P<target>[a-z0-9-]+):(?P<port>[0-9]+)"
    r"\s*(?:#\s*(?P<note>.*))?$"
)


@dataclass(frozen=True)
class Edge:
    """``source -> target:port``; ``deviation`` is the reason when the seed's graph lacks it."""

    source: str
    target: str
    port: int
    deviation: str = ""

    @property
    def id(self) -> str:
        return f"{self.source}->{self.target}"

    def describe(self) -> str:
        return f"{self.source} -> {self.target}:{self.port}"


@dataclass(frozen=True)
class Graph:
    """The edges of the graph, and what derives from them."""

    edges: tuple[Edge, ...]

    @property
    def components(self) -> tuple[str, ...]:
        """Every node but the ingress controller, sorted: the targets of paths."""
        names = {e.source for e in self.edges} | {e.target for e in self.edges}
        return tuple(sorted(names - {INGRESS_CONTROLLER}))

    def ports(self) -> dict[str, int]:
        """Each target's port, as its edges state it."""
        return {e.target: e.port for e in self.edges}

    def allowed(self) -> tuple[Edge, ...]:
        return self.edges

    def forbidden(self) -> tuple[Edge, ...]:
        """Every ordered pair (source, target) of components, plus the ingress controller as
        a source, that is no edge; at the target's port."""
        ports = self.ports()
        allowed = {(e.source, e.target) for e in self.edges}
        return tuple(
            Edge(source, target, ports[target])
            for source in (INGRESS_CONTROLLER, *self.components)
            for target in self.components
            if source != target and (source, target) not in allowed and target in ports
        )


class GraphError(GateError):
    """The graph block is missing or has a line that is no edge (one line, naming it)."""


def parse_graph(text: str, where: str = "README.md") -> Graph:
    """The edges of the first ``codelab-graph`` block of ``text``; a port stated twice for
    one target with different numbers, a line that is no edge, or no block is a GraphError."""
    match = _BLOCK.search(text)
    if match is None:
        raise GraphError(f"{where}: no ```{FENCE} block")
    edges: list[Edge] = []
    ports: dict[str, int] = {}
    for number, raw in enumerate(match["body"].splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        edge = _EDGE.match(line)
        if edge is None:
            raise GraphError(f"{where}: {FENCE} line {number} is not 'from -> to:port': {line!r}")
        note = (edge["note"] or "").strip()
        deviation = note.partition("deviation:")[2].strip() if "deviation:" in note else ""
        item = Edge(edge["source"], edge["target"], int(edge["port"]), deviation)
        if ports.setdefault(item.target, item.port) != item.port:
            raise GraphError(
                f"{where}: {FENCE} line {number}: {item.target} on port {item.port}, "
                f"earlier on {ports[item.target]}"
            )
        if item.target == INGRESS_CONTROLLER or item.source == item.target:
            raise GraphError(f"{where}: {FENCE} line {number}: {item.describe()} is no path")
        edges.append(item)
    if not edges:
        raise GraphError(f"{where}: the {FENCE} block has no edge")
    return Graph(tuple(edges))


def read_graph(path: Path) -> Graph:
    """The graph of a README file."""
    return parse_graph(path.read_text(encoding="utf-8"), str(path))


@cache
def guide_graph() -> Graph:
    """The guide's graph, from the bundled ``manifests/README.md`` (never the manifests
    under test: it is the expected side)."""
    return read_graph(bundled_path("manifests") / "README.md")
