"""What each suite asks of the API server: the one table behind the preflight and ``rbac/``.

Every entry is a verb on a resource and where: ``NS`` (CodeLab's namespace: the
``--codelab-namespace`` one, or each ephemeral one), ``CLUSTER`` (cluster-scoped kinds or
every namespace) or ``VELERO`` (Velero's namespace). A suite module has a ``safe`` part
(what its non-disruptive tests do) and a ``disruptive`` part (what its disruptive tests add);
the preflight unions the parts of the suites selected for a run and asks the API server for
each (:func:`needed`), and the Roles in ``rbac/`` are generated from the same table
(:func:`rbac_documents`), so a shipped Role grants exactly what the suites use.

The entries come from the calls the fixtures, clients and scenarios make for each suite
(``k8s/``, ``clients/``, ``scenarios/``); a new call needs a new entry, and the staging
rehearsal (tests/e2e/test_staging_rehearsal.py) proves the table with a service account
bound only to the shipped Roles.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from pytest_codelab.clients.velero import NAMESPACE as VELERO_NAMESPACE
from pytest_codelab.k8s.access import Access, parse, rbac_rules

NS, CLUSTER, VELERO = "namespace", "cluster", "velero"
#: (verbs, resource[/subresource][.group], where)
Need = tuple[str, str, str]

#: Any cluster run: the stack's readiness (workloads, their pods, Warning events), the
#: reads of workloads, and failure diagnostics (events, pod logs).
BASE: tuple[Need, ...] = (
    ("get list", "pods", NS),
    ("get list", "deployments.apps", NS),
    ("get list", "statefulsets.apps", NS),
    ("list", "events", NS),
    ("get", "pods/log", NS),
)
#: Waiting for a rollout as ``kubectl rollout status`` does: list, then watch.
ROLLOUT_STATUS: tuple[Need, ...] = (
    ("watch", "deployments.apps", NS),
    ("watch", "statefulsets.apps", NS),
)
#: The kinds of the bundled manifests (+ the generated Secrets), server-side applied.
DEPLOYED_KINDS: tuple[str, ...] = (
    "configmaps",
    "secrets",
    "serviceaccounts",
    "services",
    "deployments.apps",
    "statefulsets.apps",
    "ingresses.networking.k8s.io",
    "networkpolicies.networking.k8s.io",
    "horizontalpodautoscalers.autoscaling",
    "verticalpodautoscalers.autoscaling.k8s.io",
    "poddisruptionbudgets.policy",
)
#: Ephemeral namespaces only: create, wait for, reap and delete them; deploy the stack.
EPHEMERAL: tuple[Need, ...] = (
    ("create get list delete", "namespaces", CLUSTER),
    ("get", "serviceaccounts", NS),
    *(("create patch", kind, NS) for kind in DEPLOYED_KINDS),
)
#: suites/conftest.py's ingress target: the Ingress, hosts taken elsewhere (every
#: namespace), the TLS Secret's issuer root and the OAuth client's Secret.
INGRESS: tuple[Need, ...] = (
    ("get", "ingresses.networking.k8s.io", NS),
    ("list", "ingresses.networking.k8s.io", CLUSTER),
    ("get", "secrets", NS),
)
#: kubectl exec's stream: a websocket upgrade of a GET, authorized as get and create.
EXEC: Need = ("get create", "pods/exec", NS)
#: probe_pod: a short-lived pod, its log, its deletion.
PROBE_POD: tuple[Need, ...] = (("create get delete", "pods", NS), ("get", "pods/log", NS))


@dataclass(frozen=True)
class SuiteNeeds:
    """What a suite module's non-disruptive tests need, and what its disruptive ones add."""

    safe: tuple[Need, ...] = ()
    disruptive: tuple[Need, ...] = ()


