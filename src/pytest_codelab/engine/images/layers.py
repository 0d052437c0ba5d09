"""Layer types: what decides a layer's content (its cache key) and how its tar is made.

``FilesLayer`` from explicit entries (generated files, host files, code), ``DebianLayer``
a Debian root filesystem by mmdebstrap, ``ChrootLayer`` a script's output in a chroot of
other layers (a venv installed with pip), ``BusyboxLayer`` and ``CaCertificatesLayer``
from single Debian packages. A layer's key hashes :data:`RECIPE_VERSION`, its type's name
and its inputs, so class names and inputs are part of every cached layer's identity.
"""

from __future__ import annotations

import functools
import os
import re
import shlex
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from pytest_codelab.engine.images.archive import (
    EPOCH,
    Entry,
    LayerResult,
    canonical,
    directory,
    file,
    host_file,
    normalize_tar,
    sha256,
    symlink,
    tar_tree,
    write_tar,
)
from pytest_codelab.engine.images.commands import ImageError, run
from pytest_codelab.engine.timeouts import Timeouts

#: Bump to invalidate every cached layer and image (a change of how layers are made).
RECIPE_VERSION = "1"
SUITE = "bookworm"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_MIRRORS = (
    "deb http://deb.debian.org/debian bookworm main",
    "deb http://deb.debian.org/debian bookworm-updates main",
    "deb http://deb.debian.org/debian-security bookworm-security main",
)
#: Left out of Debian root filesystems: documentation, and what the runtime mounts anyway.
DPKG_EXCLUDES = (
    "/usr/share/doc/*",
    "/usr/share/man/*",
    "/usr/share/info/*",
    "/usr/share/locale/*",
    "/usr/share/lintian/*",
)


class LayerBuilder(Protocol):
    """What a layer's ``make`` uses of the builder (which imports this module)."""

    timeouts: Timeouts

    @property
    def root(self) -> Path: ...

    def layer(self, layer: Layer) -> LayerResult: ...

    def ensure_tool(self, tool: str, package: str) -> None: ...


class Layer:
    """A filesystem layer: its inputs (hashed into the cache key) and how to make its tar."""

    name: str
    role: str  # shown in progress lines: "base layer", "code layer", ...
    hint: str  # e.g. "mmdebstrap, ~1 min"

    def inputs(self) -> object:
        """JSON-able description of everything that decides the layer's content."""
        raise NotImplementedError

    def key(self) -> str:
        """Cache key: hash of the recipe version, the layer type and its inputs."""
        return sha256(canonical([RECIPE_VERSION, type(self).__name__, self.inputs()]))

    def make(self, out: Path, builder: LayerBuilder) -> None:
        """Write the layer's uncompressed tar to ``out``."""
        raise NotImplementedError


@dataclass(frozen=True, eq=False)
class FilesLayer(Layer):
    """A layer from explicit entries (generated files, host files, code)."""

    name: str
    entries: tuple[Entry, ...]
    role: str = "layer"
    hint: str = ""

    def inputs(self) -> object:
        return [e.digest() for e in self.entries]

    def make(self, out: Path, builder: LayerBuilder) -> None:
        with out.open("wb") as f:
            write_tar(self.entries, f)


