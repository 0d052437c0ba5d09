"""The option table: every option is a flag, an env var and an ini key, with help text."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pytest_codelab.options import OPTIONS, Kind

ARCHITECTURE_DOC = Path(__file__).resolve().parents[1] / "docs" / "architecture.md"


def _documented_options() -> list[str]:
    """First column of the option table in docs/architecture.md (rows with a flag)."""
    rows = [line.split("|") for line in ARCHITECTURE_DOC.read_text().splitlines()]
    return [r[1].strip() for r in rows if len(r) > 2 and r[2].strip().startswith("--codelab-")]


def test_table_matches_the_architecture_doc() -> None:
    assert [spec.name for spec in OPTIONS] == _documented_options()


@pytest.mark.parametrize("spec", OPTIONS, ids=lambda s: s.name)
def test_names_follow_one_convention(spec) -> None:  # type: ignore[no-untyped-def]
    dashed = spec.name.replace("_", "-")
    assert spec.flag == f"--codelab-{dashed}"
    assert spec.env == f"CODELAB_{spec.name.upper()}"
    assert spec.ini == f"codelab_{spec.name}"
    assert spec.dest == spec.ini


@pytest.mark.parametrize("spec", OPTIONS, ids=lambda s: s.name)
def test_help_follows_the_rule(spec) -> None:  # type: ignore[no-untyped-def]
    """What it is, then 'Default: ...'; env var and ini key appended; no imperative start."""
    assert re.search(r"Default: [^.]+", spec.help), spec.help
    assert spec.help_text.endswith(f"Env: {spec.env}. Ini: {spec.ini}.")
    first_word = spec.help.split()[0].lower()
    assert first_word not in {"use", "set", "pass", "give", "specify", "enable", "disable"}
    if spec.kind is Kind.CHOICE:
        for choice in spec.choices:
            assert choice in spec.help
        assert spec.default is None or spec.default in spec.choices


def test_every_option_is_in_help_with_env_and_ini(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    assert result.ret == 0
    text = result.stdout.str()
    assert "CodeLab conformance gate:" in text
    flat = " ".join(text.split())
    for spec in OPTIONS:
        assert spec.flag in text
        assert f"Env: {spec.env}." in flat
        assert f"{spec.ini} (string):" in text  # the ini key in pytest's [pytest] help


def test_choices_are_shown_as_metavar(pytester: pytest.Pytester) -> None:
    text = pytester.runpytest("--help").stdout.str()
    assert "--codelab-cluster={existing,local}" in text
    assert "--codelab-profile={prod,small}" in text
