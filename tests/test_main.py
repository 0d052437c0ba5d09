"""``codelab-gate`` (pytest_codelab.__main__): it judges a deployment, so it needs a cluster
or an explicit --codelab-offline, and says so in one line otherwise."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_codelab.__main__ import NEEDS_CLUSTER


def gate(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``python -m pytest_codelab ARGS`` in ``cwd``, with no CODELAB_* setting from the shell."""
    clean = {
        k: v
        for k, v in os.environ.items()
        if (not k.startswith("CODELAB_") or k == "CODELAB_CACHE") and k != "KUBECONFIG"
    }
    return subprocess.run(
        [sys.executable, "-m", "pytest_codelab", "-p", "no:cacheprovider", *args],
        cwd=cwd,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_without_a_cluster_the_gate_stops_with_one_line(tmp_path: Path) -> None:
    result = gate(tmp_path)
    assert result.returncode == pytest.ExitCode.USAGE_ERROR
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [f"ERROR: {NEEDS_CLUSTER}"]
    assert "--codelab-cluster=existing|local" in NEEDS_CLUSTER
    assert "--codelab-offline" in NEEDS_CLUSTER
    assert "passed" not in result.stdout and not (tmp_path / "codelab-report").exists()


def test_listing_the_tests_needs_no_cluster(tmp_path: Path) -> None:
    result = gate(tmp_path, "--collect-only", "-q", "-k", "test_every_hpa_can_scale")
    assert result.returncode == pytest.ExitCode.OK, result.stdout + result.stderr


def test_offline_runs_only_what_needs_no_cluster_and_says_the_rest_was_not(
    tmp_path: Path,
) -> None:
    """--codelab-offline (here from its env var): cluster tests are deselected, so the
    verdict is incomplete and every cluster promise names the offline run as the reason."""
    result = gate(
        tmp_path,
        "-k",
        "test_every_hpa_can_scale",
        "--codelab-report-dir",
        "rep",
        CODELAB_OFFLINE="true",
    )
    assert result.returncode == pytest.ExitCode.OK, result.stdout + result.stderr
    data = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert data["counts"]["passed"] == 1 and data["counts"]["skipped"] == 0
    assert data["verdict"] == "incomplete"
    rows = {row["id"]: row for row in data["promises"]}
    assert rows["vpa"]["status"] == "not checked"
    assert rows["vpa"]["reason"] == (
        "offline run (--codelab-offline): this test needs a cluster (x3)"
    )
    assert rows["best-practices"]["status"] == "passed"
    assert "codelab verdict: incomplete" in result.stdout


def test_offline_and_a_cluster_together_are_refused(tmp_path: Path) -> None:
    # existing, not local: were the check missing, nothing would start a cluster here
    result = gate(tmp_path, "--codelab-offline", CODELAB_CLUSTER="existing")
    assert result.returncode == pytest.ExitCode.USAGE_ERROR
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [
        "ERROR: --codelab-offline: cannot be combined with --codelab-cluster=existing (given by "
        "env CODELAB_CLUSTER): an offline run tests no cluster (from command line)"
    ]
