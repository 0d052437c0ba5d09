"""The guide's promises (pytest_codelab.report.promises): every requirement marker of the
bundled suites maps to one, the matching rule, and the HPAs the guide expects."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from pytest_codelab.report.promises import (
    BY_ID,
    GUIDE_HPAS,
    PROMISES,
    Promise,
    marker_key,
    promise_for,
    unknown_ids,
)
from pytest_codelab.report.records import requirement_texts
from pytest_codelab.resources import bundled_path


def _suite_requirements(pytester: pytest.Pytester) -> dict[str, list[str]]:
    """Requirement text -> node ids, from collecting the bundled suites (markers set by
    parametrization and by the static suite's rules included)."""
    items, reprec = pytester.inline_genitems(str(bundled_path("suites")), "-p", "no:cacheprovider")
    broken = [r.nodeid for r in reprec.getfailedcollections()]
    assert not broken, f"suites that do not collect hide their markers: {broken}"
    texts: dict[str, list[str]] = {}
    for item in items:
        for text in requirement_texts(item):
            texts.setdefault(text, []).append(item.nodeid)
    return texts


def test_every_requirement_marker_of_the_suites_maps_to_a_promise(
    pytester: pytest.Pytester,
) -> None:
    texts = _suite_requirements(pytester)
    assert len(texts) > 20, f"too few requirement markers collected: {sorted(texts)}"
    unmapped = {t: ids[0] for t, ids in texts.items() if promise_for(marker_key(t)) is None}
    assert not unmapped, f"requirement markers matching no promise (test): {unmapped}"
    checked = {promise_for(marker_key(t)).id for t in texts}  # type: ignore[union-attr]
    # Every promise but the ones whose tests are still to come has a test in the suites.
    assert {"probes", "vpa", "undo-to-revision", "backup-restore", "best-practices"} <= checked
    assert {"network-policies", "network-isolation"} <= checked
    assert {"autoscaling/gateway-hpa", "autoscaling/agent-runtime-hpa"} <= checked


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("5.1/probes: every serving container", "probes"),
        ("5.1/liveness: a dead container is restarted", "probes"),
        ("5.4/undo: rollout undo", "undo"),
        ("5.4/undo-to-revision: rollout undo --to-revision", "undo-to-revision"),
        ("2.8/resources", "best-practices"),  # a listed key's extension
        ("guide/figures: replica counts", "figures"),
        ("2.8/resources/gateway: x", "best-practices"),
        ("5.3/autoscaling/gateway-hpa: scales out", "autoscaling/gateway-hpa"),
        ("6/autoscaling/auth-service-hpa: scales out", "autoscaling/auth-service-hpa"),
        ("5.2/policy-admits: the policies admit the graph", "network-policies"),
        ("5.2/network-policies: enforced", "network-isolation"),
    ],
)
def test_marker_keys_map_by_the_documented_rule(text: str, expected: str) -> None:
    promise = promise_for(marker_key(text))
    assert promise is not None and promise.id == expected


@pytest.mark.parametrize(
    "text",
    [
        "5.1/probe: a typo",  # no listed key
        "5.3/ingressx: not an extension of 5.3/ingress",
        "5.3/autoscaling: no HPA named",
        "probes: no section",
    ],
)
def test_a_marker_matching_no_promise_is_unmapped(text: str) -> None:
    assert promise_for(marker_key(text)) is None


def test_the_longest_listed_key_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_codelab.report import promises

    broad, narrow = Promise("broad", "b", "s", ("2.8",)), Promise("narrow", "n", "s", ("2.8/x",))
    for order in ((broad, narrow), (narrow, broad)):
        monkeypatch.setattr(promises, "PROMISES", order)
        assert promise_for("2.8/x/y") is narrow and promise_for("2.8/xy") is broad


def test_an_hpa_outside_the_guide_still_gets_its_own_promise() -> None:
    promise = promise_for("5.3/autoscaling/llm-proxy-hpa")
    assert promise is not None and promise.id == "autoscaling/llm-proxy-hpa"
    assert promise.id not in BY_ID  # a row of its own, not one of the guide's


def test_ids_are_unique_and_waivable() -> None:
    ids = [p.id for p in PROMISES]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"[a-z0-9/-]+", i) for i in ids), ids  # no comma: --codelab-waive
    assert unknown_ids(("vpa", "autoscaling/gateway-hpa")) == []
    assert unknown_ids(("vpa", "nope", "autoscaling")) == ["nope", "autoscaling"]
    assert all(p.title and p.section for p in PROMISES)


def test_guide_hpas_are_the_bundled_manifests_and_the_prod_values() -> None:
    """GUIDE_HPAS is what the guide says: the bundled HPAs, and one per workload with
    autoscaling in the seed's values-prod.yaml (manifests/profiles/prod.yaml)."""
    manifests = bundled_path("manifests")
    hpas = [
        doc["metadata"]["name"]
        for doc in yaml.safe_load_all(Path(manifests / "50-hpa.yaml").read_text())
        if doc and doc.get("kind") == "HorizontalPodAutoscaler"
    ]
    values = yaml.safe_load((manifests / "profiles" / "prod.yaml").read_text())
    autoscaled = [
        re.sub(r"([A-Z])", lambda m: "-" + m.group(1).lower(), key) + "-hpa"
        for key, block in values.items()
        if isinstance(block, dict) and (block.get("autoscaling") or {}).get("enabled")
    ]
    assert sorted(GUIDE_HPAS) == sorted(hpas) == sorted(autoscaled)
    rows = [p.id for p in PROMISES if p.id.startswith("autoscaling/")]
    assert rows == [f"autoscaling/{h}" for h in GUIDE_HPAS]
