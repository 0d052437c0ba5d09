"""On a real cluster: the gate's namespace is deleted after a failing test and after Ctrl-C,
and kept (with the delete command printed) under --codelab-keep-namespace.

Each case runs an inner pytest session (pytester, in a subprocess) against the cluster
under test, then looks the namespace up through the real API.
"""

from __future__ import annotations

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from pytest_codelab.providers.base import ClusterHandle

pytestmark = [pytest.mark.e2e, pytest.mark.cluster]

INNER = """
import pathlib

def test_inner(codelab_namespace):
    pathlib.Path({out!r}).write_text(codelab_namespace.name)
    {action}
"""


def _run_inner(
    pytester: pytest.Pytester, handle: ClusterHandle, action: str, *extra: str
) -> tuple[pytest.RunResult, str]:
    out = pytester.path / "namespace.txt"
    pytester.makepyfile(test_inner=INNER.format(out=str(out), action=action))
    args = [
        "-p",
        "no:cacheprovider",
        "--codelab-cluster=existing",
        f"--codelab-kubeconfig={handle.kubeconfig}",
        *extra,
    ]
    if handle.context:
        args.append(f"--codelab-context={handle.context}")
    result = pytester.runpytest_subprocess(*args, timeout=300)
    assert out.exists(), result.stdout.str()[-2000:]
    return result, out.read_text()


def _exists(core: client.CoreV1Api, name: str) -> bool:
    try:
        core.read_namespace(name)
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


@pytest.mark.parametrize(
    "action", ["assert False, 'boom'", "raise KeyboardInterrupt"], ids=["failure", "ctrl-c"]
)
def test_namespace_deleted_after_failure_and_interrupt(
    pytester: pytest.Pytester,
    codelab_cluster: ClusterHandle,
    core_v1: client.CoreV1Api,
    action: str,
) -> None:
    """The ephemeral namespace is gone when the inner run ends, however it ended."""
    result, name = _run_inner(pytester, codelab_cluster, action)
    assert result.ret != 0
    assert name.startswith("codelab-")
    assert not _exists(core_v1, name), f"namespace {name} was left behind"


def test_keep_namespace_keeps_it_and_prints_delete_command(
    pytester: pytest.Pytester,
    codelab_cluster: ClusterHandle,
    core_v1: client.CoreV1Api,
) -> None:
    """--codelab-keep-namespace keeps the namespace, labelled as the gate's, and says how to
    delete it."""
    result, name = _run_inner(pytester, codelab_cluster, "pass", "--codelab-keep-namespace")
    try:
        assert result.ret == 0
        ns = core_v1.read_namespace(name)
        assert ns.metadata.labels["app.kubernetes.io/managed-by"] == "pytest-codelab"
        result.stdout.fnmatch_lines([f"*kubectl*delete namespace {name}*"])
    finally:
        core_v1.delete_namespace(name)
