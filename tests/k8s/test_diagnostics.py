"""Failure diagnostics: what a failed test's namespace looked like, in files that start with
the kubectl command showing the same live, and never a secret value."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest
from kubernetes import client

from pytest_codelab.k8s import diagnostics

if TYPE_CHECKING:
    from conftest import FakeApiServer

SECRET_VALUE = "s3cr3t-value-never-dumped"


POD = {
    "metadata": {"name": "api-0", "namespace": "x", "labels": {"app": "api"}},
    "spec": {
        "containers": [
            {
                "name": "app",
                "image": "ghcr.io/codelab/gateway:1.0.0",
                "env": [
                    {"name": "INTERNAL_API_KEY", "value": SECRET_VALUE},
                    {
                        "name": "DATABASE_URL",
                        "valueFrom": {
                            "secretKeyRef": {"name": "postgres-secret", "key": "connection-string"}
                        },
                    },
                ],
            }
        ]
    },
    "status": {
        "phase": "Running",
        "conditions": [
            {"type": "Ready", "status": "False", "reason": "ContainersNotReady", "message": "app"}
        ],
        "containerStatuses": [
            {
                "name": "app",
                "image": "ghcr.io/codelab/gateway:1.0.0",
                "imageID": "",
                "ready": False,
                "restartCount": 3,
                "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s"}},
                "lastState": {"terminated": {"exitCode": 1, "reason": "Error"}},
            }
        ],
    },
}


EVENTS = [
    {
        "metadata": {"name": f"e{i}", "namespace": "x"},
        "involvedObject": {"kind": "Pod", "name": "api-0"},
        "reason": reason,
        "message": message,
        "type": kind,
        "lastTimestamp": stamp,
    }
    for i, (reason, message, kind, stamp) in enumerate(
        [
            ("BackOff", "Back-off restarting failed container", "Warning", "2026-01-01T00:02:00Z"),
            ("Pulled", "Container image pulled", "Normal", "2026-01-01T00:01:00Z"),
        ]
    )
]


def _pod() -> client.V1Pod:
    return client.V1Pod.from_dict(POD)


def test_pod_text_explains_and_hides_env_values() -> None:
    text = diagnostics.describe_pod(_pod())
    assert "CrashLoopBackOff" in text and "Restarts:   3" in text
    assert "INTERNAL_API_KEY" in text
    assert "DATABASE_URL (from secret postgres-secret/connection-string)" in text
    assert SECRET_VALUE not in text
    summary = diagnostics.pod_summary(_pod())
    assert summary.startswith("pod/api-0 Running; Ready=False (ContainersNotReady: app)")
    assert "app waiting: CrashLoopBackOff back-off 40s" in summary
    assert "app restarted 3x, last exit 1 (Error)" in summary


def test_kubectl_prefix_quotes() -> None:
    assert (
        diagnostics.kubectl("/a b/kc", "ctx", "ns")
        == "kubectl --kubeconfig '/a b/kc' --context ctx -n ns"
    )
    assert diagnostics.kubectl(None, None, "ns") == "kubectl -n ns"


def test_kubectl_prefix_for_a_kubeconfig_list() -> None:
    """--kubeconfig takes one file: a KUBECONFIG list travels in the environment."""
    assert (
        diagnostics.kubectl("/a/one:/b b/two", "ctx", "ns")
        == "KUBECONFIG='/a/one:/b b/two' kubectl --context ctx -n ns"
    )


def test_failure_collects_diagnostics(
    pytester: pytest.Pytester, fake_apiserver: FakeApiServer
) -> None:
    fake_apiserver.pods["*"] = [POD]
    fake_apiserver.events["*"] = EVENTS
    kubeconfig = fake_apiserver.kubeconfig(pytester.path / "kc")
    report = pytester.path / "report"
    pytester.makepyfile(
        "def test_broken(codelab_namespace):\n"
        "    assert False, 'gateway did not answer'\n"
        "def test_fine(codelab_namespace):\n"
        "    pass\n"
    )
    result = pytester.runpytest_subprocess(
        "--codelab-cluster=existing",
        f"--codelab-kubeconfig={kubeconfig}",
        f"--codelab-report-dir={report}",
    )
    result.assert_outcomes(passed=1, failed=1)
    out = result.stdout.str()
    assert "codelab diagnostics" in out and "written to" in out
    (dest,) = [p for p in report.iterdir() if p.is_dir()]
    assert "test_broken" in dest.name
    files = {p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()}
    assert files == {
        "index.txt",
        "events.txt",
        "pods/api-0.txt",
        "logs/api-0.app.log",
        "logs/api-0.app.previous.log",
    }
    namespace = re.search(r"-n (codelab-[0-9a-f]{6}-main)", out)
    assert namespace
    prefix = f"# kubectl --kubeconfig {kubeconfig} --context fake -n {namespace.group(1)}"
    events = (dest / "events.txt").read_text().splitlines()
    assert events[0] == f"{prefix} get events --sort-by=.lastTimestamp"
    assert "Pulled" in events[1] and "BackOff" in events[2]  # oldest first
    previous = (dest / "logs/api-0.app.previous.log").read_text().splitlines()
    assert previous[0] == f"{prefix} logs api-0 -c app --tail=2000 --previous"
    assert previous[1] == "log of api-0/app previous=true"
    for path in dest.rglob("*"):
        if path.is_file():
            assert SECRET_VALUE not in path.read_text()