#: Suite module file name -> its needs (beyond BASE, and EPHEMERAL in ephemeral mode).
SUITES: dict[str, SuiteNeeds] = {
    "test_static.py": SuiteNeeds(),
    "test_smoke.py": SuiteNeeds(safe=(*INGRESS, EXEC)),
    "test_ingress.py": SuiteNeeds(safe=INGRESS),
    "test_guide_figures.py": SuiteNeeds(
        safe=(
            ("list", "services", NS),
            ("list", "ingresses.networking.k8s.io", NS),
            ("list", "horizontalpodautoscalers.autoscaling", NS),
            ("list", "verticalpodautoscalers.autoscaling.k8s.io", NS),
        )
    ),
    "test_connectivity.py": SuiteNeeds(
        safe=(
            EXEC,
            *PROBE_POD,
            ("get", "services", NS),
            ("get", "namespaces", NS),
            ("list", "networkpolicies.networking.k8s.io", NS),
            ("list", "endpointslices.discovery.k8s.io", NS),
        )
    ),
    "test_probes.py": SuiteNeeds(
        disruptive=(
            *ROLLOUT_STATUS,
            EXEC,
            ("delete", "pods", NS),
            ("create delete", "deployments.apps", NS),
            ("create delete get", "services", NS),
            ("create delete", "networkpolicies.networking.k8s.io", NS),
            ("list", "endpointslices.discovery.k8s.io", NS),
        )
    ),
    "test_rollout.py": SuiteNeeds(
        disruptive=(
            *ROLLOUT_STATUS,
            *INGRESS,
            EXEC,
            ("patch", "deployments.apps", NS),
            ("list", "replicasets.apps", NS),
        )
    ),
    "test_autoscaling.py": SuiteNeeds(
        safe=(
            ("list", "pods.metrics.k8s.io", NS),
            ("get", "verticalpodautoscalers.autoscaling.k8s.io", NS),
        ),
        disruptive=(
            *INGRESS,
            ("list patch", "horizontalpodautoscalers.autoscaling", NS),
            ("list", "nodes", CLUSTER),
            ("create delete", "configmaps", NS),
            ("create delete", "pods", NS),
        ),
    ),
    "test_nodes.py": SuiteNeeds(
        safe=(
            ("list", "nodes", CLUSTER),
            ("get", "persistentvolumeclaims", NS),
            ("get", "persistentvolumes", CLUSTER),
        ),
        disruptive=(
            *INGRESS,
            ("get patch", "nodes", CLUSTER),
            ("create", "pods/eviction", NS),
            ("list", "poddisruptionbudgets.policy", NS),
        ),
    ),
    "test_tls.py": SuiteNeeds(
        safe=(
            *INGRESS,
            ("get", "clusterissuers.cert-manager.io", CLUSTER),
            ("list", "certificates.cert-manager.io", NS),
            ("list", "ingresses.networking.k8s.io", NS),
        ),
        disruptive=(
            ("get", "certificates.cert-manager.io", NS),
            ("patch", "certificates/status.cert-manager.io", NS),
        ),
    ),
    "test_backup_restore.py": SuiteNeeds(
        safe=(
            *INGRESS,
            EXEC,
            ("create get delete", "configmaps", NS),
            ("create delete", "secrets", NS),
            ("list", "backupstoragelocations.velero.io", VELERO),
            ("create get list delete", "backups.velero.io", VELERO),
            ("create get list delete", "restores.velero.io", VELERO),
            ("create", "deletebackuprequests.velero.io", VELERO),
            ("list", "podvolumebackups.velero.io", VELERO),
            ("list", "podvolumerestores.velero.io", VELERO),
            ("list", "backuprepositories.velero.io", VELERO),
            ("get", "secrets", VELERO),
            ("list", "pods", VELERO),
            ("get create", "pods/portforward", VELERO),
            # the restore into a second namespace the gate creates and deletes
            ("create get delete", "namespaces", CLUSTER),
            ("get", "serviceaccounts", CLUSTER),
            ("get list", "pods", CLUSTER),
            ("list", "deployments.apps", CLUSTER),
            ("list", "statefulsets.apps", CLUSTER),
            ("list", "events", CLUSTER),
            ("get create", "pods/exec", CLUSTER),
        ),
        disruptive=(("get delete patch", "namespaces", NS),),
    ),
}


def suite_modules(nodeids: Iterable[str]) -> list[str]:
    """The suite modules (file names the table knows) of the selected tests' node ids."""
    names = (PurePosixPath(nodeid.split("::", 1)[0]).name for nodeid in nodeids)
    return list(dict.fromkeys(name for name in names if name in SUITES))


def needs_of(modules: Iterable[str], *, ephemeral: bool, disruptive: bool) -> list[Need]:
    """The table's needs for a run of ``modules``: BASE, EPHEMERAL when the gate deploys,
    each module's safe part, and its disruptive part when disruptive tests may run."""
    needs: list[Need] = [*BASE, *(EPHEMERAL if ephemeral else ())]
    for module in modules:
        entry = SUITES[module]
        needs += entry.safe + (entry.disruptive if disruptive else ())
    return needs


def accesses(needs: Iterable[Need], namespace: str | None) -> list[Access]:
    """The needs as Access values: NS in ``namespace`` (None: the gate's own namespaces,
    so every namespace), VELERO in Velero's, CLUSTER without a namespace."""
    where = {NS: namespace, CLUSTER: None, VELERO: VELERO_NAMESPACE}
    found: list[Access] = []
    for verbs, resource, scope in needs:
        found += parse(verbs, resource, where[scope])
    return list(dict.fromkeys(found))


def needed(
    nodeids: Iterable[str], namespace: str | None, *, disruptive_allowed: bool
) -> list[Access]:
    """What a run of the selected tests needs (the preflight asks for exactly these).

    Disruptive tests run in a gate-created namespace, or with --codelab-allow-disruptive."""
    ephemeral = namespace is None
    needs = needs_of(
        suite_modules(nodeids), ephemeral=ephemeral, disruptive=ephemeral or disruptive_allowed
    )
    return accesses(needs, namespace)


# ------------------------------------------------------------------ rbac/ generation

