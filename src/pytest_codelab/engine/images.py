"""Local image builder: docker-archive images from Debian packages and files, without Docker.

Why: the local cluster has no Docker engine and no registry. Every image it runs is built
here as a docker-archive (the ``docker save`` format) and imported into containerd with
``ctr images import``. An image is ordered tar layers plus a config; layers are made by
mmdebstrap (Debian root filesystems), by a chroot step (a venv) or from files, and are
cached by a hash of their inputs, so a second build is near-instant and a change to one
service's code rebuilds only that service's code layer.

Public API: :func:`build`, :func:`build_all`, :func:`build_recipe`, :func:`recipes`,
:func:`static`, :func:`debian_layer`, :func:`load_image`, :func:`normalize_ref`.
CLI: ``python -m pytest_codelab.engine.images build [names...]``.
"""

from __future__ import annotations

import argparse
import copy
import fcntl
import functools
import hashlib
import io
import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from pytest_codelab.engine.errors import EngineError
from pytest_codelab.engine.paths import cache_dir as _engine_cache_dir

#: Bump to invalidate every cached layer and image (a change of how layers are made).
RECIPE_VERSION = "1"
SUITE = "bookworm"
#: mtime of generated entries, upper bound of mtimes in normalized tars, image "created".
EPOCH = 1735689600  # 2025-01-01T00:00:00Z
CREATED = "2025-01-01T00:00:00Z"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#: The LiteLLM image name the bundled manifests use (manifests/20-llm-proxy.yaml).
LITELLM_IMAGE = "ghcr.io/berriai/litellm:v1.80.11-stable.1"
#: The Locust the gate runs (its master and the worker pods must match).
LOCUST_VERSION = "2.47.0"
LOCUST_IMAGE = f"codelab/locust:{LOCUST_VERSION}"
#: The PyPI release installed into that image (the version in its tag).
LITELLM_VERSION = "1.80.11"
SERVICE_VERSIONS = ("1.0.0", "1.1.0")
#: name -> (module file, port) of the reference CodeLab services (images/services/).
SERVICES = {
    "gateway": ("gateway.py", 8000),
    "agent-runtime": ("agent_runtime.py", 8001),
    "auth-service": ("auth_service.py", 8003),
}
SERVICE_UID = 10001  # manifests run the services with runAsUser/runAsGroup 10001
PYTHON_PACKAGES = (
    "python3",
    "python3-venv",
    "python3-psycopg2",
    "python3-redis",
    "curl",
    "procps",
    "ca-certificates",
)
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
_DROP_PREFIXES = (
    "dev/",
    "proc/",
    "sys/",
    "var/cache/apt/",
    "var/lib/apt/lists/",
    "var/log/apt/",
    "var/cache/ldconfig/aux-cache",
)
_DROP_FILES = {
    "var/log/dpkg.log",
    "var/log/alternatives.log",
    "var/log/bootstrap.log",
    "etc/machine-id",
    "var/lib/dbus/machine-id",
}

Log = Callable[[str], None]


class ImageError(EngineError):
    """An image could not be built or imported; ``detail`` holds the command's output."""


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def images_dir(cache: Path | None = None) -> Path:
    """``${CODELAB_CACHE:-~/.cache/pytest-codelab}/images``: layers, archives, .deb files."""
    return (cache or _engine_cache_dir()) / "images"


