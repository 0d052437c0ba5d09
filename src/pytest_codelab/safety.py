"""Safety rails: the gate only breaks or deletes what it created.

Disruptive tests (marker ``disruptive``: killing pods, draining, scaling to zero) run in
a namespace the gate created for this run, or elsewhere only with
``--codelab-allow-disruptive``. Namespace deletion refuses any namespace without the
gate's managed-by label, whatever the caller asks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

import pytest

from pytest_codelab.errors import SafetyError
from pytest_codelab.settings import Settings

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "pytest-codelab"


class NamespaceLike(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def created(self) -> bool: ...


def is_managed(labels: Mapping[str, str] | None) -> bool:
    """True if the labels mark an object the gate created."""
    return (labels or {}).get(MANAGED_BY_LABEL) == MANAGED_BY


def check_deletable(name: str, labels: Mapping[str, str] | None) -> None:
    """SafetyError unless the namespace carries the gate's managed-by label."""
    if not is_managed(labels):
        raise SafetyError(
            f"refusing to delete namespace {name}: it lacks the label "
            f"{MANAGED_BY_LABEL}={MANAGED_BY}, so the gate did not create it"
        )


def disruptive_skip_reason(settings: Settings, namespace: NamespaceLike) -> str | None:
    """Why a disruptive test may not run in ``namespace``, or None if it may."""
    if namespace.created or settings.allow_disruptive:
        return None
    return (
        f"disruptive test refused in namespace {namespace.name}, which the gate did not "
        "create; pass --codelab-allow-disruptive (or CODELAB_ALLOW_DISRUPTIVE=1) to allow"
    )


def require_disruptive(settings: Settings, namespace: NamespaceLike) -> None:
    """Skip the calling test unless disruption is allowed in ``namespace``."""
    reason = disruptive_skip_reason(settings, namespace)
    if reason:
        pytest.skip(reason)
