"""The engine's build recipe: the upstream patches still apply to the pinned modules."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pytest_codelab.engine import build, versions

PATCHED = [c for c in versions.COMPONENTS if c.patches]


def test_every_patch_file_is_used_and_present() -> None:
    used = {name for c in PATCHED for name in c.patches}
    assert used == {p.name for p in build.PATCHES.glob("*.patch")}


@pytest.mark.skipif(shutil.which("go") is None, reason="needs go and the Go module proxy")
@pytest.mark.parametrize("component", PATCHED, ids=lambda c: c.name)
def test_patches_apply_to_the_pinned_module(
    component: versions.GoComponent, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A version bump that the patch no longer fits fails here, not in a cold build."""
    monkeypatch.setenv("CODELAB_CACHE", str(tmp_path))
    patched = build.patched_module(component, build.go_env(component))
    assert patched.is_relative_to(tmp_path) and (patched / "go.mod").is_file()
    for name in component.patches:
        for target, added in _added_lines(build.PATCHES / name).items():
            body = (patched / target).read_text()
            missing = [line for line in added if line not in body]
            assert not missing, f"{name} not applied to {target}: {missing}"


def _added_lines(patch: Path) -> dict[str, list[str]]:
    """The lines a unified diff adds, per file it changes."""
    added: dict[str, list[str]] = {}
    target = ""
    for line in patch.read_text().splitlines():
        if line.startswith("+++ b/"):
            target = line[6:]
            added[target] = []
        elif target and line.startswith("+"):
            added[target].append(line[1:])
    return added


@pytest.mark.skipif(shutil.which("go") is None, reason="needs go")
def test_a_changed_patch_changes_the_build_stamp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    component = PATCHED[0]
    for name in component.patches:
        shutil.copy(build.PATCHES / name, tmp_path / name)
    monkeypatch.setattr(build, "PATCHES", tmp_path)
    before = build.stamp_of(component)
    patch = tmp_path / component.patches[0]
    patch.write_text(patch.read_text() + "\n")
    assert build.stamp_of(component) != before
