"""The one-way import rule of docs/architecture.md, checked on the source.

Why: the structure only stays one-way if a test says so the day someone adds an import
against it. Every import counts, function-level ones and ``importlib.import_module("...")``
included, because a lazy import is still a dependency (and still a cycle).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "pytest_codelab"
SUITES = ROOT / "suites"

#: Lowest first. A module imports its own package, or packages of a lower layer: never a
#: higher layer, never a sibling package of its own layer. The engine stands alone at the
#: bottom: it imports nothing of the gate (see ENGINE_READERS for who may import it).
LAYERS: tuple[tuple[str, ...], ...] = (
    ("__init__", "errors", "resources", "engine"),
    ("options",),
    ("settings",),
    ("safety",),
    ("k8s",),
    ("providers", "deploy", "clients"),
    ("permissions",),
    ("run",),
    ("report",),
    ("scenarios",),
    ("fixtures",),
    ("plugin", "__main__"),
)
RANK = {unit: rank for rank, units in enumerate(LAYERS) for unit in units}

#: Outside the engine, only the local provider drives it; anyone may read its pins (data).
ENGINE_READERS = "providers"
ENGINE_DATA = "pytest_codelab.engine.versions"


def module_name(path: Path, root: Path = PACKAGE) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_names(path: Path, module: str) -> Iterator[str]:
    """Every module name the file imports, wherever the import stands."""
    is_package = path.name == "__init__.py"
    base = module.split(".") if is_package else module.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                prefix = base[: len(base) - node.level + 1]
                source = ".".join(prefix + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            yield source
            yield from (f"{source}.{alias.name}" for alias in node.names)
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            yield node.args[0].value


def graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    """Module -> the project's modules it imports (names resolved to existing modules)."""
    modules = {module_name(p, root): p for p in root.rglob("*.py")}
    edges: dict[str, set[str]] = {}
    for module, path in modules.items():
        deps = set()
        for name in imported_names(path, module):
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name not in (module, root.name):
                deps.add(name)
        edges[module] = deps
    return edges


def unit(module: str) -> str:
    """The layer unit of a module: its first-level package or top-level module."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected sets of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in edges:
        if v not in index:
            visit(v)
    return found


def breaches(edges: dict[str, set[str]]) -> list[str]:
    """Every import against the rule, one line each."""
    out = [f"cycle: {' <-> '.join(c)}" for c in cycles(edges)]
    for module, deps in sorted(edges.items()):
        here = unit(module)
        for dep in sorted(deps):
            there = unit(dep)
            if here == there:
                continue
            if here == "engine":
                out.append(f"engine imports the gate: {module} -> {dep}")
            elif there == "engine" and here != ENGINE_READERS and dep != ENGINE_DATA:
                out.append(f"only the local provider drives the engine: {module} -> {dep}")
            elif there == "engine":
                continue
            elif RANK[there] >= RANK[here]:
                out.append(f"upward or sideways: {module} -> {dep}")
    return out


def test_every_module_has_a_layer() -> None:
    units = {unit(m) for m in graph()}
    assert units <= set(RANK), f"add to LAYERS (and docs/architecture.md): {units - set(RANK)}"


def test_imports_run_one_way() -> None:
    assert breaches(graph()) == []


def test_suites_never_import_the_engine() -> None:
    offenders = [
        path.name
        for path in SUITES.rglob("*.py")
        for name in imported_names(path, f"suites.{path.stem}")
        if name == "pytest_codelab.engine" or name.startswith("pytest_codelab.engine.")
    ]
    assert offenders == []


def test_the_check_sees_what_it_must_refuse(tmp_path: Path) -> None:
    """The rule is not vacuous: a cycle through a function-level import, an engine module
    importing the gate, an upward import and a sideways one are each reported."""
    pkg = tmp_path / "pytest_codelab"
    files = {
        "errors.py": "",
        "engine/__init__.py": "",
        "engine/up.py": "def f():\n    from pytest_codelab.engine import down\n",
        "engine/down.py": "from pytest_codelab.engine import up\nfrom pytest_codelab import k8s\n",
        "k8s/__init__.py": "from pytest_codelab.fixtures import x\n",
        "fixtures/__init__.py": "x = 1\n",
        "deploy/__init__.py": "import importlib\n"
        "importlib.import_module('pytest_codelab.clients')\n",
        "clients/__init__.py": "",
    }
    for name, text in files.items():
        (pkg / name).parent.mkdir(parents=True, exist_ok=True)
        (pkg / name).write_text(text)
    found = breaches(graph(pkg))
    assert "cycle: pytest_codelab.engine.down <-> pytest_codelab.engine.up" in found
    assert "engine imports the gate: pytest_codelab.engine.down -> pytest_codelab.k8s" in found
    assert "upward or sideways: pytest_codelab.k8s -> pytest_codelab.fixtures" in found
    assert "upward or sideways: pytest_codelab.deploy -> pytest_codelab.clients" in found
