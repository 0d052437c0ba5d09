"""The plugin's hooks: markers, collection, preflight errors, xdist hand-over, diagnostics."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from kubernetes import client

from pytest_codelab import diagnostics
from pytest_codelab.plugin import NO_CLUSTER, report_dir_for

if TYPE_CHECKING:
    from conftest import FakeApiServer

MIXED_TESTS = """
import pytest

@pytest.fixture
def my_stack_user(codelab_namespace):
    return codelab_namespace

def test_offline_first():
    pass

def test_uses_core(core_v1):
    pass

def test_offline_second():
    pass

@pytest.mark.cluster
def test_marked_cluster():
    pass

@pytest.mark.disruptive
def test_disruptive():
    pass

def test_transitive(my_stack_user):
    pass
"""


def test_markers_are_registered(pytester: pytest.Pytester) -> None:
    text = pytester.runpytest("--markers").stdout.str()
    for marker in ("cluster:", "e2e:", "disruptive:", "offline:", "requirement(text):", "slow:"):
        assert f"@pytest.mark.{marker}" in text


def test_fixtures_are_documented(pytester: pytest.Pytester) -> None:
    text = pytester.runpytest("--fixtures").stdout.str()
    for name in (
        "codelab_settings",
        "codelab_cluster",
        "k8s_client",
        "core_v1",
        "apps_v1",
        "codelab_namespace",
        "codelab_manifest_objects",
        "codelab_stack",
        "waiter",
        "pod_exec",
        "port_forward",
        "probe_pod",
    ):
        match = re.search(rf"^{name} \[?.*\n\s+(\S.*)$", text, re.MULTILINE)
        assert match, f"{name} missing from --fixtures"
        assert "no docstring" not in match.group(1)


def test_cluster_tests_skip_without_cluster_naming_the_flag(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(MIXED_TESTS)
    reprec = pytester.inline_run()
    passed, skipped, failed = reprec.listoutcomes()
    assert [r.nodeid.split("::")[1] for r in passed] == [
        "test_offline_first",
        "test_offline_second",
    ]
    assert not failed
    reasons = {r.nodeid.split("::")[1]: r.longrepr[2] for r in skipped}  # type: ignore[index]
    assert set(reasons) == {
        "test_uses_core",
        "test_marked_cluster",
        "test_disruptive",
        "test_transitive",
    }
    assert set(reasons.values()) == {"Skipped: " + NO_CLUSTER}
    assert "--codelab-cluster=existing|local" in NO_CLUSTER


def test_cluster_tests_are_e2e_and_run_last(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(MIXED_TESTS)
    order = [
        line.split("::")[1]
        for line in pytester.runpytest("--collect-only", "-q").stdout.lines
        if "::" in line
    ]
    assert order == [
        "test_offline_first",
        "test_offline_second",
        "test_uses_core",
        "test_marked_cluster",
        "test_disruptive",
        "test_transitive",
    ]
    offline = pytester.runpytest("-m", "not e2e")
    offline.assert_outcomes(passed=2, deselected=4)


def test_one_line_errors_without_traceback(
    pytester: pytest.Pytester, make_kubeconfig: Callable[..., Path], closed_port: int
) -> None:
    """Missing kubeconfig, unknown context, unreachable API server: one line, exit != 0."""
    kubeconfig = make_kubeconfig(
        pytester.path / "kc", f"https://127.0.0.1:{closed_port}", ("dev", "prod")
    )
    pytester.makepyfile("def test_x(codelab_cluster):\n    pass\n")
    cases = {
        "kubeconfig not found: /no/such/kubeconfig": ["--codelab-kubeconfig=/no/such/kubeconfig"],
        "context 'staging' not found in": [
            f"--codelab-kubeconfig={kubeconfig}",
            "--codelab-context=staging",
        ],
        "cannot reach the API server https://127.0.0.1:": [f"--codelab-kubeconfig={kubeconfig}"],
    }
    for expected, args in cases.items():
        result = pytester.runpytest_subprocess("--codelab-cluster=existing", *args)
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        errors = [line for line in result.stderr.lines if line.strip()]
        assert len(errors) == 1 and expected in errors[0], errors
        assert "Traceback" not in result.stdout.str() + result.stderr.str()
    unknown = pytester.runpytest_subprocess(
        "--codelab-cluster=existing", f"--codelab-kubeconfig={kubeconfig}", "--codelab-context=x"
    )
    assert "available: dev, prod" in unknown.stderr.str()
    unreachable = pytester.runpytest_subprocess(
        "--codelab-cluster=existing", f"--codelab-kubeconfig={kubeconfig}"
    )
    assert "Connection refused" in unreachable.stderr.str()


def test_not_a_kubeconfig(pytester: pytest.Pytester) -> None:
    bad = pytester.path / "kc"
    bad.write_text("clusters: [\n", encoding="utf-8")
    result = pytester.runpytest("--codelab-cluster=existing", f"--codelab-kubeconfig={bad}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert f"ERROR: kubeconfig {bad} is not valid YAML" in result.stderr.str()


def test_rbac_denial_names_the_missing_permissions(
    pytester: pytest.Pytester, fake_apiserver: FakeApiServer
) -> None:
    fake_apiserver.allowed = lambda attrs: attrs["verb"] != "create"
    kubeconfig = fake_apiserver.kubeconfig(pytester.path / "kc")
    pytester.makepyfile("def test_x(codelab_cluster):\n    pass\n")
    result = pytester.runpytest_subprocess(
        "--codelab-cluster=existing", f"--codelab-kubeconfig={kubeconfig}"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.stderr.lines if line.strip()]
    assert errors == [
        "ERROR: context fake is not allowed to create namespaces (RBAC); "
        "grant these or use another context"
    ]


def test_rbac_for_a_given_namespace_is_checked_in_it(
    pytester: pytest.Pytester, fake_apiserver: FakeApiServer
) -> None:
    kubeconfig = fake_apiserver.kubeconfig(pytester.path / "kc")
    pytester.makepyfile("def test_x(codelab_cluster):\n    pass\n")
    result = pytester.runpytest(
        "--codelab-cluster=existing",
        f"--codelab-kubeconfig={kubeconfig}",
        "--codelab-namespace=codelab",
    )
    result.assert_outcomes(passed=1)
    checked = {(a["verb"], a["resource"], a.get("namespace")) for a in fake_apiserver.reviews}
    assert ("list", "pods", "codelab") in checked
    assert not any(resource == "namespaces" for _, resource, _ in checked)


def test_rejected_credentials(pytester: pytest.Pytester, fake_apiserver: FakeApiServer) -> None:
    fake_apiserver.version_status = 401
    kubeconfig = fake_apiserver.kubeconfig(pytester.path / "kc")
    result = pytester.runpytest("--codelab-cluster=existing", f"--codelab-kubeconfig={kubeconfig}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "rejected the credentials of context fake (401 Unauthorized)" in result.stderr.str()


def test_existing_cluster_handle_and_header(
    pytester: pytest.Pytester, fake_apiserver: FakeApiServer
) -> None:
    kubeconfig = fake_apiserver.kubeconfig(pytester.path / "kc", ("fake", "other"))
    pytester.makepyfile(
        "def test_x(codelab_cluster):\n"
        "    assert codelab_cluster.context == 'other'\n"
        "    assert codelab_cluster.ingress_url == 'http://codelab.test'\n"
        "    assert not codelab_cluster.created\n"
    )
    result = pytester.runpytest(
        "--codelab-cluster=existing",
        f"--codelab-kubeconfig={kubeconfig}",
        "--codelab-context=other",
        "--codelab-ingress-url=http://codelab.test",
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [f"codelab: cluster existing:other: kubeconfig {kubeconfig}, context other, *"]
    )


def test_local_engine_missing_is_one_line(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The registry imports the engine lazily; without it, one line (never a build)."""
    monkeypatch.setitem(sys.modules, "pytest_codelab.engine.provider", None)
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest("--codelab-cluster=local")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.stderr.lines if line.strip()]
    assert len(errors) == 1
    assert errors[0].startswith("ERROR: local cluster engine not available: ")


