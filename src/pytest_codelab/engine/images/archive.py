"""The archive format: deterministic tar entries and the docker-archive an image ships as.

An image is ordered tar layers plus a config. Layers are written so that the same inputs
give the same bytes (sorted paths, fixed mtimes, no owner names), which is what lets the
builder cache them by a hash of their inputs; a docker-archive (the ``docker save``
format) bundles the layers with the config and a manifest, for ``ctr images import``.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import os
import stat
import tarfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from pytest_codelab.engine.images.commands import ImageError

#: mtime of generated entries, upper bound of mtimes in normalized tars, image "created".
EPOCH = 1735689600  # 2025-01-01T00:00:00Z
CREATED = "2025-01-01T00:00:00Z"


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


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def canonical(obj: object) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def file_sha256(path: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


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
        content = file_sha256(Path(self.source))[0] if self.source else sha256(self.data)
        return sha256(
            canonical([self.path, self.kind, self.mode, content, self.target, self.uid, self.gid])
        )


def clean_path(path: str) -> str:
    path = path.lstrip("/")
    while path.startswith("./"):
        path = path[2:]
    path = path.rstrip("/")
    return "" if path == "." else path


def file(path: str, data: str | bytes, mode: int = 0o644, uid: int = 0, gid: int = 0) -> Entry:
    """A regular file with the given content."""
    raw = data.encode() if isinstance(data, str) else data
    return Entry(clean_path(path), "file", mode, raw, uid=uid, gid=gid)


def host_file(
    path: str, source: Path | str, mode: int | None = None, uid: int = 0, gid: int = 0
) -> Entry:
    """A regular file copied from the host (read when the layer is hashed and written)."""
    src = Path(source)
    if not src.is_file():
        raise ImageError(f"file for image not found: {src}")
    m = mode if mode is not None else (0o755 if os.access(src, os.X_OK) else 0o644)
    return Entry(clean_path(path), "file", m, source=str(src), uid=uid, gid=gid)


def directory(path: str, mode: int = 0o755, uid: int = 0, gid: int = 0) -> Entry:
    """A directory."""
    return Entry(clean_path(path), "dir", mode, uid=uid, gid=gid)


def symlink(path: str, target: str) -> Entry:
    """A symbolic link."""
    return Entry(clean_path(path), "symlink", 0o777, target=target)


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
        target = f"{clean_path(dest)}/{rel.as_posix()}"
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
        p = clean_path(e.path)
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
        everything = {clean_path(m.name): m for m in tin.getmembers()}
        members = {n: m for n, m in everything.items() if n and keep(n)}
        sharing: dict[str, list[str]] = {}  # data member -> kept names that share its data
        for name, m in members.items():
            if m.islnk():
                sharing.setdefault(clean_path(m.linkname), []).append(name)
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
        base = root / clean_path(top)
        if not base.exists() and not base.is_symlink():
            raise ImageError(f"path to capture not found after the build step: /{clean_path(top)}")
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


@dataclass(frozen=True)
class LayerResult:
    """A built layer in the cache: its tar, digest (= diff_id, uncompressed) and size."""

    path: Path
    digest: str
    size: int


def image_config(
    config: Mapping[str, object], layer_names: Sequence[str], results: Sequence[LayerResult]
) -> bytes:
    """The image config JSON (canonical bytes, so its digest is stable): the runtime
    ``config`` object, the layers' diff ids and one history entry per named layer."""
    return canonical(
        {
            "architecture": "amd64",
            "os": "linux",
            "created": CREATED,
            "config": dict(config),
            "rootfs": {"type": "layers", "diff_ids": [r.digest for r in results]},
            "history": [
                {"created": CREATED, "created_by": f"pytest-codelab images: {name}"}
                for name in layer_names
            ],
        }
    )


def write_archive(
    out: Path,
    tags: Sequence[str],
    config: Mapping[str, object],
    layer_names: Sequence[str],
    results: Sequence[LayerResult],
) -> str:
    """Write a docker-archive: manifest.json, config and layers under blobs/sha256/<hex>.

    Returns the config digest (the image id). The archive is deterministic for the same
    layers and config.
    """
    config_bytes = image_config(config, layer_names, results)
    config_hex = sha256(config_bytes)
    layer_paths = [f"blobs/sha256/{r.digest.split(':', 1)[1]}" for r in results]
    manifest = [
        {
            "Config": f"blobs/sha256/{config_hex}",
            "RepoTags": list(tags),
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
        add(tar, f"blobs/sha256/{config_hex}", len(config_bytes), io.BytesIO(config_bytes))
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
        for t in tags:
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


def archive_tags(archive: Path) -> list[str]:
    """The RepoTags of a docker-archive, normalized as containerd names them."""
    with tarfile.open(archive, "r:") as tar:
        member = tar.extractfile("manifest.json")
        if member is None:
            raise ImageError(f"not a docker-archive (no manifest.json): {archive}")
        manifest = json.load(member)
    return [normalize_ref(t) for m in manifest for t in m.get("RepoTags") or []]
