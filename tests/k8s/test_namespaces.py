"""Ephemeral namespaces: naming, labels, expiry, lifecycle, and deletion after interrupts."""

from __future__ import annotations

import re
import signal
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from kubernetes import client

from pytest_codelab.errors import SafetyError
from pytest_codelab.k8s import kube, namespaces
from pytest_codelab.safety import MANAGED_BY, MANAGED_BY_LABEL

if TYPE_CHECKING:
    from conftest import FakeApiServer

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)

# ----------------------------------------------------------------- pure functions


def test_run_id_is_six_lowercase_hex() -> None:
    ids = {namespaces.new_run_id() for _ in range(50)}
    assert all(re.fullmatch(r"[0-9a-f]{6}", i) for i in ids)
    assert len(ids) > 1


@pytest.mark.parametrize(
    ("run_id", "worker", "name"),
    [("a1b2c3", "main", "codelab-a1b2c3-main"), ("000fff", "gw12", "codelab-000fff-gw12")],
)
def test_namespace_name(run_id: str, worker: str, name: str) -> None:
    assert namespaces.namespace_name(run_id, worker) == name
    assert len(name) <= 63 and re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name)


@pytest.mark.parametrize(
    ("run_id", "worker"), [("ABCDEF", "main"), ("abc", "main"), ("a1b2c3", "w1")]
)
def test_namespace_name_rejects_bad_parts(run_id: str, worker: str) -> None:
    with pytest.raises(ValueError):
        namespaces.namespace_name(run_id, worker)


def test_manifest_has_labels_and_annotations() -> None:
    ns = namespaces.manifest(
        "codelab-a1b2c3-main", "a1b2c3", now=NOW, ttl=timedelta(hours=2), created_by="me@box"
    )
    assert ns.metadata is not None
    assert ns.metadata.labels == {MANAGED_BY_LABEL: MANAGED_BY, "codelab.dev/run-id": "a1b2c3"}
    assert ns.metadata.annotations == {
        "codelab.dev/expires-at": "2026-05-01T14:00:00Z",
        "codelab.dev/created-by": "me@box",
    }


def _ns(labels: dict[str, str] | None, expires: str | None) -> client.V1Namespace:
    annotations = {"codelab.dev/expires-at": expires} if expires else None
    return client.V1Namespace(
        metadata=client.V1ObjectMeta(name="n", labels=labels, annotations=annotations)
    )


MANAGED = {MANAGED_BY_LABEL: MANAGED_BY}


@pytest.mark.parametrize(
    ("labels", "expires", "expired"),
    [
        (MANAGED, "2026-05-01T11:59:59Z", True),
        (MANAGED, "2026-05-01T12:00:00Z", True),
        (MANAGED, "2026-05-01T12:00:01Z", False),
        (MANAGED, None, False),
        (MANAGED, "next tuesday", False),
        (MANAGED, "2026-05-01T10:00:00", True),  # no zone: read as UTC
        ({MANAGED_BY_LABEL: "helm"}, "2020-01-01T00:00:00Z", False),
        (None, "2020-01-01T00:00:00Z", False),
    ],
)
def test_expiry(labels: dict[str, str] | None, expires: str | None, expired: bool) -> None:
    assert namespaces.is_expired(_ns(labels, expires), NOW) is expired


