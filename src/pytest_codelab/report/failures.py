"""What the report keeps of a failed cluster test: its namespace's diagnostics, in a folder
of the report dir named after the test."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
from kubernetes import client

from pytest_codelab.errors import one_line
from pytest_codelab.k8s import diagnostics
from pytest_codelab.run import RUN_KEY, ClusterRun
from pytest_codelab.settings import SETTINGS_KEY

#: Failures already diagnosed in this process: the same cached fixture error is not collected
#: again for every test that uses the fixture.
SEEN_FAILURES = pytest.StashKey[dict[str, Path]]()


def report_dir_for(base: Path, nodeid: str) -> Path:
    """A folder name for a test id: readable, filesystem-safe, unique."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid).strip("_")[:120]
    digest = hashlib.sha1(nodeid.encode()).hexdigest()[:8]
    return base / f"{safe}-{digest}"


def diagnose_failure(item: pytest.Item, report: pytest.TestReport) -> None:
    """Save what the test's namespace looked like, once per distinct failure, and point the
    test's report at it (pytest_runtest_makereport)."""
    run: ClusterRun = item.config.stash[RUN_KEY]
    if run.namespace is None or run.api is None or run.handle is None:
        return
    seen = item.config.stash.setdefault(SEEN_FAILURES, {})
    key = f"{run.namespace.name}:{report.when}:{hash(str(report.longrepr))}"
    if key in seen:  # the same cached fixture error again: point at the first collection
        report.sections.append(("codelab diagnostics", f"see {seen[key]}"))
        return
    dest = report_dir_for(item.config.stash[SETTINGS_KEY].report_dir, item.nodeid)
    try:
        index = diagnostics.collect(
            client.CoreV1Api(run.api),
            run.namespace.name,
            dest,
            kubeconfig=str(run.handle.kubeconfig),
            context=run.handle.context,
            scrub=run.scrub,
        )
    except Exception as exc:  # diagnostics must never hide the real failure
        report.sections.append(
            ("codelab diagnostics", f"collection failed: {run.scrub(one_line(str(exc)))}")
        )
        return
    seen[key] = dest
    report.sections.append(
        ("codelab diagnostics", f"written to {dest}\n{index.read_text(encoding='utf-8')}")
    )
