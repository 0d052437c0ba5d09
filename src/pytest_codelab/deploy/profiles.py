"""Values of a run: a bundled profile (``prod``, ``small``) with the operator's file over it.

Merging: an operator's values file is deep-merged over the chosen profile (mappings merge key by
key, lists and scalars replace), like ``helm install -f`` over a chart's defaults. So a file may
hold only what differs. With ``profile=None`` the file stands alone and must be complete."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from pytest_codelab.deploy.shapes import describe
from pytest_codelab.deploy.values import Values, build_values
from pytest_codelab.deploy.valueschema import ValuesError, validate
from pytest_codelab.options import BY_NAME
from pytest_codelab.resources import bundled_path

#: The profile of a run that names none: the option table's default.
DEFAULT_PROFILE = str(BY_NAME["profile"].default)


def _read_yaml(path: Path, source: str) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValuesError(f"{source}: file not found") from None
    except OSError as exc:
        raise ValuesError(f"{source}: cannot read ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ValuesError(f"{source}: invalid YAML{where}: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ValuesError(f"{source}: top level: expected a mapping, got {describe(data, False)}")
    return data


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """Helm-like merge: mappings merge recursively, anything else in ``over`` replaces."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def available_profiles() -> list[str]:
    """Names of the bundled profiles (``prod``, ``small``)."""
    return sorted(p.stem for p in bundled_path("profiles").glob("*.yaml"))


def profile_path(name: str) -> Path:
    path = bundled_path("profiles") / f"{name}.yaml"
    if not path.is_file():
        raise ValuesError(f"unknown profile {name!r}; available: {', '.join(available_profiles())}")
    return path


def load_values(profile: str | None, values_file: Path | None) -> Values:
    """Values for a run: the profile, with the operator's file deep-merged over it.

    ``profile=None`` and no file -> the default profile; ``profile=None`` with a file -> the
    file alone, which must then be complete.
    """
    if profile is None and values_file is None:
        profile = DEFAULT_PROFILE
    base: Mapping[str, Any] = {}
    source = ""
    if profile is not None:
        source = f"profile {profile}"
        base = _read_yaml(profile_path(profile), source)
        validate(base, source=source)
    if values_file is None:
        return build_values(base, source=source)
    file_source = f"values file {values_file}"
    data = _read_yaml(Path(values_file), file_source)
    # Types and unknown keys first, against the file alone, so errors name the file's keys.
    validate(data, source=file_source, partial=True)
    merged = deep_merge(base, data)
    source = f"{file_source} over {source}" if profile is not None else file_source
    return build_values(merged, source=source)