def test_rfc3339_is_utc_with_z() -> None:
    plus_two = datetime(2026, 5, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    assert namespaces.rfc3339(plus_two) == "2026-05-01T12:00:00Z"


def test_delete_command() -> None:
    assert namespaces.delete_command("codelab-a1b2c3-main", "/k/config", "staging") == (
        "kubectl --kubeconfig /k/config --context staging delete namespace codelab-a1b2c3-main"
    )
    assert namespaces.delete_command("codelab-x", "/k/a:/k/b", None) == (
        "KUBECONFIG=/k/a:/k/b kubectl delete namespace codelab-x"
    )


def test_reaper_deletes_what_is_left_and_survives_errors() -> None:
    reaper = namespaces.Reaper()
    calls: list[str] = []

    def boom() -> None:
        calls.append("boom")
        raise RuntimeError("API gone")

    reaper.add("a", lambda: calls.append("a"))
    reaper.add("b", boom)
    reaper.add("c", lambda: calls.append("c"))
    reaper.discard("c")
    assert reaper.pending() == ["a", "b"]
    reaper.delete_all()
    assert sorted(calls) == ["a", "boom"]
    assert reaper.pending() == []


def test_sigterm_handler_installs_and_restores() -> None:
    before = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        restore = namespaces.install_sigterm_handler()
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGTERM)
        restore()
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
        custom = signal.signal(signal.SIGTERM, lambda *a: None)
        assert custom == signal.SIG_DFL
        namespaces.install_sigterm_handler()  # someone else's handler stays
        assert signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, namespaces._interrupt)
    finally:
        signal.signal(signal.SIGTERM, before)


# ----------------------------------------------------------------- against an API server


def _core(fake: FakeApiServer, tmp_path: Path) -> client.CoreV1Api:
    return client.CoreV1Api(kube.new_client(fake.kubeconfig(tmp_path / "kc"), None))


def test_create_and_delete(fake_apiserver: FakeApiServer, tmp_path: Path) -> None:
    core = _core(fake_apiserver, tmp_path)
    info = namespaces.create(core, "codelab-a1b2c3-main", "a1b2c3", timeout=5)
    assert info == namespaces.NamespaceInfo("codelab-a1b2c3-main", created=True, run_id="a1b2c3")
    stored = fake_apiserver.namespaces["codelab-a1b2c3-main"]["metadata"]
    assert stored["labels"][MANAGED_BY_LABEL] == MANAGED_BY
    assert stored["labels"]["codelab.dev/run-id"] == "a1b2c3"
    assert datetime.fromisoformat(stored["annotations"]["codelab.dev/expires-at"]) > datetime.now(
        UTC
    )
    assert "@" in stored["annotations"]["codelab.dev/created-by"]
    namespaces.delete(core, "codelab-a1b2c3-main", timeout=5)
    assert "codelab-a1b2c3-main" not in fake_apiserver.namespaces
    namespaces.delete(core, "codelab-a1b2c3-main", timeout=5)  # already gone: no error


def test_delete_refuses_a_namespace_it_did_not_create(
    fake_apiserver: FakeApiServer, tmp_path: Path
) -> None:
    fake_apiserver.namespaces["prod"] = {"metadata": {"name": "prod", "labels": {"team": "x"}}}
    core = _core(fake_apiserver, tmp_path)
    with pytest.raises(SafetyError, match="refusing to delete namespace prod"):
        namespaces.delete(core, "prod", timeout=5)
    assert "prod" in fake_apiserver.namespaces
    assert fake_apiserver.deleted() == []


def test_reap_expired_deletes_only_expired_managed(
    fake_apiserver: FakeApiServer, tmp_path: Path
) -> None:
    def add(name: str, labels: dict[str, str], expires: str) -> None:
        fake_apiserver.namespaces[name] = {
            "metadata": {
                "name": name,
                "labels": labels,
                "annotations": {"codelab.dev/expires-at": expires},
            }
        }

    add("codelab-000001-main", MANAGED, "2020-01-01T00:00:00Z")
    add("codelab-000002-main", MANAGED, "2999-01-01T00:00:00Z")
    add("someone-else", {"team": "x"}, "2020-01-01T00:00:00Z")
    reaped = namespaces.reap_expired(_core(fake_apiserver, tmp_path))
    assert reaped == ["codelab-000001-main"]
    assert set(fake_apiserver.namespaces) == {"codelab-000002-main", "someone-else"}


# ----------------------------------------------------------------- through the fixture

USES_NAMESPACE = """
import os, signal, time

def test_it(codelab_namespace):
    assert codelab_namespace.created
    print("NAMESPACE", codelab_namespace.name)
    {action}
"""


