"""The permissions table: every suite has an entry, the shipped rbac/ files are generated
from it and grant exactly its sets, and a run asks for the selected suites' needs only."""

from __future__ import annotations

from pathlib import Path

import yaml

from pytest_codelab import permissions
from pytest_codelab.clients.velero import NAMESPACE as VELERO_NAMESPACE
from pytest_codelab.k8s.access import Access, granted
from pytest_codelab.resources import bundled_path

ROOT = Path(__file__).resolve().parents[1]
RBAC = ROOT / "rbac"


def shipped(name: str) -> list[dict]:
    return [d for d in yaml.safe_load_all((RBAC / name).read_text(encoding="utf-8")) if d]


def grants_of(docs: list[dict]) -> dict[str, set[Access]]:
    """What the Roles of one file grant, by where (Role namespace, or cluster)."""
    found: dict[str, set[Access]] = {}
    for doc in docs:
        if doc["kind"] in ("Role", "ClusterRole"):
            where = doc["metadata"].get("namespace") or "cluster"
            found.setdefault(where, set()).update(granted(doc["rules"], None))
    return found


def table(needs: list[permissions.Need]) -> dict[str, set[Access]]:
    """The same needs, computed straight from the table's tuples."""
    where = {permissions.NS: "codelab", permissions.CLUSTER: "cluster"}
    where[permissions.VELERO] = VELERO_NAMESPACE
    found: dict[str, set[Access]] = {}
    for verbs, resource, scope in needs:
        for access in permissions.parse(verbs, resource, None):
            found.setdefault(where[scope], set()).add(access)
    return found


def plural_of(kind: str) -> str:
    """The resource name of a kind, the way the API names the bundled ones."""
    low = kind.lower()
    if low.endswith("y"):
        return low[:-1] + "ies"
    return low + ("es" if low.endswith("s") else "s")


def test_every_suite_module_has_an_entry() -> None:
    modules = {p.name for p in bundled_path("suites").glob("test_*.py")}
    assert modules == set(permissions.SUITES), "add the suite to permissions.SUITES"


def test_deployed_kinds_are_the_manifests_kinds() -> None:
    kinds = {"Secret"}  # generated (deploy/secrets.py), not in the manifests
    for path in bundled_path("manifests").glob("*.yaml"):
        kinds |= {d["kind"] for d in yaml.safe_load_all(path.read_text()) if d}
    kinds.discard("Namespace")  # the gate makes its own
    plural = {k.split(".")[0] for k in permissions.DEPLOYED_KINDS}
    assert plural == {plural_of(k) for k in kinds}


def test_shipped_rbac_is_generated_from_the_table() -> None:
    for name, docs in permissions.rbac_documents().items():
        text = (RBAC / name).read_text(encoding="utf-8")
        assert text == permissions.rbac_text(docs), f"regenerate rbac/{name}"


def test_safe_role_grants_exactly_the_safe_set() -> None:
    safe = [*permissions.BASE, *(n for e in permissions.SUITES.values() for n in e.safe)]
    assert grants_of(shipped("namespace-safe.yaml")) == table(safe)


def test_disruptive_role_grants_exactly_the_additions() -> None:
    safe = table([*permissions.BASE, *(n for e in permissions.SUITES.values() for n in e.safe)])
    every = table(
        [
            *permissions.BASE,
            *(n for e in permissions.SUITES.values() for n in (*e.safe, *e.disruptive)),
        ]
    )
    additions = {w: every[w] - safe.get(w, set()) for w in every}
    assert grants_of(shipped("namespace-disruptive.yaml")) == {
        w: a for w, a in additions.items() if a
    }
    assert additions["codelab"], "the disruptive tests add nothing?"


def test_ephemeral_cluster_role_grants_everything_cluster_wide() -> None:
    every = table(
        [
            *permissions.BASE,
            *permissions.EPHEMERAL,
            *(n for e in permissions.SUITES.values() for n in (*e.safe, *e.disruptive)),
        ]
    )
    expected = {
        "cluster": every["codelab"] | every["cluster"],
        VELERO_NAMESPACE: every[VELERO_NAMESPACE],
    }
    assert grants_of(shipped("ephemeral.yaml")) == expected


def test_bindings_name_the_gate_service_account() -> None:
    for name in permissions.rbac_documents():
        for doc in shipped(name):
            if doc["kind"].endswith("Binding"):
                assert doc["subjects"] == [
                    {"kind": "ServiceAccount", "name": "codelab-gate", "namespace": "codelab-gate"}
                ]
                assert doc["roleRef"]["name"] == doc["metadata"]["name"]


def test_a_run_asks_for_the_selected_suites_only() -> None:
    ids = ["suites/test_smoke.py::test_a", "test_probes.py::test_b[gateway]", "tests/x.py::t"]
    safe = set(permissions.needed(ids, "codelab", disruptive_allowed=False))
    assert Access("create", "pods", "", "codelab", "exec") in safe  # smoke's exec
    assert Access("get", "ingresses", "networking.k8s.io", "codelab") in safe
    assert Access("delete", "pods", "", "codelab") not in safe  # probes' disruptive part
    assert not any(a.resource == "namespaces" for a in safe)
    assert not any(a.group == "velero.io" for a in safe)  # backup suite not selected
    allowed = set(permissions.needed(ids, "codelab", disruptive_allowed=True))
    assert allowed - safe >= {Access("delete", "pods", "", "codelab")}


def test_an_ephemeral_run_asks_cluster_wide_for_deploying() -> None:
    needed = set(permissions.needed(["suites/test_ingress.py::t"], None, disruptive_allowed=False))
    assert Access("create", "namespaces") in needed
    assert Access("patch", "deployments", "apps") in needed  # server-side apply, any namespace
    assert all(a.namespace is None for a in needed)


def test_unknown_modules_add_nothing_beyond_the_base() -> None:
    base = permissions.accesses(list(permissions.BASE), "ns")
    assert permissions.needed(["tests/test_x.py::t"], "ns", disruptive_allowed=True) == base
