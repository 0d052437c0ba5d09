"""Build the engine's binaries from upstream Go modules into the cache.

Idempotent: each component leaves a stamp holding the hash of its recipe; a warm build
compares stamps and returns in seconds. Cold, components build one after another (the
machine has two cores; two Go builds at once only thrash).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

from pytest_codelab.engine import versions
from pytest_codelab.engine.errors import EngineError
from pytest_codelab.engine.paths import bin_dir, cache_dir
from pytest_codelab.engine.progress import step
from pytest_codelab.engine.versions import GoComponent

#: Bumped when the build recipe itself changes, so stamps from an older recipe rebuild.
RECIPE = "3"
PATCHES = Path(__file__).parent / "patches"

PAUSE_SOURCE = """package main

import (
\t"os"
\t"os/signal"
\t"syscall"
)

// pause holds a pod's namespaces open and exits on SIGTERM or SIGINT.
func main() {
\tc := make(chan os.Signal, 1)
\tsignal.Notify(c, syscall.SIGTERM, syscall.SIGINT)
\tgo func() {
\t\tfor {
\t\t\tvar ws syscall.WaitStatus
\t\t\tif _, err := syscall.Wait4(-1, &ws, 0, nil); err != nil {
\t\t\t\tselect {
\t\t\t\tcase <-c:
\t\t\t\t\tos.Exit(0)
\t\t\t\t}
\t\t\t}
\t\t}
\t}()
\t<-c
}
"""

ETCD_MAIN = """package main