def _run_gate(
    pytester: pytest.Pytester, fake: FakeApiServer, action: str, *args: str
) -> pytest.RunResult:
    kubeconfig = fake.kubeconfig(pytester.path / "kc")
    pytester.makepyfile(USES_NAMESPACE.format(action=action))
    return pytester.runpytest_subprocess(
        "-s", "--codelab-cluster=existing", f"--codelab-kubeconfig={kubeconfig}", *args
    )


def _namespace_of(result: pytest.RunResult) -> str:
    match = re.search(r"NAMESPACE (codelab-[0-9a-f]{6}-main)", result.stdout.str())
    assert match, result.stdout.str()
    return match.group(1)


@pytest.mark.parametrize(
    "action",
    [
        "pass",
        "assert False, 'boom'",
        "raise KeyboardInterrupt",
        "os.kill(os.getpid(), signal.SIGINT); time.sleep(10)",
        "os.kill(os.getpid(), signal.SIGTERM); time.sleep(10)",
    ],
    ids=["pass", "fail", "keyboard-interrupt", "sigint", "sigterm"],
)
def test_namespace_is_deleted_however_the_run_ends(
    pytester: pytest.Pytester, fake_apiserver: FakeApiServer, action: str
) -> None:
    result = _run_gate(pytester, fake_apiserver, action)
    name = _namespace_of(result)
    assert fake_apiserver.deleted() == [name]
    assert fake_apiserver.namespaces == {}
    if "kill" in action or "Interrupt" in action:
        assert result.ret == pytest.ExitCode.INTERRUPTED


def test_keep_namespace_keeps_it_and_says_how_to_delete(
    pytester: pytest.Pytester, fake_apiserver: FakeApiServer
) -> None:
    result = _run_gate(pytester, fake_apiserver, "pass", "--codelab-keep-namespace")
    name = _namespace_of(result)
    assert result.ret == 0
    assert list(fake_apiserver.namespaces) == [name]
    assert fake_apiserver.deleted() == []
    kubeconfig = pytester.path / "kc"
    result.stdout.fnmatch_lines(
        [f"kept namespace {name}; delete it with: kubectl --kubeconfig {kubeconfig} "
         f"--context fake delete namespace {name}"]
    )  # fmt: skip


def test_given_namespace_is_used_as_is(
    pytester: pytest.Pytester, fake_apiserver: FakeApiServer
) -> None:
    fake_apiserver.namespaces["codelab"] = {"metadata": {"name": "codelab"}}
    kubeconfig = fake_apiserver.kubeconfig(pytester.path / "kc")
    pytester.makepyfile(
        "def test_it(codelab_namespace):\n"
        "    assert codelab_namespace.name == 'codelab'\n"
        "    assert not codelab_namespace.created\n"
    )
    result = pytester.runpytest_subprocess(
        "--codelab-cluster=existing",
        f"--codelab-kubeconfig={kubeconfig}",
        "--codelab-namespace=codelab",
    )
    assert result.ret == 0
    assert fake_apiserver.deleted() == []
    assert ("POST", "/api/v1/namespaces") not in fake_apiserver.requests


@pytest.mark.slow
def test_each_xdist_worker_gets_its_own_namespace(
    pytester: pytest.Pytester, fake_apiserver: FakeApiServer
) -> None:
    """The controller hands the cluster to the workers; names share the run id."""
    kubeconfig = fake_apiserver.kubeconfig(pytester.path / "kc")
    pytester.makepyfile(
        """
        import time, pytest

        @pytest.mark.parametrize("i", range(4))
        def test_it(codelab_namespace, i):
            time.sleep(0.2)
        """
    )
    result = pytester.runpytest_subprocess(
        "-n", "2", "--codelab-cluster=existing", f"--codelab-kubeconfig={kubeconfig}"
    )
    result.assert_outcomes(passed=4)
    deleted = sorted(fake_apiserver.deleted())
    assert len(deleted) == 2
    assert len({name.split("-")[1] for name in deleted}) == 1  # one run id
    assert [name.rsplit("-", 1)[1] for name in deleted] == ["gw0", "gw1"]
    assert fake_apiserver.namespaces == {}
