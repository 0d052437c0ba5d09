"""The inputs of a run: which manifests are under test, their render (values and the run's
overrides), the fit of the deployed stack, and whether the files load.

Why here: the plugin checks them once before any test (a bad file is one line, not N errors)
and names the fit in the report header, and the fixtures load the same folder, values and
expectation; all ask this module.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pytest_codelab.deploy.expected import load_expectation
from pytest_codelab.deploy.fit import Fit, apply_fit, describe_unfitted, fit_for
from pytest_codelab.deploy.manifests import (
    ManifestError,
    Obj,
    RenderWarning,
    load_manifests,
    render,
)
from pytest_codelab.deploy.profiles import load_values
from pytest_codelab.deploy.values import Values
from pytest_codelab.deploy.valueschema import ValuesError
from pytest_codelab.errors import one_line
from pytest_codelab.resources import bundled_path
from pytest_codelab.settings import Settings

#: Namespace used to render manifests when no cluster namespace exists (offline checks).
OFFLINE_NAMESPACE = "codelab"


def manifests_dir(settings: Settings) -> Path:
    """The folder of the manifests under test: --codelab-manifests or the bundled ones."""
    return settings.manifests or bundled_path("manifests")


def check_inputs(settings: Settings) -> None:
    """Load manifests and values once up front, and render one over the other, so a bad
    file is one line, not N errors or a traceback at collection.

    Only when they matter: a cluster run, or files the user named (the bundled ones are
    checked by the package's own tests).
    """
    named = (settings.manifests, settings.values, settings.expect)
    if settings.cluster is None and all(path is None for path in named):
        return
    try:
        raw = load_manifests(manifests_dir(settings))
        values = load_values(settings.values)
        with warnings.catch_warnings():  # the collection's render shows them once
            warnings.simplefilter("ignore", RenderWarning)
            render_stack(raw, OFFLINE_NAMESPACE, values, settings, fit_for(settings.profile))
        load_expectation(settings.expect)
    except (ManifestError, ValuesError, FileNotFoundError) as exc:
        raise pytest.UsageError(one_line(str(exc))) from None


def render_for(
    raw: Iterable[Mapping[str, Any]],
    namespace: str,
    values: Values | None,
    settings: Settings,
    ingress_host: str | None = None,
) -> list[Obj]:
    """The manifests as the operator deploys them, for ``namespace``: the values file over
    them (``helm install -f``) and the run's image and ingress overrides; never a fit."""
    return render(
        raw,
        namespace=namespace,
        values=values,
        image_registry=settings.image_registry,
        image_tag=settings.image_tag,
        ingress_host=ingress_host or settings.ingress_host,
        ingress_class=settings.ingress_class,
    )


@dataclass(frozen=True)
class Stack:
    """A stack to deploy: the operator's ``intent`` (what the guide comparison judges) and
    what the gate applies (``deployed``: the intent fitted), with the fit's header line."""

    intent: list[Obj]
    deployed: list[Obj]
    fit: str


def render_stack(
    raw: Iterable[Mapping[str, Any]],
    namespace: str,
    values: Values | None,
    settings: Settings,
    fit: Fit | None,
    ingress_host: str | None = None,
) -> Stack:
    """The intent for ``namespace`` and, with a fit, its fitted copy for the cluster."""
    intent = render_for(raw, namespace, values, settings, ingress_host)
    if fit is None:
        return Stack(intent, intent, describe_unfitted())
    deployed, report = apply_fit(intent, fit)
    return Stack(intent, deployed, report.line())


def fit_line(settings: Settings) -> str:
    """The report header's line on the fit of a deployed stack (what it lowered)."""
    try:
        fit = fit_for(settings.profile)
        raw = load_manifests(manifests_dir(settings))
        namespace = settings.namespace or OFFLINE_NAMESPACE
        values = load_values(settings.values)
    except (ManifestError, ValuesError, FileNotFoundError) as exc:
        return f"fit: {settings.profile} (not computed: {one_line(str(exc))})"
    return render_stack(raw, namespace, values, settings, fit).fit
