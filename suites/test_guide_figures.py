"""Cluster suite: the guide's figures on the running deployment (or the operator's, with
``--codelab-expect FILE``), one test per comparison area.

On a deployment the gate did not make (``--codelab-namespace`` on staging) the live objects
are compared with the expectation: every drift is one line naming the object, the field, the
expected value with the key that states it, and what runs. A workload an HPA scales is judged
by the expected HPA bounds, not by its replica count of the moment.

On a stack the gate deployed (fitted to the machine by ``--codelab-profile``), the same
judgement is made on the intent (the unfitted render: what the operator deploys), so a local
run and a staging run judge the same thing; and the live objects must equal the render the gate
applied on every compared field (what was applied is what runs).
"""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from pytest_codelab.deploy.compare import AREAS, Mismatch, compare, compare_with_render
from pytest_codelab.deploy.expected import Expectation
from pytest_codelab.deploy.values import Values
from pytest_codelab.fixtures.config import render_objects
from pytest_codelab.k8s.snapshot import Snapshot, read_namespace
from pytest_codelab.k8s.stack import StackInfo
from pytest_codelab.k8s.waiting import Timeouts
from pytest_codelab.settings import Settings

pytestmark = [pytest.mark.e2e, pytest.mark.cluster]

Obj = dict[str, Any]


def _areas(text: str) -> list[Any]:
    return [
        pytest.param(area, id=area, marks=pytest.mark.requirement(text.format(what=what)))
        for area, what in AREAS.items()
    ]


@pytest.fixture(scope="module")
def live(
    codelab_stack: StackInfo, k8s_client: client.ApiClient, codelab_timeouts: Timeouts
) -> Snapshot:
    """The compared kinds of the namespace under test, as the API serves them now."""
    return read_namespace(k8s_client, codelab_stack.namespace, request_timeout=codelab_timeouts.api)


@pytest.fixture(scope="module")
def intent(
    codelab_stack: StackInfo,
    codelab_raw_manifests: list[Obj],
    codelab_values: Values | None,
    codelab_settings: Settings,
) -> list[Obj]:
    """What the operator deploys into this namespace: the render before the fit."""
    return render_objects(
        codelab_raw_manifests,
        codelab_stack.namespace,
        codelab_values,
        codelab_settings,
        codelab_stack.ingress_host,
    )


def _fail(mismatches: list[Mismatch], what: str, notes: list[str]) -> None:
    if mismatches:
        pytest.fail(
            f"{len(mismatches)} {what}:\n"
            + "\n".join(str(m) for m in mismatches)
            + "".join(f"\n{note}" for note in notes),
            pytrace=False,
        )


def _unserved_note(live: Snapshot) -> list[str]:
    if not live.unserved:
        return []
    return [f"not served by this cluster (so absent): {', '.join(live.unserved)}"]


@pytest.mark.parametrize("area", _areas("guide/figures: {what}, on the deployment under test"))
def test_deployment_has_the_guide_figures(
    area: str,
    codelab_stack: StackInfo,
    live: Snapshot,
    intent: list[Obj],
    codelab_expected: Expectation,
) -> None:
    """Staging: the live objects have the expectation's figures (drift fails). A stack the
    gate deployed: its intent (the unfitted render) has them."""
    if codelab_stack.deployed:
        found = compare(intent, codelab_expected, [area])
        what = f"figure(s) of the deployed intent differ from {codelab_expected.source}"
        _fail(found, what, [])
    else:
        found = compare(live.objects, codelab_expected, [area], live=True)
        what = f"live figure(s) in {codelab_stack.namespace} drift from {codelab_expected.source}"
        _fail(found, what, _unserved_note(live))


@pytest.mark.parametrize(
    "area", _areas("guide/figures: {what}, live as the gate applied them (fitted)")
)
def test_live_objects_are_what_was_applied(
    area: str,
    codelab_stack: StackInfo,
    live: Snapshot,
    codelab_expected: Expectation,
) -> None:
    """On a stack the gate deployed, every compared field of the live objects equals the
    render it applied (the fitted one). Kinds the cluster does not serve were not applied
    (the deploy noted them) and are left out."""
    if not codelab_stack.deployed:
        pytest.skip(
            f"{codelab_stack.namespace} was not deployed by the gate: there is no applied "
            "render to compare with (the drift test compares it with the expectation)"
        )
    unserved = set(live.unserved)
    applied = [
        o for o in codelab_stack.objects if f"{o.get('apiVersion')} {o.get('kind')}" not in unserved
    ]
    found = compare_with_render(applied, live.objects, codelab_expected, [area])
    _fail(found, f"live field(s) in {codelab_stack.namespace} differ from the applied render", [])