def apt_mirrors(suite: str = SUITE, sources: Path = Path("/etc/apt")) -> list[str]:
    """Debian sources of this machine for ``suite`` (and -updates, -security) as one-line
    ``deb URI SUITE COMPONENTS`` entries, so mmdebstrap uses the mirror apt uses here."""
    found: list[str] = []

    def add(uri: str, suites: Iterable[str], comps: Sequence[str]) -> None:
        for s in suites:
            if s == suite or s.startswith(suite + "-"):
                line = f"deb {uri.rstrip('/')} {s} {' '.join(comps or ['main'])}"
                if line not in found:
                    found.append(line)

    files = [sources / "sources.list"] + sorted((sources / "sources.list.d").glob("*"))
    for path in files:
        try:
            text = path.read_text()
        except OSError:
            continue
        if path.suffix == ".list" or path.name == "sources.list":
            for raw in text.splitlines():
                parts = raw.split("#", 1)[0].split()
                if len(parts) >= 3 and parts[0] == "deb":
                    if parts[1].startswith("["):
                        while parts and not parts[1].endswith("]"):
                            parts.pop(1)
                        parts.pop(1)
                    if len(parts) >= 3:
                        add(parts[1], [parts[2]], ["main"])
        elif path.suffix == ".sources":
            for stanza in re.split(r"\n\s*\n", text):
                fields: dict[str, str] = {}
                for raw in stanza.splitlines():
                    if raw.startswith("#") or ":" not in raw or raw[:1].isspace():
                        continue
                    k, v = raw.split(":", 1)
                    fields[k.strip().lower()] = v.strip()
                if "deb" not in fields.get("types", "").split():
                    continue
                if fields.get("enabled", "yes").lower() == "no":
                    continue
                for uri in fields.get("uris", "").split():
                    add(uri, fields.get("suites", "").split(), ["main"])
    return found or list(DEFAULT_MIRRORS)


@dataclass(frozen=True, eq=False)
class DebianLayer(Layer):
    """A whole Debian root filesystem made by mmdebstrap (minbase + packages).

    Hooks are mmdebstrap hook commands (``"$1"`` is the root): ``essential_hooks`` run
    before the packages are installed (e.g. fixed uids), ``customize_hooks`` after.
    """

    name: str
    packages: tuple[str, ...]
    essential_hooks: tuple[str, ...] = ()
    customize_hooks: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()  # more dpkg path-exclude patterns
    suite: str = SUITE
    variant: str = "minbase"
    role: str = "base layer"
    hint: str = "mmdebstrap, ~1 min"

    def inputs(self) -> object:
        return [
            self.suite,
            self.variant,
            sorted(self.packages),
            list(self.essential_hooks),
            list(self.customize_hooks),
            [*DPKG_EXCLUDES, *self.excludes],
        ]

    def make(self, out: Path, builder: LayerBuilder) -> None:
        builder.ensure_tool("mmdebstrap", "mmdebstrap")
        raw = out.with_name(out.name + ".raw")
        cmd = [
            "mmdebstrap",
            f"--variant={self.variant}",
            "--format=tar",
            "--quiet",
            '--aptopt=APT::Install-Recommends "false"',
            '--aptopt=APT::Install-Suggests "false"',
        ]
        for pattern in (*DPKG_EXCLUDES, *self.excludes):
            cmd.append(f"--dpkgopt=path-exclude={pattern}")
        if self.packages:
            cmd.append("--include=" + ",".join(self.packages))
        cmd += [f"--essential-hook={h}" for h in self.essential_hooks]
        cmd += [f"--customize-hook={h}" for h in self.customize_hooks]
        cmd += [self.suite, str(raw), *apt_mirrors(self.suite)]
        env = {
            "PATH": DEFAULT_PATH,
            "HOME": "/root",
            "LANG": "C.UTF-8",
            "SOURCE_DATE_EPOCH": str(EPOCH),
            "TMPDIR": str(out.parent),
        }
        env.update({k: v for k, v in os.environ.items() if k.lower().endswith("_proxy")})
        try:
            run(cmd, env=env, timeout=builder.timeouts.debootstrap)
            normalize_tar(raw, out)
        finally:
            raw.unlink(missing_ok=True)


