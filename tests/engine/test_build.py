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
    for i, name in enumerate(component.patches):
        later = [_added_lines(build.PATCHES / n, "-") for n in component.patches[i + 1 :]]
        for target, added in _added_lines(build.PATCHES / name).items():
            body = (patched / target).read_text()
            removed = {line for lines in later for line in lines.get(target, [])}
            missing = [line for line in added if line not in body and line not in removed]
            assert not missing, f"{name} not applied to {target}: {missing}"


def _added_lines(patch: Path, sign: str = "+") -> dict[str, list[str]]:
    """The lines a unified diff adds (``sign`` "-": removes), per file it changes."""
    added: dict[str, list[str]] = {}
    target = ""
    for line in patch.read_text().splitlines():
        if line.startswith("+++ b/"):
            target = line[6:]
            added[target] = []
        elif target and line.startswith(sign) and not line.startswith(sign * 3):
            added[target].append(line[1:])
    return added


def _go_tests(component: versions.GoComponent) -> dict[str, list[str]]:
    """The Test functions of the _test.go files the component's patches add, by package."""
    tests: dict[str, list[str]] = {}
    for name in component.patches:
        for target, added in _added_lines(build.PATCHES / name).items():
            if target.endswith("_test.go"):
                funcs = [line.split("(")[0].removeprefix("func ") for line in added]
                found = [f for f in funcs if f.startswith("Test") and " " not in f]
                tests.setdefault(str(Path(target).parent), []).extend(found)
    return tests


def test_traefik_gets_the_nginx_body_size_default_after_the_annotation() -> None:
    """The default's patch reuses what the annotation's patch adds: it must come after."""
    (traefik,) = [c for c in PATCHED if c.name == "traefik"]
    order = list(traefik.patches)
    annotation = order.index("traefik-ingress-nginx-proxy-body-size.patch")
    assert order.index("traefik-ingress-nginx-default-proxy-body-size.patch") > annotation


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("go") is None, reason="needs go and the Go module proxy")
@pytest.mark.parametrize("component", [c for c in PATCHED if _go_tests(c)], ids=lambda c: c.name)
def test_the_go_tests_patches_carry_pass(
    component: versions.GoComponent, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A patch that adds behaviour adds its Go test too; it runs on the patched copy (a
    few minutes cold: the test binary builds the provider's packages)."""
    monkeypatch.setenv("CODELAB_CACHE", str(tmp_path))
    env = build.go_env(component)
    patched = build.patched_module(component, env)
    for package, names in _go_tests(component).items():
        cmd = ["go", "test", "-count=1", "-run", f"^({'|'.join(names)})$", f"./{package}"]
        out = build.run(cmd, cwd=patched, env=env)
        assert "ok" in out and "no tests to run" not in out, out


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
