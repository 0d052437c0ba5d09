"""Safety rails: disruption only where the gate owns the namespace; never delete others'."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from pytest_codelab.errors import SafetyError
from pytest_codelab.fixtures.session import _quiet_delete
from pytest_codelab.k8s.namespaces import NamespaceInfo
from pytest_codelab.k8s.waiting import Timeouts
from pytest_codelab.providers.base import ClusterHandle
from pytest_codelab.safety import (
    MANAGED_BY,
    MANAGED_BY_LABEL,
    check_deletable,
    disruptive_skip_reason,
    is_managed,
)
from pytest_codelab.settings import Settings

if TYPE_CHECKING:
    from conftest import FakeApiServer

OWN = NamespaceInfo("codelab-a1b2c3-main", created=True, run_id="a1b2c3")
THEIRS = NamespaceInfo("codelab", created=False)


def test_disruption_allowed_in_own_namespace() -> None:
    assert disruptive_skip_reason(Settings(), OWN) is None


def test_disruption_refused_elsewhere_with_the_way_out() -> None:
    reason = disruptive_skip_reason(Settings(), THEIRS)
    assert reason is not None
    assert "namespace codelab" in reason and "--codelab-allow-disruptive" in reason


def test_disruption_allowed_elsewhere_when_asked() -> None:
    assert disruptive_skip_reason(Settings(allow_disruptive=True), THEIRS) is None


@pytest.mark.parametrize(
    ("labels", "managed"),
    [
        ({MANAGED_BY_LABEL: MANAGED_BY}, True),
        ({MANAGED_BY_LABEL: "Helm"}, False),
        ({"app": "codelab"}, False),
        (None, False),
    ],
)
def test_only_labelled_namespaces_are_deletable(
    labels: dict[str, str] | None, managed: bool
) -> None:
    assert is_managed(labels) is managed
    if managed:
        check_deletable("n", labels)
    else:
        with pytest.raises(SafetyError, match="refusing to delete namespace n"):
            check_deletable("n", labels)


def test_exit_safety_net_also_checks_the_label(fake_apiserver: FakeApiServer, tmp_path) -> None:  # type: ignore[no-untyped-def]
    fake_apiserver.namespaces["codelab-a1b2c3-main"] = {
        "metadata": {"name": "codelab-a1b2c3-main", "labels": {"team": "x"}}
    }
    handle = ClusterHandle(fake_apiserver.kubeconfig(tmp_path / "kc"), "fake", None, "fake")
    with pytest.raises(SafetyError):
        _quiet_delete(handle, "codelab-a1b2c3-main", Timeouts().api)
    assert fake_apiserver.deleted() == []


DISRUPTIVE = """
import pytest

@pytest.mark.disruptive
def test_kill_pods(codelab_namespace):
    pass
"""


@pytest.mark.parametrize(
    ("args", "outcome"),
    [
        (["--codelab-namespace=codelab"], "skipped"),
        (["--codelab-namespace=codelab", "--codelab-allow-disruptive"], "passed"),
        ([], "passed"),  # the gate's own ephemeral namespace
    ],
    ids=["given-namespace", "given-namespace-allowed", "ephemeral"],
)
def test_disruptive_marker_is_enforced(
    pytester: pytest.Pytester, fake_apiserver: FakeApiServer, args: list[str], outcome: str
) -> None:
    fake_apiserver.namespaces["codelab"] = {"metadata": {"name": "codelab"}}
    kubeconfig = fake_apiserver.kubeconfig(pytester.path / "kc")
    pytester.makepyfile(DISRUPTIVE)
    result = pytester.runpytest(
        "-rs", "--codelab-cluster=existing", f"--codelab-kubeconfig={kubeconfig}", *args
    )
    result.assert_outcomes(**{outcome: 1})
    if outcome == "skipped":
        assert "disruptive test refused in namespace codelab" in result.stdout.str()
    assert "codelab" in fake_apiserver.namespaces  # never deleted