@dataclass(frozen=True, eq=False)
class ChrootLayer(Layer):
    """Files made by a shell script run in a chroot of base layers (network allowed):
    only ``capture`` paths end up in the layer, e.g. a venv installed with pip."""

    name: str
    base: tuple[Layer, ...]
    script: str
    capture: tuple[str, ...]
    role: str = "layer"
    hint: str = ""

    def inputs(self) -> object:
        return [[b.key() for b in self.base], self.script, list(self.capture)]

    def make(self, out: Path, builder: LayerBuilder) -> None:
        if os.geteuid() != 0:
            raise ImageError(f"layer {self.name} needs root (chroot, mounts)")
        with tempfile.TemporaryDirectory(dir=out.parent, prefix="chroot-") as tmp:
            root = Path(tmp) / "root"
            root.mkdir()
            try:
                for b in self.base:
                    run(
                        [
                            "tar",
                            "-xpf",
                            str(builder.layer(b).path),
                            "--numeric-owner",
                            "-C",
                            str(root),
                        ]
                    )
                ca = Path(os.environ.get("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt"))
                (root / "tmp").mkdir(exist_ok=True)
                if ca.is_file():
                    shutil.copyfile(ca, root / "tmp" / "build-ca.crt")
                resolv = root / "etc" / "resolv.conf"
                if resolv.is_symlink() or resolv.exists():
                    resolv.unlink()
                shutil.copyfile("/etc/resolv.conf", resolv)
                inner = {
                    "PATH": DEFAULT_PATH,
                    "HOME": "/root",
                    "LANG": "C.UTF-8",
                    "PIP_NO_CACHE_DIR": "1",
                    "PIP_DISABLE_PIP_VERSION_CHECK": "1",
                    "PIP_DEFAULT_TIMEOUT": f"{builder.timeouts.pip_socket:g}",
                }
                if ca.is_file():
                    inner.update(
                        PIP_CERT="/tmp/build-ca.crt",
                        SSL_CERT_FILE="/tmp/build-ca.crt",
                        REQUESTS_CA_BUNDLE="/tmp/build-ca.crt",
                    )
                for k in (
                    "PIP_INDEX_URL",
                    "PIP_EXTRA_INDEX_URL",
                    "PIP_TRUSTED_HOST",
                    "http_proxy",
                    "https_proxy",
                    "no_proxy",
                ):
                    if k in os.environ:
                        inner[k] = os.environ[k]
                envs = " ".join(shlex.quote(f"{k}={v}") for k, v in inner.items())
                # A private mount namespace: the bind mounts vanish with the process.
                setup = (
                    f'R={shlex.quote(str(root))}; mount --rbind /dev "$R/dev"; '
                    f'mount -t proc proc "$R/proc"; '
                    f'exec chroot "$R" /usr/bin/env -i {envs} /bin/sh -ec '
                    f"{shlex.quote(self.script)}"
                )
                run(
                    ["unshare", "--mount", "--propagation", "private", "--", "sh", "-ec", setup],
                    timeout=builder.timeouts.chroot_script,
                )
                tar_tree(root, self.capture, out)
            finally:
                _assert_unmounted(root)


def _assert_unmounted(root: Path) -> None:
    """Refuse to delete a build root that still has mounts (it would delete /dev)."""
    prefix = str(root) + "/"
    with open("/proc/self/mountinfo") as f:
        mounted = [ln.split()[4] for ln in f if ln.split()[4].startswith(prefix)]
    if mounted:
        raise ImageError(f"build root still has mounts, not removed: {mounted[0]}")


@functools.cache
def debian_package_version(package: str) -> str:
    """The candidate version apt would install (runs ``apt-get update`` once if unknown);
    part of a .deb layer's key, so a Debian update rebuilds that layer. Asked while keys
    are computed, where no timeout scale is at hand: ``apt-get update`` gets the base
    deadline."""
    for attempt in range(2):
        out = run(["apt-cache", "policy", package])
        m = re.search(r"Candidate:\s*(\S+)", out)
        if m and m.group(1) != "(none)":
            return m.group(1)
        if attempt == 0:
            run(["apt-get", "update", "-qq"], timeout=Timeouts().apt)
    raise ImageError(f"Debian package not available: {package}")