import (
\t"os"

\t"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
"""


def run(cmd: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    """Run a command; on failure raise EngineError carrying the command and its output tail."""
    proc = subprocess.run(
        cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    if proc.returncode != 0:
        raise EngineError.from_command(cmd, proc.returncode, proc.stdout)
    return proc.stdout


def go_env(component: GoComponent) -> dict[str, str]:
    """Environment for one Go build: module mode, cgo only where the component needs it."""
    env = dict(os.environ)
    env["CGO_ENABLED"] = "1" if component.cgo else "0"
    env["GOFLAGS"] = "-mod=mod -buildvcs=false"
    env.setdefault("GOTOOLCHAIN", "local")
    return env


def outputs(component: GoComponent) -> list[Path]:
    """Binaries a component produces, where the engine expects them."""
    if component.name == "etcd":
        return [bin_dir() / "etcd"]
    target = bin_dir() / "cni" if component.name == "cni-plugins" else bin_dir()
    if component.binary:
        return [target / component.binary]
    return [target / Path(p).name for p in component.packages]


def stamp_of(component: GoComponent) -> str:
    """A hash of everything that decides the component's binaries."""
    go = run(["go", "env", "GOVERSION"]).strip()
    patches = [(PATCHES / name).read_text() for name in component.patches]
    payload = json.dumps([RECIPE, go, component.__dict__, patches], sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def is_current(component: GoComponent, stamp: str) -> bool:
    """True when the stamp matches and every output exists."""
    stamp_file = cache_dir() / "stamps" / component.name
    fresh = stamp_file.exists() and stamp_file.read_text().strip() == stamp
    return fresh and all(p.exists() for p in outputs(component))


def ldflags(component: GoComponent) -> str:
    """Version ldflags, so each binary reports its real upstream version."""
    v = component.version
    if component.name == "kubernetes":
        major, minor = v.lstrip("v").split(".")[:2]
        sets = {
            "gitVersion": v,
            "gitMajor": major,
            "gitMinor": minor,
            "gitCommit": "0" * 40,
            "gitTreeState": "clean",
            "buildDate": "1970-01-01T00:00:00Z",
        }
        pkgs = ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version")
        flags = [f"-X {p}.{k}={val}" for p in pkgs for k, val in sets.items()]
    elif component.name == "containerd":
        flags = [f"-X github.com/containerd/containerd/v2/version.Version={v}"]
    elif component.name == "runc":
        flags = [f"-X main.version={v.lstrip('v')}"]
    elif component.name == "traefik":
        flags = [f"-X github.com/traefik/traefik/v3/pkg/version.Version={v}"]
    else:
        flags = []
    return " ".join(["-s", "-w", *flags])


def download(module: str, version: str, env: dict[str, str]) -> dict[str, str]:
    """``go mod download -json``: where the module proxy's copy of ``module@version`` lies."""
    info: dict[str, str] = json.loads(
        run(["go", "mod", "download", "-json", f"{module}@{version}"], env=env)
    )
    return info


def upstream_gomod(module: str, version: str, env: dict[str, str]) -> str:
    """The upstream module's go.mod text, through the module proxy."""
    return Path(download(module, version, env)["GoMod"]).read_text()


def kubernetes_requires(gomod: str, version: str) -> list[str]:
    """Staging modules that k8s.io/kubernetes requires at v0.0.0, pinned to the release."""
    staging = "v0" + version[2:]
    out = []
    for line in gomod.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0].startswith("k8s.io/") and parts[1] == "v0.0.0":
            out.append(f"{parts[0]} {staging}")
    return out


def replace_blocks(gomod: str) -> list[str]:
    """Copy replace and exclude directives that point at other modules (not local paths)."""
    keep, block = [], None
    for line in gomod.splitlines():
        s = line.strip()
        if block:
            if s == ")":
                block = None
            elif s and "=> ." not in s:
                keep.append(f"{block} {s}")
            continue
        if s in ("replace (", "exclude ("):
            block = s.split()[0]
        elif (s.startswith("replace ") or s.startswith("exclude ")) and "=> ." not in s:
            keep.append(s)
    return keep


def patched_module(component: GoComponent, env: dict[str, str]) -> Path:
    """A writable copy of the pinned module with ``component.patches`` applied."""
    dest = cache_dir() / "src" / f"{component.name}-patched"
    shutil.rmtree(dest, ignore_errors=True)
    dest.parent.mkdir(parents=True, exist_ok=True)
    original = download(component.module, component.version, env)["Dir"]
    run(["cp", "-r", "--no-preserve=mode", f"{original}/.", str(dest)])
    for name in component.patches:
        run(["patch", "-p1", "--batch", "--forward", "-d", str(dest), "-i", str(PATCHES / name)])
    return dest


def write_wrapper(component: GoComponent, src: Path, env: dict[str, str]) -> None:
    """Generate the wrapper module that requires the upstream one at its pinned version."""
    src.mkdir(parents=True, exist_ok=True)
    requires = [f"{component.module} {component.version}"]
    requires += [f"{m} {component.version}" for m in component.extra_requires]
    requires += list(component.pins)
    gomod = upstream_gomod(component.module, component.version, env)
    directives: list[str] = []
    if component.name == "kubernetes":
        requires += kubernetes_requires(gomod, component.version)
    else:
        directives = replace_blocks(gomod)
    if component.patches:
        directives.append(f"replace {component.module} => {patched_module(component, env)}")
    text = ["module codelab.local/engine/" + component.name, "", "go 1.26", "", "require ("]
    text += [f"\t{r}" for r in requires] + [")", "", *directives, ""]
    (src / "go.mod").write_text("\n".join(text))
    if component.name == "etcd":
        (src / "main.go").write_text(ETCD_MAIN)
    else:
        imports = "\n".join(f'\t_ "{p}"' for p in component.packages)
        (src / "tools.go").write_text(
            f"//go:build tools\n\npackage tools\n\nimport (\n{imports}\n)\n"
        )


def build_wrapper(component: GoComponent) -> None:
    """Build a component from a generated wrapper module."""
    env = go_env(component)
    src = cache_dir() / "src" / component.name
    write_wrapper(component, src, env)
    run(["go", "mod", "tidy", "-e"], cwd=src, env=env)
    out = bin_dir() / "etcd" if component.name == "etcd" else bin_dir()
    cmd = ["go", "build", "-trimpath", "-ldflags", ldflags(component), "-o", f"{out}"]
    if component.name != "etcd":
        cmd[-1] += "/"
    run([*cmd, *component.packages], cwd=src, env=env)


def build_install(component: GoComponent) -> None:
    """Build a component with ``go install pkg@version`` (clean upstream go.mod)."""
    env = go_env(component)
    target = outputs(component)[0].parent
    target.mkdir(parents=True, exist_ok=True)
    env["GOBIN"] = str(target)
    cmd = ["go", "install", "-trimpath", "-ldflags", ldflags(component)]
    if component.tags:
        cmd += ["-tags", ",".join(component.tags)]
    run([*cmd, *(f"{p}@{component.version}" for p in component.packages)], env=env)


def build_pause() -> Path:
    """The pod sandbox binary: ours, a few lines, built like the rest."""
    out = bin_dir() / "pause"
    src = cache_dir() / "src" / "pause"
    digest = hashlib.sha256(PAUSE_SOURCE.encode()).hexdigest()[:16]
    stamp = cache_dir() / "stamps" / "pause"
    if out.exists() and stamp.exists() and stamp.read_text() == digest:
        return out
    src.mkdir(parents=True, exist_ok=True)
    (src / "go.mod").write_text("module codelab.local/pause\n\ngo 1.26\n")
    (src / "main.go").write_text(PAUSE_SOURCE)
    env = dict(os.environ, CGO_ENABLED="0")
    run(["go", "build", "-trimpath", "-ldflags", "-s -w", "-o", str(out), "."], cwd=src, env=env)
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(digest)
    return out


def build_component(component: GoComponent) -> bool:
    """Build one component unless its stamp is current; True when it was built."""
    stamp = stamp_of(component)
    if is_current(component, stamp):
        return False
    bin_dir().mkdir(parents=True, exist_ok=True)
    (build_wrapper if component.wrapper else build_install)(component)
    if component.binary:  # Go names a binary after its package's folder
        target = outputs(component)[0]
        target.with_name(Path(component.packages[0]).name).replace(target)
    stamp_file = cache_dir() / "stamps" / component.name
    stamp_file.parent.mkdir(parents=True, exist_ok=True)
    stamp_file.write_text(stamp)
    return True


def missing_packages(names: Iterable[str]) -> list[str]:
    """Debian packages from ``names`` that are not installed."""
    missing = []
    for name in names:
        proc = subprocess.run(
            ["dpkg-query", "-W", "-f=${Status}", name], capture_output=True, text=True
        )
        if "install ok installed" not in proc.stdout:
            missing.append(name)
    return missing


def ensure_host_packages() -> None:
    """Install the Debian packages the engine needs (once; apt is idempotent)."""
    missing = missing_packages(versions.HOST_PACKAGES)
    if not missing:
        return
    with step(f"installing Debian packages: {' '.join(missing)}"):
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        run(["apt-get", "update", "-q"], env=env)
        run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing], env=env)


def ensure_go() -> None:
    """Fail early, in one line, when there is no Go toolchain to build with."""
    if shutil.which("go") is None:
        raise EngineError("no Go toolchain on PATH: the engine is built from upstream Go modules")


def build(names: Iterable[str] | None = None, addons: Iterable[str] = ()) -> None:
    """Build every component (or the named ones) into the cache, showing progress; those
    of an optional add-on only when it is in ``addons`` (or named)."""
    ensure_go()
    ensure_host_packages()
    wanted = set(names) if names else None
    extra = set(addons)
    started = time.monotonic()
    for component in versions.COMPONENTS:
        if wanted is not None and component.name not in wanted:
            continue
        if wanted is None and component.addon is not None and component.addon not in extra:
            continue
        with step(f"{component.name} {component.version}") as s:
            s.note("built" if build_component(component) else "cached")
    with step("pause") as s:
        build_pause()
        s.note("ok")
    print(f"[build] done in {time.monotonic() - started:.1f}s; binaries in {bin_dir()}", flush=True)
