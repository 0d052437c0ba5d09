"""On a real cluster with Velero: the backup and restore suite fails, naming what was lost,
when the manifests under test leave PostgreSQL's volume out of the backup.

The fault is a plausible operator slip: ``backup.velero.io/backup-volumes-excludes`` on the
PostgreSQL pods (say, to make backups smaller). Velero then completes the Backup without
PostgreSQL's data, and a restore brings back an empty database. One inner gate run
(pytester, in a subprocess) deploys the faulty copy into its own namespace.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from pytest_codelab.fixtures.handles import skip_if_missing_kind

InnerGate = Callable[..., pytest.RunResult]

pytestmark = [pytest.mark.e2e, pytest.mark.cluster, pytest.mark.slow]

EXCLUDES = "backup.velero.io/backup-volumes-excludes"
SELECTED = (
    "test_backup_restore.py::test_backup_completes_with_volume_data",
    "test_backup_restore.py::test_restore_into_new_namespace",
)


def _exclude_postgres_volume(obj: dict[str, Any]) -> None:
    if obj["kind"] == "StatefulSet" and obj["metadata"]["name"] == "postgres":
        template = obj["spec"]["template"].setdefault("metadata", {})
        template.setdefault("annotations", {})[EXCLUDES] = "postgres-data"


def test_backup_suite_fails_when_postgres_data_is_not_backed_up(
    inner_gate: InnerGate,
    faulty_manifests: Callable[..., Path],
    k8s_client: client.ApiClient,
) -> None:
    skip_if_missing_kind(k8s_client, "velero.io/v1", "Backup")
    manifests = faulty_manifests("faulty", _exclude_postgres_volume)
    assert EXCLUDES in (manifests / "10-postgres.yaml").read_text()
    result = inner_gate(
        f"--codelab-manifests={manifests}", "--codelab-allow-disruptive", tests=list(SELECTED)
    )
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "*volumes without a Completed PodVolumeBackup: *postgres-0/postgres-data*",
            # The restored copy's PostgreSQL is a new, empty database.
            '*postgres in *-rst: *relation "codelab_gate_backup" does not exist*',
            "FAILED *test_restore_into_new_namespace*",
        ]
    )
