"""Offline conformance suite: the manifests under test, checked without a cluster.

What it checks, per rendered object: the OpenAPI schema of the pinned Kubernetes version and the
seed's best practices (resources, probes, no plain secrets, pinned images, HPA bounds); across
all objects: NetworkPolicies, HPA targets, references, namespaces, autoscaling of the critical
services, monitoring hooks, rolling updates; and the guide's figures (the expectation: the
guide's values-prod.yaml and manual-install figures, or ``--codelab-expect FILE``), one test
per comparison area. A failure names the object, the field or rule, what was expected and the
fix. It needs only pytest-codelab installed: no cluster, no network.

Objects under test are what an operator deploys: the bundled manifests or
``--codelab-manifests DIR`` as written, with ``--codelab-values FILE`` rendered over them and
the run's overrides; never the fit of ``--codelab-profile`` (that only sizes a stack the gate
deploys). They come from the plugin:

* ``pytest_codelab.fixtures.manifest_objects(config) -> list[dict]``, called at collection to
  parametrize one test per object;
* the session fixture ``codelab_manifest_objects`` (same list) for the whole-set checks.

Without the first, the objects are rendered here from the run's Settings (see ``_objects``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from pytest_codelab.deploy.compare import AREAS, compare
from pytest_codelab.deploy.expected import Expectation, load_expectation
from pytest_codelab.deploy.inputs import manifests_dir
from pytest_codelab.deploy.manifests import load_manifests, object_id, render, source_of
from pytest_codelab.deploy.profiles import load_values
from pytest_codelab.deploy.rules.base import Rule, SetRule
from pytest_codelab.deploy.rules.registry import RULES_BY_ID, SET_RULES_BY_ID
from pytest_codelab.deploy.schema import KUBERNETES_VERSION, validate_object
from pytest_codelab.fixtures.config import OFFLINE_NAMESPACE, render_objects
from pytest_codelab.resources import bundled_path

pytestmark = pytest.mark.offline

Obj = dict[str, Any]
_FALLBACK = pytest.StashKey[list[Obj]]()
_RAW = pytest.StashKey[list[Obj]]()


def _objects(config: pytest.Config) -> list[Obj]:
    """The rendered objects under test, known at collection time (to parametrize by object).

    Preference: the plugin's ``pytest_codelab.fixtures.manifest_objects(config)``; else the
    run's Settings (``--codelab-manifests``, values, overrides); else, with no plugin at all,
    the bundled manifests as written.
    """
    provider = getattr(_optional_module("pytest_codelab.fixtures"), "manifest_objects", None)
    if provider is not None:
        objects: list[Obj] = provider(config)
        return objects
    if _FALLBACK not in config.stash:
        settings = _settings(config)
        if settings is None:
            config.stash[_FALLBACK] = render(
                _raw_objects(config), namespace=OFFLINE_NAMESPACE, values=None
            )
        else:
            config.stash[_FALLBACK] = render_objects(
                _raw_objects(config),
                settings.namespace or OFFLINE_NAMESPACE,
                load_values(settings.values),
                settings,
            )
    return config.stash[_FALLBACK]


def _settings(config: pytest.Config) -> Any:
    key = getattr(_optional_module("pytest_codelab.settings"), "SETTINGS_KEY", None)
    return config.stash.get(key, None) if key is not None else None


def _raw_objects(config: pytest.Config) -> list[Obj]:
    """The manifests as written (the run's folder, else the bundled one), loaded once."""
    if _RAW not in config.stash:
        settings = _settings(config)
        folder = manifests_dir(settings) if settings is not None else bundled_path("manifests")
        config.stash[_RAW] = load_manifests(folder)
    return config.stash[_RAW]


def _optional_module(name: str) -> Any:
    """The module, or None if it does not exist (an import error inside it still raises)."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name:
            raise
        return None


def _rule(rule_id: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Attach a per-object rule to a test: parametrized over the objects it applies to."""
    rule = RULES_BY_ID[rule_id]

    def decorate(fn: Callable[..., None]) -> Callable[..., None]:
        fn.codelab_rule = rule  # type: ignore[attr-defined]
        marked: Callable[..., None] = pytest.mark.requirement(rule.requirement)(fn)
        return marked

    return decorate


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "manifest_object" not in metafunc.fixturenames:
        return
    objects = _objects(metafunc.config)
    rule: Rule | None = getattr(metafunc.function, "codelab_rule", None)
    if rule is not None:
        objects = [o for o in objects if rule.applies(o)]
    metafunc.parametrize("manifest_object", objects, ids=[object_id(o) for o in objects])


@pytest.fixture(scope="session")
def static_objects(request: pytest.FixtureRequest) -> list[Obj]:
    """All objects under test (the plugin's ``codelab_manifest_objects`` when it exists)."""
    try:
        objects: list[Obj] = request.getfixturevalue("codelab_manifest_objects")
    except pytest.FixtureLookupError:
        objects = _objects(request.config)
    return objects


@pytest.fixture(scope="session")
def static_raw_objects(request: pytest.FixtureRequest) -> list[Obj]:
    """The manifests as written, before any rendering (the plugin's ``codelab_raw_manifests``
    when it exists): what ``kubectl apply -f`` of the folder would send."""
    try:
        objects: list[Obj] = request.getfixturevalue("codelab_raw_manifests")
    except pytest.FixtureLookupError:
        objects = _raw_objects(request.config)
    return objects


@pytest.fixture(scope="session")
def static_expected(request: pytest.FixtureRequest) -> Expectation:
    """The expectation (the plugin's ``codelab_expected`` when it exists, else the guide's)."""
    try:
        expected: Expectation = request.getfixturevalue("codelab_expected")
    except pytest.FixtureLookupError:
        expected = load_expectation(None)
    return expected


def _assert_clean(violations: Sequence[object]) -> None:
    """Fail with one line per violation and no traceback (which could dump object content)."""
    if violations:
        pytest.fail("\n".join(str(v) for v in violations), pytrace=False)


# --------------------------------------------------------------------------- per object


@pytest.mark.requirement("2.8/schema")
def test_schema(manifest_object: Obj) -> None:
    """Valid against Kubernetes' OpenAPI schema (pinned version); CRDs are shape-checked only."""
    result = validate_object(manifest_object)
    if not result.ok:
        source = source_of(manifest_object)
        pytest.fail(
            "\n".join(f"{line} [rule schema]" for line in result.message().splitlines())
            + f"\nfix: make the object valid for Kubernetes {KUBERNETES_VERSION} "
            "(kubectl apply --dry-run=server reports the same fields)"
            + (f" (from {source})" if source else ""),
            pytrace=False,
        )
    if not result.validated:
        pytest.skip(f"{result.obj}: {result.note}")


@_rule("resources")
def test_resources(manifest_object: Obj) -> None:
    """Requests and limits for cpu and memory on every container."""
    _assert_clean(RULES_BY_ID["resources"].check(manifest_object))


@_rule("probes")
def test_probes(manifest_object: Obj) -> None:
    """Liveness and readiness probes on every container that serves a port."""
    _assert_clean(RULES_BY_ID["probes"].check(manifest_object))


@_rule("plain-secrets")
def test_no_plain_secrets(manifest_object: Obj) -> None:
    """No secret value in plain env, command lines or ConfigMaps."""
    _assert_clean(RULES_BY_ID["plain-secrets"].check(manifest_object))


@_rule("pinned-images")
def test_pinned_images(manifest_object: Obj) -> None:
    """Images pinned to a version tag or digest."""
    _assert_clean(RULES_BY_ID["pinned-images"].check(manifest_object))


@_rule("hpa")
def test_hpa_bounds(manifest_object: Obj) -> None:
    """HPA minReplicas <= maxReplicas, each metric with a target."""
    _assert_clean(RULES_BY_ID["hpa"].check(manifest_object))


# --------------------------------------------------------------------------- whole set


def _set_rule(rule_id: str) -> SetRule:
    return SET_RULES_BY_ID[rule_id]


@pytest.mark.requirement(SET_RULES_BY_ID["networkpolicies"].requirement)
def test_networkpolicies(static_objects: list[Obj]) -> None:
    """A default-deny ingress policy, and an allow policy for every serving workload."""
    _assert_clean(_set_rule("networkpolicies").check(static_objects))


@pytest.mark.requirement(SET_RULES_BY_ID["hpa"].requirement)
def test_hpa_targets(static_objects: list[Obj]) -> None:
    """Each HPA targets an existing workload that requests what its metrics measure."""
    _assert_clean(_set_rule("hpa").check(static_objects))


@pytest.mark.requirement(SET_RULES_BY_ID["references"].requirement)
def test_references(static_objects: list[Obj]) -> None:
    """Service selectors, Ingress backends, PDB/VPA targets and ConfigMap uses resolve."""
    _assert_clean(_set_rule("references").check(static_objects))


@pytest.mark.requirement(SET_RULES_BY_ID["namespaces"].requirement)
def test_namespaces(static_raw_objects: list[Obj], static_objects: list[Obj]) -> None:
    """No object pinned to a shared namespace such as ``default``: neither as written (the
    render moves every object to the target namespace) nor as deployed."""
    rule = _set_rule("namespaces")
    _assert_clean(rule.check(static_raw_objects) + rule.check(static_objects))


@pytest.mark.requirement(SET_RULES_BY_ID["autoscaling"].requirement)
def test_critical_services_autoscale(static_objects: list[Obj]) -> None:
    """gateway, agent-runtime and auth-service are each the target of an HPA."""
    _assert_clean(_set_rule("autoscaling").check(static_objects))


@pytest.mark.requirement(SET_RULES_BY_ID["monitoring"].requirement)
def test_monitoring_hooks(static_objects: list[Obj]) -> None:
    """Scrape annotations, ServiceMonitors and PodMonitors, where present, hit real ports."""
    _assert_clean(_set_rule("monitoring").check(static_objects))


@pytest.mark.requirement(SET_RULES_BY_ID["rolling-updates"].requirement)
def test_rolling_updates(static_objects: list[Obj]) -> None:
    """Serving Deployments roll without dropping to zero ready pods; none uses Recreate."""
    _assert_clean(_set_rule("rolling-updates").check(static_objects))


# --------------------------------------------------------------------------- the guide's figures


@pytest.mark.parametrize(
    "area",
    [
        pytest.param(area, id=area, marks=pytest.mark.requirement(f"guide/figures: {what}"))
        for area, what in AREAS.items()
    ],
)
def test_guide_figures(area: str, static_objects: list[Obj], static_expected: Expectation) -> None:
    """The manifests as the operator deploys them have the expectation's figures: one line
    per mismatch naming the object, the field, the expected value with its key, what was
    found."""
    mismatches = compare(static_objects, static_expected, [area])
    if mismatches:
        pytest.fail(
            f"{len(mismatches)} figure(s) of {AREAS[area]} differ from {static_expected.source}:\n"
            + "\n".join(str(m) for m in mismatches),
            pytrace=False,
        )
