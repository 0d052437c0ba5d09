"""Values of a run: the operator's values file, and the bundled profiles (``prod``, ``small``).

An operator's values file (``--codelab-values``) is rendered over the manifests the way
``helm install -f FILE`` renders over a chart: the manifests hold the defaults, and only what
the file states changes them, so the file may be partial. Nothing is layered under it: a
profile never fills in what the operator's manifests or values lack (that would hide their
defects from the offline checks). The profiles are data of other steps: ``prod`` is the
guide's values-prod.yaml (the default expectation, :mod:`pytest_codelab.deploy.expected`),
``small`` holds the figures the fit for one node caps quantities at
(:mod:`pytest_codelab.deploy.fit`)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from pytest_codelab.deploy.shapes import describe, plain_problem, too_large
from pytest_codelab.deploy.values import Values, build_values
from pytest_codelab.deploy.valueschema import ValuesError, validate
from pytest_codelab.options import BY_NAME
from pytest_codelab.resources import bundled_path

#: The profile of a run that names none: the option table's default.
DEFAULT_PROFILE = str(BY_NAME["profile"].default)


def _read_yaml(path: Path, source: str) -> Any:
    """The YAML document of a values file: a mapping of plain data, else ValuesError."""
    try:
        problem = too_large(path.stat().st_size)
        if problem:
            raise ValuesError(f"{source}: {problem}")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValuesError(f"{source}: file not found") from None
    except OSError as exc:
        raise ValuesError(f"{source}: cannot read ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise ValuesError(f"{source}: cannot read (not UTF-8 text)") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ValuesError(f"{source}: invalid YAML{where}: {problem}") from None
    except RecursionError:
        raise ValuesError(f"{source}: invalid YAML: nested too deeply") from None
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ValuesError(f"{source}: top level: expected a mapping, got {describe(data, False)}")
    problem = plain_problem(data)
    if problem:
        raise ValuesError(f"{source}: {problem}")
    return data


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """Helm-like merge: mappings merge recursively, a null in ``over`` removes the key,
    anything else in ``over`` replaces."""
    out = dict(base)
    for key, value in over.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
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


def read_document(path: Path, source: str) -> Mapping[str, Any]:
    """A YAML mapping from ``path``; ValuesError (one line naming ``source``) otherwise."""
    data: Mapping[str, Any] = _read_yaml(Path(path), source)
    return data


def load_values(values_file: Path | None) -> Values | None:
    """The operator's values file, to render over the manifests (None without one).

    Partial files are fine (types and unknown keys are checked, one line naming the key);
    whatever the file leaves out keeps what the manifests say.
    """
    if values_file is None:
        return None
    source = f"values file {values_file}"
    return build_values(read_document(values_file, source), source=source, partial=True)


def load_profile(name: str) -> Values:
    """A bundled profile as values (checked like an operator's file)."""
    source = f"profile {name}"
    return build_values(read_document(profile_path(name), source), source=source, partial=True)


def profile_document(name: str) -> Mapping[str, Any]:
    """A bundled profile's raw document, validated as a complete values file."""
    source = f"profile {name}"
    data = read_document(profile_path(name), source)
    validate(data, source=source)
    return data
