"""The plugin's hooks: markers, collection, preflight errors, xdist hand-over, diagnostics."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from pytest_codelab.options import NO_CLUSTER

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
    assert len(errors) == 1, errors
    assert errors[0].startswith(
        "ERROR: preflight: missing permissions: create namespaces, create configmaps, "
    )
    assert "create deployments.apps, " in errors[0]
    assert errors[0].endswith("(context fake; rbac/ has the Roles that grant them)")
    assert "get pods" not in errors[0]  # allowed ones are not named


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


def test_rbac_denial_with_xdist_is_one_line(
    pytester: pytest.Pytester, fake_apiserver: FakeApiServer
) -> None:
    """With xdist the controller collects nothing: the first worker's node ids drive the
    preflight, which still stops the run with one line and a usage error."""
    fake_apiserver.allowed = lambda attrs: attrs.get("subresource") != "exec"
    kubeconfig = fake_apiserver.kubeconfig(pytester.path / "kc")
    pytester.makepyfile(test_smoke="def test_x(codelab_cluster):\n    pass\n")
    result = pytester.runpytest_subprocess(
        "-n",
        "2",
        "--codelab-cluster=existing",
        f"--codelab-kubeconfig={kubeconfig}",
        "--codelab-namespace=codelab",
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.stderr.lines if line.strip()]
    assert errors == [
        "ERROR: preflight: missing permissions: get pods/exec in namespace codelab, "
        "create pods/exec in namespace codelab (context fake; rbac/ has the Roles that grant "
        "them)"
    ]
    assert "INTERNALERROR" not in result.stdout.str()


def test_disruptive_needs_are_asked_only_when_disruptive_tests_may_run(
    pytester: pytest.Pytester, fake_apiserver: FakeApiServer
) -> None:
    kubeconfig = fake_apiserver.kubeconfig(pytester.path / "kc")
    pytester.makepyfile(test_probes="def test_x(codelab_cluster):\n    pass\n")
    args = ["--codelab-cluster=existing", f"--codelab-kubeconfig={kubeconfig}"]
    # In a subprocess: the module is named like the bundled suite (the table is per
    # module), which another test of this process may have imported already.
    pytester.runpytest_subprocess(*args, "--codelab-namespace=codelab").assert_outcomes(passed=1)
    asked = {(a["verb"], a["resource"]) for a in fake_apiserver.reviews}
    assert ("delete", "pods") not in asked and ("get", "pods") in asked
    fake_apiserver.reviews.clear()
    pytester.runpytest_subprocess(
        *args, "--codelab-namespace=codelab", "--codelab-allow-disruptive"
    ).assert_outcomes(passed=1)
    asked = {(a["verb"], a["resource"], a.get("namespace")) for a in fake_apiserver.reviews}
    assert ("delete", "pods", "codelab") in asked


def test_kubeconfig_list_with_the_context_in_the_second_file(
    pytester: pytest.Pytester, fake_apiserver: FakeApiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``KUBECONFIG=a:b`` as kubectl reads it: the gate used to read the first file only
    and report the context as missing."""
    first = pytester.path / "first"
    first.write_text("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\n")
    second = fake_apiserver.kubeconfig(pytester.path / "second", ("other", "fake"))
    monkeypatch.setenv("KUBECONFIG", f"{first}:{second}")
    pytester.makepyfile(
        "def test_x(codelab_cluster):\n    assert codelab_cluster.context == 'fake'\n"
    )
    result = pytester.runpytest_subprocess("--codelab-cluster=existing", "--codelab-context=fake")
    result.assert_outcomes(passed=1)


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
    monkeypatch.setitem(sys.modules, "pytest_codelab.providers.local", None)
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
        from pytest_codelab.run import RUN_KEY

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