def test_xdist_workers_share_the_run(pytester: pytest.Pytester) -> None:
    """One run id for all workers; notes made on workers reach the controller's summary."""
    pytester.makepyfile(
        """
        import pytest
        from pytest_codelab.cluster import RUN_KEY

        @pytest.mark.parametrize("i", range(6))
        def test_record(pytestconfig, i):
            run = pytestconfig.stash[RUN_KEY]
            run.note(f"note from {run.worker}")
            (pytestconfig.rootpath / f"run-{i}.txt").write_text(f"{run.run_id} {run.worker}")
        """
    )
    result = pytester.runpytest_subprocess("-n", "2")
    result.assert_outcomes(passed=6)
    seen = [(pytester.path / f"run-{i}.txt").read_text().split() for i in range(6)]
    assert len({run_id for run_id, _ in seen}) == 1
    assert re.fullmatch(r"[0-9a-f]{6}", seen[0][0])
    assert {worker for _, worker in seen} <= {"gw0", "gw1"}
    assert re.search(r"^note from gw[01]$", result.stdout.str(), re.MULTILINE)


# ----------------------------------------------------------------- failure diagnostics

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


def test_report_dir_names_are_safe_and_unique(tmp_path: Path) -> None:
    a = report_dir_for(tmp_path, "suites/test_x.py::test_y[a/b c]")
    b = report_dir_for(tmp_path, "suites/test_x.py::test_y[a_b_c]")
    assert a != b and a.parent == b.parent == tmp_path
    assert re.fullmatch(r"[A-Za-z0-9_.-]+", a.name)


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