def fetch_deb(package: str, dest: Path, *, timeout: float) -> Path:
    """Download one .deb (the candidate version) into ``dest`` with ``apt-get download``."""
    version = debian_package_version(package)
    dest.mkdir(parents=True, exist_ok=True)
    # apt-get download writes the epoch as %3a (busybox-static_1%3a1.35.0-4_amd64.deb).
    pattern = f"{package}_{version.replace(':', '%3a')}_*.deb"
    found = sorted(dest.glob(pattern))
    if not found:
        run(["apt-get", "download", "-q", f"{package}={version}"], cwd=dest, timeout=timeout)
        found = sorted(dest.glob(pattern))
    if not found:
        raise ImageError(f"apt-get download {package} left no {pattern} in {dest}")
    return found[0]


def _extract_deb(deb: Path, dest: Path) -> Path:
    run(["dpkg-deb", "-x", str(deb), str(dest)])
    return dest


def passwd_entries(extra_users: Sequence[tuple[str, int, str]] = ()) -> list[Entry]:
    """/etc/passwd and /etc/group with root, ``extra_users`` and nobody/nogroup; /tmp, /root."""
    users = [
        ("root", 0, "/root", "/bin/sh"),
        *((n, u, h, "/sbin/nologin") for n, u, h in extra_users),
        ("nobody", 65534, "/nonexistent", "/sbin/nologin"),
    ]
    passwd = "".join(f"{n}:x:{u}:{u}:{n}:{h}:{sh}\n" for n, u, h, sh in users)
    group = "".join(f"{'nogroup' if u == 65534 else n}:x:{u}:\n" for n, u, _, _ in users)
    return [
        file("etc/passwd", passwd),
        file("etc/group", group),
        directory("tmp", 0o1777),
        directory("root", 0o700),
    ]


@dataclass(frozen=True, eq=False)
class BusyboxLayer(Layer):
    """busybox-static from Debian with a symlink per applet (like the busybox image)."""

    name: str = "busybox"
    role: str = "layer"
    hint: str = "busybox-static .deb"

    def inputs(self) -> object:
        return ["busybox-static", debian_package_version("busybox-static")]

    def make(self, out: Path, builder: LayerBuilder) -> None:
        deb = fetch_deb("busybox-static", builder.root / "debs", timeout=builder.timeouts.apt)
        with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
            binary = _extract_deb(deb, Path(tmp)) / "bin" / "busybox"
            applets = run([str(binary), "--list-full"]).split()
            entries = [
                host_file("bin/busybox", binary, 0o755),
                *passwd_entries(),
                file("etc/nsswitch.conf", "hosts: files dns\n"),
                directory("home"),
                directory("var/spool/cron/crontabs"),
            ]
            for applet in sorted(set(applets)):
                if applet != "bin/busybox":
                    entries.append(symlink(applet, "/bin/busybox"))
            with out.open("wb") as f:
                write_tar(entries, f)


@dataclass(frozen=True, eq=False)
class CaCertificatesLayer(Layer):
    """/etc/ssl/certs/ca-certificates.crt built from Debian's ca-certificates .deb (the
    Mozilla set only, independent of this host's own trust store)."""

    name: str = "ca-certificates"
    role: str = "layer"
    hint: str = "ca-certificates .deb"

    def inputs(self) -> object:
        return ["ca-certificates", debian_package_version("ca-certificates")]

    def make(self, out: Path, builder: LayerBuilder) -> None:
        deb = fetch_deb("ca-certificates", builder.root / "debs", timeout=builder.timeouts.apt)
        with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
            root = _extract_deb(deb, Path(tmp))
            certs = sorted((root / "usr/share/ca-certificates/mozilla").glob("*.crt"))
            if not certs:
                raise ImageError(f"no certificates in {deb.name}")
            bundle = b"".join(c.read_bytes().rstrip(b"\n") + b"\n" for c in certs)
            with out.open("wb") as f:
                write_tar(
                    [
                        file("etc/ssl/certs/ca-certificates.crt", bundle),
                        symlink("etc/ssl/cert.pem", "certs/ca-certificates.crt"),
                    ],
                    f,
                )