#: The example Roles' namespace: where CodeLab runs (``--codelab-namespace codelab``).
CODELAB_NAMESPACE = "codelab"
#: The gate's account and its own namespace (where it runs as a Job, rbac/gate-job.yaml):
#: outside CodeLab's, so that a disruptive check deleting and restoring CodeLab's namespace
#: does not delete the account running it.
SERVICE_ACCOUNT = "codelab-gate"
SERVICE_ACCOUNT_NAMESPACE = "codelab-gate"


def _split(needs: Iterable[Need]) -> dict[str, set[Access]]:
    """Needs by where they apply, as namespace-less Access values (a Role's view)."""
    by_scope: dict[str, set[Access]] = {NS: set(), CLUSTER: set(), VELERO: set()}
    for verbs, resource, scope in needs:
        by_scope[scope].update(parse(verbs, resource, None))
    return by_scope


def _meta(name: str, namespace: str | None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": {"app.kubernetes.io/part-of": "pytest-codelab"}}
    if namespace:
        meta["namespace"] = namespace
    return meta


def _role_and_binding(
    kind: str, name: str, namespace: str | None, grants: set[Access]
) -> list[dict[str, Any]]:
    """A Role or ClusterRole granting ``grants`` and its binding to the gate's account."""
    api = "rbac.authorization.k8s.io"
    role: dict[str, Any] = {
        "apiVersion": f"{api}/v1",
        "kind": kind,
        "metadata": _meta(name, namespace),
    }
    role["rules"] = rbac_rules(grants)
    binding = {
        "apiVersion": f"{api}/v1",
        "kind": f"{kind}Binding",
        "metadata": _meta(name, namespace),
        "roleRef": {"apiGroup": api, "kind": kind, "name": name},
        "subjects": [
            {
                "kind": "ServiceAccount",
                "name": SERVICE_ACCOUNT,
                "namespace": SERVICE_ACCOUNT_NAMESPACE,
            }
        ],
    }
    return [role, binding]


def _documents(name: str, by_scope: dict[str, set[Access]]) -> list[dict[str, Any]]:
    """NS grants as a Role in ``codelab``, CLUSTER ones as a ClusterRole, VELERO ones as a
    Role in Velero's namespace; each bound to the gate's service account."""
    docs: list[dict[str, Any]] = []
    layout = (
        (NS, "Role", name, CODELAB_NAMESPACE),
        (CLUSTER, "ClusterRole", f"{name}-cluster", None),
        (VELERO, "Role", f"{name}-velero", VELERO_NAMESPACE),
    )
    for scope, kind, role_name, namespace in layout:
        if by_scope.get(scope):
            docs += _role_and_binding(kind, role_name, namespace, by_scope[scope])
    return docs


def all_needs(*, disruptive: bool) -> list[Need]:
    """Every suite's safe part (and disruptive part), without BASE or EPHEMERAL."""
    needs: list[Need] = []
    for entry in SUITES.values():
        needs += entry.safe + (entry.disruptive if disruptive else ())
    return needs


def role_grants() -> dict[str, dict[str, set[Access]]]:
    """What each shipped file grants, by scope: the safe set of every suite; what the
    disruptive tests add to it; everything, cluster-wide, for ephemeral namespaces."""
    safe = _split([*BASE, *all_needs(disruptive=False)])
    every = _split([*BASE, *all_needs(disruptive=True)])
    ephemeral = _split([*BASE, *EPHEMERAL, *all_needs(disruptive=True)])
    return {
        "namespace-safe.yaml": safe,
        "namespace-disruptive.yaml": {s: every[s] - safe[s] for s in every},
        "ephemeral.yaml": {
            CLUSTER: ephemeral[NS] | ephemeral[CLUSTER],
            VELERO: ephemeral[VELERO],
        },
    }


NAMES = {
    "namespace-safe.yaml": "codelab-gate",
    "namespace-disruptive.yaml": "codelab-gate-disruptive",
    "ephemeral.yaml": "codelab-gate-ephemeral",
}


def rbac_documents() -> dict[str, list[dict[str, Any]]]:
    """The files of ``rbac/`` (name -> YAML documents), generated from the table."""
    return {file: _documents(NAMES[file], grants) for file, grants in role_grants().items()}


def rbac_text(documents: list[dict[str, Any]]) -> str:
    """One rbac/ file's text: a header saying where it comes from, then the documents."""
    header = (
        "# Generated from src/pytest_codelab/permissions.py (the preflight's table); do not\n"
        "# edit: run `python -m pytest_codelab.permissions rbac` after changing the table.\n"
    )
    return header + yaml.safe_dump_all(documents, sort_keys=False)


def write_rbac(folder: Path) -> list[Path]:
    """Write the rbac/ files into ``folder``; the paths written."""
    written = []
    for name, documents in rbac_documents().items():
        path = folder / name
        path.write_text(rbac_text(documents), encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":  # python -m pytest_codelab.permissions rbac
    for written_path in write_rbac(Path(sys.argv[1] if len(sys.argv) > 1 else "rbac")):
        print(written_path)