def source_dir() -> Path:
    """The images/ folder (service code, entrypoint scripts): ``$CODELAB_IMAGES_DIR`` or the
    checkout's, or the copy bundled in the wheel."""
    env = os.environ.get("CODELAB_IMAGES_DIR")
    if env:
        return Path(env)
    here = Path(__file__).resolve()
    for candidate in (here.parents[3] / "images", here.parents[1] / "_bundled" / "images"):
        if candidate.is_dir():
            return candidate
    return here.parents[3] / "images"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _canonical(obj: object) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def _file_sha256(path: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


def _run(
    cmd: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float | None = None,
) -> str:
    """Run a command; on failure raise ImageError naming it, with its output tail."""
    try:
        proc = subprocess.run(
            list(cmd),
            env=dict(env) if env is not None else None,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError as exc:
        raise ImageError(f"command not found: {cmd[0]} (in: {shlex.join(cmd)})") from exc
    except subprocess.TimeoutExpired as exc:
        out = exc.output if isinstance(exc.output, str) else ""
        raise ImageError(f"command timed out after {timeout}s: {shlex.join(cmd)}", out) from exc
    if proc.returncode != 0:
        raise ImageError.from_command(list(cmd), proc.returncode, proc.stdout)
    return proc.stdout


# --------------------------------------------------------------------------- tar entries


@dataclass(frozen=True)
class Entry:
    """One tar entry of a generated layer. ``path`` is relative to the image root."""

    path: str
    kind: str = "file"  # file | dir | symlink
    mode: int = 0o644
    data: bytes = b""
    source: str = ""  # host file whose content is used instead of data
    target: str = ""  # symlink target
    uid: int = 0
    gid: int = 0

    def digest(self) -> str:
        """Hash of everything that ends up in the tar (content of ``source`` included)."""
        content = _file_sha256(Path(self.source))[0] if self.source else _sha256(self.data)
        return _sha256(
            _canonical([self.path, self.kind, self.mode, content, self.target, self.uid, self.gid])
        )


def _clean(path: str) -> str:
    path = path.lstrip("/")
    while path.startswith("./"):
        path = path[2:]
    path = path.rstrip("/")
    return "" if path == "." else path


def file(path: str, data: str | bytes, mode: int = 0o644, uid: int = 0, gid: int = 0) -> Entry:
    """A regular file with the given content."""
    raw = data.encode() if isinstance(data, str) else data
    return Entry(_clean(path), "file", mode, raw, uid=uid, gid=gid)


def host_file(
    path: str, source: Path | str, mode: int | None = None, uid: int = 0, gid: int = 0
) -> Entry:
    """A regular file copied from the host (read when the layer is hashed and written)."""
    src = Path(source)
    if not src.is_file():
        raise ImageError(f"file for image not found: {src}")
    m = mode if mode is not None else (0o755 if os.access(src, os.X_OK) else 0o644)
    return Entry(_clean(path), "file", m, source=str(src), uid=uid, gid=gid)


def directory(path: str, mode: int = 0o755, uid: int = 0, gid: int = 0) -> Entry:
    """A directory."""
    return Entry(_clean(path), "dir", mode, uid=uid, gid=gid)


def symlink(path: str, target: str) -> Entry:
    """A symbolic link."""
    return Entry(_clean(path), "symlink", 0o777, target=target)


def host_tree(
    dest: str,
    source: Path | str,
    *,
    exclude: Sequence[str] = ("__pycache__",),
    mode: int | None = None,
) -> list[Entry]:
    """Every file under a host folder, placed under ``dest`` (sorted, root-owned)."""
    src = Path(source)
    out: list[Entry] = []
    for p in sorted(src.rglob("*")):
        rel = p.relative_to(src)
        if any(part in exclude or part.endswith(".pyc") for part in rel.parts):
            continue
        target = f"{_clean(dest)}/{rel.as_posix()}"
        if p.is_symlink():
            out.append(symlink(target, os.readlink(p)))
        elif p.is_dir():
            out.append(directory(target))
        else:
            out.append(host_file(target, p, mode))
    return out


def write_tar(entries: Iterable[Entry], out: BinaryIO) -> None:
    """Write entries as a deterministic tar: sorted paths, parents first, fixed mtime.

    Later entries with the same path replace earlier ones; missing parent directories are
    added (root-owned, 0755) so that every tar unpacks the same way everywhere.
    """
    by_path: dict[str, Entry] = {}
    for e in entries:
        p = _clean(e.path)
        if not p:
            continue
        parts = p.split("/")
        for i in range(1, len(parts)):
            by_path.setdefault("/".join(parts[:i]), Entry("/".join(parts[:i]), "dir", 0o755))
        by_path[p] = e
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for p in sorted(by_path):
            e = by_path[p]
            info = tarfile.TarInfo(p if e.kind != "dir" else p + "/")
            info.mtime, info.uid, info.gid, info.uname, info.gname = EPOCH, e.uid, e.gid, "", ""
            info.mode = e.mode & 0o7777
            if e.kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif e.kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, e.target
                tar.addfile(info)
            elif e.source:
                info.size = os.path.getsize(e.source)
                with open(e.source, "rb") as f:
                    tar.addfile(info, f)
            else:
                info.size = len(e.data)
                tar.addfile(info, io.BytesIO(e.data))


def _keep(name: str) -> bool:
    if name in _DROP_FILES:
        return False
    return not any(name.startswith(p) for p in _DROP_PREFIXES)


def normalize_tar(
    src: Path, dst: Path, *, keep: Callable[[str], bool] = _keep, clamp: int = EPOCH
) -> None:
    """Rewrite a root filesystem tar deterministically: sorted names without ``./``, mtimes
    clamped to ``clamp``, owner names dropped (numeric ids kept), only xattr PAX headers, and
    hard links re-pointed so that each link follows the entry that holds the data."""
    with tarfile.open(src, "r:") as tin:
        everything = {_clean(m.name): m for m in tin.getmembers()}
        members = {n: m for n, m in everything.items() if n and keep(n)}
        sharing: dict[str, list[str]] = {}  # data member -> kept names that share its data
        for name, m in members.items():
            if m.islnk():
                sharing.setdefault(_clean(m.linkname), []).append(name)
        plan: dict[str, tuple[str, tarfile.TarInfo | str]] = {}
        for target, links in sharing.items():
            data = everything.get(target)
            if data is None or not data.isreg():
                continue
            names = sorted(([target] if target in members else []) + links)
            plan[names[0]] = ("data", data)
            for n in names[1:]:
                plan[n] = ("link", names[0])
        with tarfile.open(dst, "w", format=tarfile.PAX_FORMAT) as tout:
            for name in sorted(members):
                m = members[name]
                action, arg = plan.get(name, ("", ""))
                source = arg if isinstance(arg, tarfile.TarInfo) else m
                info = copy.copy(source)
                info.name = name + "/" if info.isdir() else name
                info.mtime = min(int(source.mtime), clamp)
                info.uname = info.gname = ""
                info.pax_headers = {
                    k: v for k, v in source.pax_headers.items() if k.startswith("SCHILY.xattr.")
                }
                if action == "link":
                    info.type, info.linkname, info.size = tarfile.LNKTYPE, str(arg), 0
                    tout.addfile(info)
                elif info.isreg():
                    tout.addfile(info, tin.extractfile(source))
                else:
                    tout.addfile(info)


def tar_tree(root: Path, paths: Sequence[str], out: Path) -> None:
    """Tar the given paths of a root folder (recursively), keeping owners and modes."""
    entries: list[tuple[str, os.stat_result, Path]] = []
    for top in paths:
        base = root / _clean(top)
        if not base.exists() and not base.is_symlink():
            raise ImageError(f"path to capture not found after the build step: /{_clean(top)}")
        stack = [base]
        while stack:
            p = stack.pop()
            st = p.lstat()
            entries.append((p.relative_to(root).as_posix(), st, p))
            if stat.S_ISDIR(st.st_mode):
                stack.extend(p.iterdir())
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        parents: set[str] = set()
        for rel, _st, _p in entries:
            parts = rel.split("/")
            parents.update("/".join(parts[:i]) for i in range(1, len(parts)))
        names = {rel for rel, _, _ in entries}
        for parent in sorted(parents - names):
            st = (root / parent).lstat()
            info = tarfile.TarInfo(parent + "/")
            info.type, info.mode = tarfile.DIRTYPE, stat.S_IMODE(st.st_mode)
            info.uid, info.gid, info.mtime = st.st_uid, st.st_gid, min(int(st.st_mtime), EPOCH)
            tar.addfile(info)
        for rel, st, p in sorted(entries, key=lambda t: t[0]):
            info = tarfile.TarInfo(rel)
            info.mode, info.uid, info.gid = stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid
            info.mtime, info.uname, info.gname = min(int(st.st_mtime), EPOCH), "", ""
            if stat.S_ISDIR(st.st_mode):
                info.type, info.name = tarfile.DIRTYPE, rel + "/"
                tar.addfile(info)
            elif stat.S_ISLNK(st.st_mode):
                info.type, info.linkname = tarfile.SYMTYPE, os.readlink(p)
                tar.addfile(info)
            elif stat.S_ISREG(st.st_mode):
                info.size = st.st_size
                with p.open("rb") as f:
                    tar.addfile(info, f)


# --------------------------------------------------------------------------- layers


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
        return _sha256(_canonical([RECIPE_VERSION, type(self).__name__, self.inputs()]))

    def make(self, out: Path, builder: Builder) -> None:
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

    def make(self, out: Path, builder: Builder) -> None:
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

    def make(self, out: Path, builder: Builder) -> None:
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
            _run(cmd, env=env, timeout=1800)
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

    def make(self, out: Path, builder: Builder) -> None:
        if os.geteuid() != 0:
            raise ImageError(f"layer {self.name} needs root (chroot, mounts)")
        with tempfile.TemporaryDirectory(dir=out.parent, prefix="chroot-") as tmp:
            root = Path(tmp) / "root"
            root.mkdir()
            try:
                for b in self.base:
                    _run(
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
                    "PIP_DEFAULT_TIMEOUT": "180",
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
                _run(
                    ["unshare", "--mount", "--propagation", "private", "--", "sh", "-ec", setup],
                    timeout=3600,
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
    part of a .deb layer's key, so a Debian update rebuilds that layer."""
    for attempt in range(2):
        out = _run(["apt-cache", "policy", package])
        m = re.search(r"Candidate:\s*(\S+)", out)
        if m and m.group(1) != "(none)":
            return m.group(1)
        if attempt == 0:
            _run(["apt-get", "update", "-qq"], timeout=600)
    raise ImageError(f"Debian package not available: {package}")


def fetch_deb(package: str, dest: Path) -> Path:
    """Download one .deb (the candidate version) into ``dest`` with ``apt-get download``."""
    version = debian_package_version(package)
    dest.mkdir(parents=True, exist_ok=True)
    # apt-get download writes the epoch as %3a (busybox-static_1%3a1.35.0-4_amd64.deb).
    pattern = f"{package}_{version.replace(':', '%3a')}_*.deb"
    found = sorted(dest.glob(pattern))
    if not found:
        _run(["apt-get", "download", "-q", f"{package}={version}"], cwd=dest, timeout=600)
        found = sorted(dest.glob(pattern))
    if not found:
        raise ImageError(f"apt-get download {package} left no {pattern} in {dest}")
    return found[0]


def _extract_deb(deb: Path, dest: Path) -> Path:
    _run(["dpkg-deb", "-x", str(deb), str(dest)])
    return dest


def _passwd_entries(extra_users: Sequence[tuple[str, int, str]] = ()) -> list[Entry]:
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

    def make(self, out: Path, builder: Builder) -> None:
        deb = fetch_deb("busybox-static", builder.root / "debs")
        with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
            binary = _extract_deb(deb, Path(tmp)) / "bin" / "busybox"
            applets = _run([str(binary), "--list-full"]).split()
            entries = [
                host_file("bin/busybox", binary, 0o755),
                *_passwd_entries(),
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

    def make(self, out: Path, builder: Builder) -> None:
        deb = fetch_deb("ca-certificates", builder.root / "debs")
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


# --------------------------------------------------------------------------- images


@dataclass(frozen=True)
class ImageConfig:
    """The runtime part of an image config (Docker's ``config`` object)."""

    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    env: tuple[tuple[str, str], ...] = (("PATH", DEFAULT_PATH),)
    workdir: str = ""
    ports: tuple[str, ...] = ()  # "8000/tcp"
    user: str = ""
    labels: tuple[tuple[str, str], ...] = ()
    stop_signal: str = ""
    volumes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, object]:
        """Docker image config ``config`` object (only the set fields)."""
        out: dict[str, object] = {"Env": [f"{k}={v}" for k, v in self.env]}
        if self.entrypoint is not None:
            out["Entrypoint"] = list(self.entrypoint)
        if self.cmd is not None:
            out["Cmd"] = list(self.cmd)
        if self.workdir:
            out["WorkingDir"] = self.workdir
        if self.ports:
            out["ExposedPorts"] = {p if "/" in p else f"{p}/tcp": {} for p in self.ports}
        if self.user:
            out["User"] = self.user
        if self.labels:
            out["Labels"] = dict(self.labels)
        if self.stop_signal:
            out["StopSignal"] = self.stop_signal
        if self.volumes:
            out["Volumes"] = {v: {} for v in self.volumes}
        return out


def env(**values: str) -> tuple[tuple[str, str], ...]:
    """An image environment with PATH first (defaulting to the usual one)."""
    values.setdefault("PATH", DEFAULT_PATH)
    path = values.pop("PATH")
    return (("PATH", path), *sorted(values.items()))


@dataclass(frozen=True)
class Recipe:
    """One image: its tags, ordered layers and config. ``name`` names the archive."""

    name: str
    tags: tuple[str, ...]
    layers: tuple[Layer, ...]
    config: ImageConfig
    description: str = ""

    def key(self) -> str:
        """Cache key of the archive: layer keys, config and tags."""
        return _sha256(
            _canonical(
                [
                    RECIPE_VERSION,
                    list(self.tags),
                    [la.key() for la in self.layers],
                    self.config.to_json(),
                ]
            )
        )


@dataclass(frozen=True)
class LayerResult:
    """A built layer in the cache: its tar, digest (= diff_id, uncompressed) and size."""

    path: Path
    digest: str
    size: int


@dataclass
class Builder:
    """Builds layers and archives into the cache; one build at a time per cache (file lock)."""

    cache: Path | None = None
    log: Log = _stderr
    force: bool = False
    _done: dict[str, LayerResult] = field(default_factory=dict, init=False)
    _lock_depth: int = field(default=0, init=False)
    _lock_file: BinaryIO | None = field(default=None, init=False)

    @property
    def root(self) -> Path:
        return images_dir(self.cache)

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the cache lock (xdist workers and parallel CLIs build one at a time)."""
        if self._lock_depth == 0:
            self.root.mkdir(parents=True, exist_ok=True)
            self._lock_file = open(self.root / ".lock", "wb")  # noqa: SIM115
            fcntl.flock(self._lock_file, fcntl.LOCK_EX)
        self._lock_depth += 1
        try:
            yield
        finally:
            self._lock_depth -= 1
            if self._lock_depth == 0 and self._lock_file is not None:
                self._lock_file.close()
                self._lock_file = None

    def ensure_tool(self, tool: str, package: str) -> None:
        """Install a missing host tool from Debian (root only)."""
        if shutil.which(tool):
            return
        if os.geteuid() != 0:
            raise ImageError(f"{tool} is missing: apt-get install {package} (as root)")
        self.log(f"[images] installing {package} (apt-get)...")
        _run(
            ["apt-get", "install", "-y", "-q", package],
            timeout=900,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )

    def layer(self, layer: Layer) -> LayerResult:
        """The layer's tar from the cache, building it first if its inputs are new."""
        key = layer.key()
        if key in self._done:
            return self._done[key]
        layers = self.root / "layers"
        path, meta = layers / f"{key}.tar", layers / f"{key}.json"
        with self.locked():
            if not self.force and path.is_file() and meta.is_file():
                info = json.loads(meta.read_text())
                if info.get("size") == path.stat().st_size:
                    self.log(f"[images] {layer.role} {layer.name}: cached")
                    result = LayerResult(path, info["digest"], info["size"])
                    self._done[key] = result
                    return result
            hint = f" ({layer.hint})" if layer.hint else ""
            self.log(f"[images] building {layer.role} {layer.name}{hint}...")
            started = time.monotonic()
            layers.mkdir(parents=True, exist_ok=True)
            tmp = layers / f"{key}.tmp{os.getpid()}"
            try:
                layer.make(tmp, self)
                digest, size = _file_sha256(tmp)
                os.replace(tmp, path)
            finally:
                tmp.unlink(missing_ok=True)
            meta.write_text(
                json.dumps(
                    {
                        "name": layer.name,
                        "digest": f"sha256:{digest}",
                        "size": size,
                        "built": time.time(),
                    },
                    indent=1,
                )
            )
            self.log(
                f"[images] {layer.role} {layer.name}: built, {size / 1e6:.1f} MB "
                f"in {time.monotonic() - started:.1f}s"
            )
            result = LayerResult(path, f"sha256:{digest}", size)
            self._done[key] = result
            return result

    def build(self, recipe: Recipe) -> Path:
        """The recipe's docker-archive in the cache, (re)built only if its inputs changed."""
        archives = self.root / "archives"
        archive, meta = archives / f"{recipe.name}.tar", archives / f"{recipe.name}.json"
        key = recipe.key()
        with self.locked():
            if not self.force and archive.is_file() and meta.is_file():
                info = json.loads(meta.read_text())
                if info.get("key") == key and info.get("size") == archive.stat().st_size:
                    self.log(f"[images] image {recipe.name} ({', '.join(recipe.tags)}): cached")
                    return archive
            started = time.monotonic()
            results = [self.layer(la) for la in recipe.layers]
            archives.mkdir(parents=True, exist_ok=True)
            tmp = archives / f"{recipe.name}.tar.tmp{os.getpid()}"
            try:
                config_digest = write_archive(tmp, recipe, results)
                os.replace(tmp, archive)
            finally:
                tmp.unlink(missing_ok=True)
            size = archive.stat().st_size
            meta.write_text(
                json.dumps(
                    {
                        "key": key,
                        "tags": list(recipe.tags),
                        "config": config_digest,
                        "size": size,
                        "layers": [
                            {"name": la.name, "digest": r.digest, "size": r.size}
                            for la, r in zip(recipe.layers, results, strict=True)
                        ],
                    },
                    indent=1,
                )
            )
            self.log(
                f"[images] image {recipe.name} ({', '.join(recipe.tags)}): "
                f"{size / 1e6:.1f} MB in {time.monotonic() - started:.1f}s -> {archive}"
            )
            return archive


def image_config(recipe: Recipe, results: Sequence[LayerResult]) -> bytes:
    """The image config JSON (canonical bytes, so its digest is stable)."""
    return _canonical(
        {
            "architecture": "amd64",
            "os": "linux",
            "created": CREATED,
            "config": recipe.config.to_json(),
            "rootfs": {"type": "layers", "diff_ids": [r.digest for r in results]},
            "history": [
                {"created": CREATED, "created_by": f"pytest-codelab images: {la.name}"}
                for la in recipe.layers
            ],
        }
    )


def write_archive(out: Path, recipe: Recipe, results: Sequence[LayerResult]) -> str:
    """Write a docker-archive: manifest.json, config and layers under blobs/sha256/<hex>.

    Returns the config digest (the image id). The archive is deterministic for the same
    layers and config.
    """
    config = image_config(recipe, results)
    config_hex = _sha256(config)
    layer_paths = [f"blobs/sha256/{r.digest.split(':', 1)[1]}" for r in results]
    manifest = [
        {
            "Config": f"blobs/sha256/{config_hex}",
            "RepoTags": list(recipe.tags),
            "Layers": layer_paths,
        }
    ]

    def add(tar: tarfile.TarFile, name: str, size: int, fobj: BinaryIO | None) -> None:
        info = tarfile.TarInfo(name)
        info.mtime, info.mode = EPOCH, 0o644
        if fobj is None:
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        else:
            info.size = size
            tar.addfile(info, fobj)

    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        for d in ("blobs/", "blobs/sha256/"):
            add(tar, d, -1, None)
        add(tar, f"blobs/sha256/{config_hex}", len(config), io.BytesIO(config))
        seen: set[str] = set()
        for path, r in zip(layer_paths, results, strict=True):
            if path in seen:
                continue
            seen.add(path)
            with r.path.open("rb") as f:
                add(tar, path, r.size, f)
        data = json.dumps(manifest, indent=None, separators=(",", ":")).encode()
        add(tar, "manifest.json", len(data), io.BytesIO(data))
        repos: dict[str, dict[str, str]] = {}
        for t in recipe.tags:
            repo, _, tag = normalize_ref(t, short=True).rpartition(":")
            repos.setdefault(repo, {})[tag] = config_hex
        data = json.dumps(repos, sort_keys=True).encode()
        add(tar, "repositories", len(data), io.BytesIO(data))
    return f"sha256:{config_hex}"


def normalize_ref(ref: str, *, short: bool = False) -> str:
    """Full image reference as containerd stores it: ``busybox`` ->
    ``docker.io/library/busybox:latest``. ``short`` gives Docker's familiar form."""
    name, digest = (ref.split("@", 1) + [""])[:2]
    last = name.rsplit("/", 1)[-1]
    if ":" not in last and not digest:
        name += ":latest"
    first = name.split("/", 1)[0]
    has_domain = "/" in name and ("." in first or ":" in first or first == "localhost")
    if not has_domain:
        name = "docker.io/" + (name if "/" in name else "library/" + name)
    if short:
        name = name.removeprefix("docker.io/").removeprefix("library/")
    return name + (f"@{digest}" if digest else "")


# --------------------------------------------------------------------------- recipes


def debian_layer(
    name: str,
    packages: Sequence[str],
    *,
    essential_hooks: Sequence[str] = (),
    customize_hooks: Sequence[str] = (),
    excludes: Sequence[str] = (),
) -> DebianLayer:
    """A Debian bookworm minbase root filesystem with ``packages`` (no recommends, no docs;
    ``excludes`` are more dpkg path-exclude patterns)."""
    return DebianLayer(
        name, tuple(packages), tuple(essential_hooks), tuple(customize_hooks), tuple(excludes)
    )


def _system_user(name: str, uid: int, home: str, shell: str = "/usr/sbin/nologin") -> str:
    """An essential hook creating a system user/group with a fixed id before the packages
    that would create it with a random one (so securityContext ids are predictable)."""
    return (
        f'echo "{name}:x:{uid}:" >> "$1/etc/group"; '
        f'echo "{name}:!::" >> "$1/etc/gshadow"; '
        f'echo "{name}:x:{uid}:{uid}:{name}:{home}:{shell}" >> "$1/etc/passwd"; '
        f'echo "{name}:!:19000:0:99999:7:::" >> "$1/etc/shadow"'
    )


def python_layer() -> DebianLayer:
    """Python base: Debian python3 + psycopg2 + redis + venv + curl + procps, user 10001."""
    return debian_layer(
        "python",
        PYTHON_PACKAGES,
        essential_hooks=[
            _system_user("codelab", SERVICE_UID, "/app"),
        ],
    )


def static_base_layers() -> tuple[Layer, ...]:
    """What a single static binary needs: passwd/group (root, nonroot 65532, nobody), /tmp,
    nsswitch.conf and the Mozilla CA bundle."""
    files = FilesLayer(
        "static-base",
        tuple(
            [
                *_passwd_entries([("nonroot", 65532, "/home/nonroot")]),
                directory("home/nonroot", 0o700, 65532, 65532),
                file("etc/nsswitch.conf", "hosts: files dns\n"),
                directory("var/run"),
            ]
        ),
    )
    return (CaCertificatesLayer(), files)


def static(
    name: str,
    binary: Path | str,
    entrypoint: Sequence[str] | None = None,
    *,
    tags: Sequence[str] | None = None,
    path: str | None = None,
    cmd: Sequence[str] | None = None,
    user: str = "",
    env_vars: Mapping[str, str] | None = None,
    ports: Sequence[str] = (),
    extra: Sequence[Entry] = (),
) -> Recipe:
    """An image of one static binary (distroless-like): CA bundle, passwd, /tmp, the binary.

    ``name`` names the archive and is the tag unless ``tags`` are given; the binary goes to
    ``path`` (default ``/<basename>``) and is the entrypoint unless one is given.
    """
    src = Path(binary)
    dest = path or f"/{src.name}"
    code = FilesLayer(f"{name}-binary", (host_file(dest, src, 0o755), *extra), role="layer")
    return Recipe(
        name=name.replace("/", "_").replace(":", "_"),
        tags=tuple(tags) if tags else (name,),
        layers=(*static_base_layers(), code),
        config=ImageConfig(
            entrypoint=tuple(entrypoint) if entrypoint else (dest,),
            cmd=tuple(cmd) if cmd is not None else None,
            env=env(**dict(env_vars or {})),
            user=user,
            ports=tuple(ports),
        ),
        description=f"static binary {src.name}",
    )


def busybox_recipe() -> Recipe:
    """busybox:1.36 / busybox:latest (Debian's busybox-static; see images/README.md)."""
    return Recipe(
        "busybox",
        ("busybox:1.36", "busybox:latest"),
        (BusyboxLayer(),),
        ImageConfig(cmd=("sh",)),
        "busybox-static with applet symlinks",
    )


def debian_base_recipe() -> Recipe:
    """codelab/debian-base:bookworm: minbase + ca-certificates, for ad-hoc tools."""
    return Recipe(
        "debian-base",
        ("codelab/debian-base:bookworm",),
        (debian_layer("debian-base", ["ca-certificates"]),),
        ImageConfig(cmd=("bash",)),
        "Debian bookworm minbase",
    )


def python_recipe() -> Recipe:
    """codelab/python-base:bookworm: the layer every Python service image starts from."""
    return Recipe(
        "python",
        ("codelab/python-base:bookworm",),
        (python_layer(),),
        ImageConfig(cmd=("python3",), env=env(LANG="C.UTF-8")),
        "Python base",
    )


def service_code_layer(service: str, src: Path | None = None) -> FilesLayer:
    """The code layer of one service: the shared module and the service's own module."""
    services = (src or source_dir()) / "services"
    module, _port = SERVICES[service]
    return FilesLayer(
        f"{service}-code",
        (
            directory("app", 0o755),
            host_file("app/codelab_common.py", services / "codelab_common.py", 0o644),
            host_file(f"app/{module}", services / module, 0o644),
        ),
        role="code layer",
    )


def service_recipe(service: str, version: str, src: Path | None = None) -> Recipe:
    """ghcr.io/codelab/<service>:<version>: python base + code; the version is in the env."""
    module, port = SERVICES[service]
    return Recipe(
        name=f"{service}-{version}",
        tags=(f"ghcr.io/codelab/{service}:{version}",),
        layers=(python_layer(), service_code_layer(service, src)),
        config=ImageConfig(
            entrypoint=("python3", "-u", f"/app/{module}"),
            env=env(
                LANG="C.UTF-8",
                PYTHONUNBUFFERED="1",
                PYTHONDONTWRITEBYTECODE="1",
                SERVICE_NAME=service,
                SERVICE_VERSION=version,
                PORT=str(port),
            ),
            workdir="/app",
            ports=(f"{port}/tcp",),
            user=f"{SERVICE_UID}:{SERVICE_UID}",
            labels=(
                ("org.opencontainers.image.title", service),
                ("org.opencontainers.image.version", version),
            ),
            stop_signal="SIGTERM",
        ),
        description=f"CodeLab {service} {version} (reference implementation)",
    )


def postgres_recipe(src: Path | None = None) -> Recipe:
    """postgres:15-alpine: Debian postgresql-15 behind the official image's entrypoint
    contract (POSTGRES_USER/PASSWORD/DB, PGDATA, initdb on first start, uid 999)."""
    scripts = (src or source_dir()) / "postgres"
    base = debian_layer(
        "postgres",
        ["postgresql-15"],
        essential_hooks=[_system_user("postgres", 999, "/var/lib/postgresql", "/bin/bash")],
        customize_hooks=[
            'chroot "$1" pg_dropcluster 15 main || true',
            'rm -rf "$1/etc/postgresql/15/main" "$1/var/lib/postgresql/15"',
            "sed -ri \"s!^#?(listen_addresses)\\s*=\\s*\\S+.*!\\1 = '*'!\" "
            '"$1/usr/share/postgresql/15/postgresql.conf.sample"',
            'mkdir -p "$1/var/run/postgresql" "$1/var/lib/postgresql/data" '
            '"$1/docker-entrypoint-initdb.d"',
            'chown -R 999:999 "$1/var/run/postgresql" "$1/var/lib/postgresql"',
            'chmod 3777 "$1/var/run/postgresql"; chmod 1777 "$1/var/lib/postgresql/data"',
            'sed -ri "s!^#?(jit)\\s*=\\s*\\S+.*!\\1 = off!" '
            '"$1/usr/share/postgresql/15/postgresql.conf.sample"',
        ],
        # LLVM (JIT only) is 130 MB of the 370: without llvmjit.so PostgreSQL skips JIT.
        excludes=[
            "/usr/lib/x86_64-linux-gnu/libLLVM-*",
            "/usr/lib/x86_64-linux-gnu/libz3.so*",
            "/usr/lib/postgresql/15/lib/llvmjit*",
            "/usr/lib/postgresql/15/lib/bitcode/*",
        ],
    )
    entry = FilesLayer(
        "postgres-entrypoint",
        (host_file("usr/local/bin/docker-entrypoint.sh", scripts / "docker-entrypoint.sh", 0o755),),
    )
    return Recipe(
        "postgres",
        ("postgres:15-alpine",),
        (base, entry),
        ImageConfig(
            entrypoint=("docker-entrypoint.sh",),
            cmd=("postgres",),
            env=env(
                PATH="/usr/lib/postgresql/15/bin:" + DEFAULT_PATH,
                LANG="C.UTF-8",
                PG_MAJOR="15",
                PGDATA="/var/lib/postgresql/data",
            ),
            ports=("5432/tcp",),
            stop_signal="SIGINT",
            volumes=("/var/lib/postgresql/data",),
        ),
        "Debian postgresql-15 with the official entrypoint contract",
    )


def redis_recipe(src: Path | None = None) -> Recipe:
    """redis:7-alpine: Debian redis-server 7 on 6379, /data, protected mode off, uid 999."""
    scripts = (src or source_dir()) / "redis"
    base = debian_layer(
        "redis",
        ["redis-server"],
        essential_hooks=[_system_user("redis", 999, "/var/lib/redis")],
        customize_hooks=[
            'mkdir -p "$1/data" && chown 999:999 "$1/data"',
            'rm -f "$1/etc/redis/redis.conf.dpkg-dist"',
        ],
    )
    entry = FilesLayer(
        "redis-entrypoint",
        (host_file("usr/local/bin/docker-entrypoint.sh", scripts / "docker-entrypoint.sh", 0o755),),
    )
    return Recipe(
        "redis",
        ("redis:7-alpine",),
        (base, entry),
        ImageConfig(
            entrypoint=("docker-entrypoint.sh",),
            cmd=("redis-server",),
            env=env(LANG="C.UTF-8"),
            workdir="/data",
            ports=("6379/tcp",),
            volumes=("/data",),
        ),
        "Debian redis-server 7 with the official entrypoint contract",
    )


def litellm_recipe(
    image: str = LITELLM_IMAGE, version: str = LITELLM_VERSION, src: Path | None = None
) -> Recipe:
    """The LiteLLM proxy: real ``litellm[proxy]`` from PyPI in a venv layer, offline (local
    cost map; models answer with ``mock_response``). Needs LITELLM_MASTER_KEY to start."""
    config = (src or source_dir()) / "litellm" / "config.yaml"
    venv = ChrootLayer(
        "litellm-venv",
        (python_layer(),),
        script=(
            "python3 -m venv /opt/litellm\n"
            f"/opt/litellm/bin/pip install -q 'litellm[proxy]=={version}'\n"
            "LITELLM_LOCAL_MODEL_COST_MAP=True "
            "/opt/litellm/bin/python -c 'import litellm.proxy.proxy_server'\n"
        ),
        capture=("opt/litellm",),
        role="venv layer",
        hint="pip install litellm[proxy], ~2 min",
    )
    conf = FilesLayer("litellm-config", (host_file("app/config.yaml", config, 0o644),))
    return Recipe(
        "litellm",
        (image,),
        (python_layer(), venv, conf),
        ImageConfig(
            entrypoint=("/opt/litellm/bin/litellm",),
            cmd=("--config", "/app/config.yaml", "--port", "4000"),
            env=env(
                PATH="/opt/litellm/bin:" + DEFAULT_PATH,
                LANG="C.UTF-8",
                PYTHONUNBUFFERED="1",
                LITELLM_LOCAL_MODEL_COST_MAP="True",
                LITELLM_TELEMETRY="False",
            ),
            workdir="/app",
            ports=("4000/tcp",),
        ),
        f"LiteLLM proxy {version} (PyPI) for offline use",
    )


def locust_recipe(image: str = LOCUST_IMAGE, version: str = LOCUST_VERSION) -> Recipe:
    """Locust worker pods for distributed load (``--codelab-load-workers``): the locustfile
    comes from the master, so the image is only Python and ``locust`` from PyPI."""
    venv = ChrootLayer(
        "locust-venv",
        (python_layer(),),
        script=(
            "python3 -m venv /opt/locust\n"
            f"/opt/locust/bin/pip install -q 'locust=={version}'\n"
            "/opt/locust/bin/locust --version\n"
        ),
        capture=("opt/locust",),
        role="venv layer",
        hint="pip install locust, ~1 min",
    )
    return Recipe(
        "locust",
        (image,),
        (python_layer(), venv),
        ImageConfig(
            entrypoint=("/opt/locust/bin/locust",),
            env=env(PATH="/opt/locust/bin:" + DEFAULT_PATH, LANG="C.UTF-8", PYTHONUNBUFFERED="1"),
            workdir="/tmp",
            user="10001",
        ),
        f"Locust {version} (PyPI) for load worker pods",
    )


def recipes(src: Path | None = None, *, litellm_image: str | None = None) -> dict[str, Recipe]:
    """The recipe table: every image the local cluster runs besides the add-ons' binaries."""
    table: dict[str, Recipe] = {
        "busybox": busybox_recipe(),
        "debian-base": debian_base_recipe(),
        "python": python_recipe(),
    }
    for service in SERVICES:
        for version in SERVICE_VERSIONS:
            table[f"{service}-{version}"] = service_recipe(service, version, src)
    table["postgres"] = postgres_recipe(src)
    table["redis"] = redis_recipe(src)
    image = litellm_image or os.environ.get("CODELAB_LITELLM_IMAGE") or LITELLM_IMAGE
    table["litellm"] = litellm_recipe(image, src=src)
    table["locust"] = locust_recipe()
    return table


#: Names build_all() builds by default (debian-base and python are only helpers).
DEFAULT_SET = (
    "busybox",
    *(f"{s}-{v}" for s in SERVICES for v in SERVICE_VERSIONS),
    "postgres",
    "redis",
    "litellm",
    "locust",
)
#: Group names accepted by build()/the CLI.
GROUPS = {
    "services": tuple(f"{s}-{v}" for s in SERVICES for v in SERVICE_VERSIONS),
    "data": ("postgres", "redis"),
    "all": DEFAULT_SET,
    **{s: tuple(f"{s}-{v}" for v in SERVICE_VERSIONS) for s in SERVICES},
}


def expand(names: Iterable[str], table: Mapping[str, Recipe]) -> list[str]:
    """Recipe names with groups expanded, in order, without duplicates."""
    out: list[str] = []
    for n in names:
        for m in GROUPS.get(n, (n,)):
            if m not in table:
                raise ImageError(
                    f"unknown image recipe {m!r}; known: {', '.join(table)}, "
                    f"groups: {', '.join(GROUPS)}"
                )
            if m not in out:
                out.append(m)
    return out


def build_recipe(
    recipe: Recipe, *, cache: Path | None = None, force: bool = False, log: Log | None = None
) -> Path:
    """Build one recipe (e.g. from :func:`static`) and return its docker-archive path."""
    return Builder(cache, log or _stderr, force).build(recipe)


def build(
    name: str, *, cache: Path | None = None, force: bool = False, log: Log | None = None
) -> Path:
    """Build the named recipe (see :func:`recipes`) and return its docker-archive path."""
    table = recipes()
    names = expand([name], table)
    if len(names) != 1:
        raise ImageError(f"{name!r} is a group of {len(names)} images: use build_all([...])")
    return build_recipe(table[names[0]], cache=cache, force=force, log=log)


def build_all(
    names: Iterable[str] | None = None,
    *,
    cache: Path | None = None,
    force: bool = False,
    log: Log | None = None,
    litellm_image: str | None = None,
) -> dict[str, Path]:
    """Build recipes (default :data:`DEFAULT_SET`; groups allowed) sharing cached layers;
    returns recipe name -> archive path."""
    table = recipes(litellm_image=litellm_image)
    builder = Builder(cache, log or _stderr, force)
    return {n: builder.build(table[n]) for n in expand(names or DEFAULT_SET, table)}


def archive_tags(archive: Path) -> list[str]:
    """The RepoTags of a docker-archive, normalized as containerd names them."""
    with tarfile.open(archive, "r:") as tar:
        member = tar.extractfile("manifest.json")
        if member is None:
            raise ImageError(f"not a docker-archive (no manifest.json): {archive}")
        manifest = json.load(member)
    return [normalize_ref(t) for m in manifest for t in m.get("RepoTags") or []]


def load_image(
    archive: Path,
    *,
    containerd_address: str,
    namespace: str = "k8s.io",
    name: str | None = None,
    ctr: str = "ctr",
    snapshotter: str | None = None,
    timeout: float = 900,
) -> list[str]:
    """Import a docker-archive into containerd (``ctr images import``), like ``kind load``.

    ``name`` adds one more reference to the imported image. Returns the image names now
    in containerd. Errors carry the failed command and its output.
    """
    archive = Path(archive)
    if not archive.is_file():
        raise ImageError(f"image archive not found: {archive}")
    tags = archive_tags(archive)
    base = [ctr, "--address", containerd_address, "--namespace", namespace]
    cmd = [*base, "images", "import"]
    if snapshotter:
        cmd.append(f"--snapshotter={snapshotter}")
    _run([*cmd, str(archive)], timeout=timeout)
    if name:
        if not tags:
            raise ImageError(f"cannot retag: {archive} has no RepoTags")
        full = normalize_ref(name)
        if full not in tags:
            _run([*base, "images", "tag", "--force", tags[0], full], timeout=120)
            tags.append(full)
    return tags


# --------------------------------------------------------------------------- CLI


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m pytest_codelab.engine.images build|list|load``."""
    parser = argparse.ArgumentParser(
        prog="python -m pytest_codelab.engine.images",
        description="Build CodeLab images as docker-archives.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build recipes (default: all) into the cache")
    b.add_argument("names", nargs="*", help=f"recipes or groups ({', '.join(GROUPS)})")
    b.add_argument("--force", action="store_true", help="rebuild even if cached")
    b.add_argument("--litellm-image", help=f"name of the LiteLLM image ({LITELLM_IMAGE})")
    sub.add_parser("list", help="list recipes, tags and cached archives")
    ld = sub.add_parser("load", help="import archives into containerd")
    ld.add_argument("archives", nargs="+", type=Path)
    ld.add_argument("--address", required=True, help="containerd socket")
    ld.add_argument("--namespace", default="k8s.io")
    ld.add_argument("--ctr", default="ctr")
    ld.add_argument("--name", help="extra reference for the (single) image")
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            paths = build_all(
                args.names or None, force=args.force, litellm_image=args.litellm_image
            )
            for n, p in paths.items():
                print(f"{n}\t{p}")
        elif args.command == "list":
            root = images_dir() / "archives"
            for n, r in recipes().items():
                p = root / f"{n}.tar"
                where = str(p) if p.is_file() else "(not built)"
                print(f"{n:22} {' '.join(r.tags):48} {where}")
        else:
            for a in args.archives:
                names = load_image(
                    a,
                    containerd_address=args.address,
                    namespace=args.namespace,
                    name=args.name,
                    ctr=args.ctr,
                )
                print(f"{a}: {' '.join(names)}")
    except ImageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        if exc.detail:
            print(exc.detail, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
