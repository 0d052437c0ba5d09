"""The archive format: deterministic layer tars, normalized root filesystems, image refs."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import Any

import pytest

from pytest_codelab.engine.images import archive
from pytest_codelab.engine.images.archive import directory, file, symlink


def test_layer_tar_is_deterministic_regardless_of_entry_order(tmp_path: Path) -> None:
    entries = [
        file("b/x.txt", "x"),
        file("a/y.txt", "y", 0o755),
        symlink("c", "a/y.txt"),
        directory("d", 0o700, 5, 5),
    ]
    one, two = io.BytesIO(), io.BytesIO()
    archive.write_tar(entries, one)
    archive.write_tar(list(reversed(entries)), two)
    assert one.getvalue() == two.getvalue()
    with tarfile.open(fileobj=io.BytesIO(one.getvalue())) as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names == sorted(names)
    assert {m.mtime for m in members} == {archive.EPOCH}
    assert all(m.uname == "" and m.gname == "" for m in members)
    assert next(m for m in members if m.name == "a").isdir()  # implied parent
    assert next(m for m in members if m.name == "d").uid == 5


def test_normalize_tar_sorts_clamps_and_fixes_hardlink_order(tmp_path: Path) -> None:
    src = tmp_path / "in.tar"
    with tarfile.open(src, "w", format=tarfile.GNU_FORMAT) as tar:

        def add(name: str, data: bytes | None = None, **kw: Any) -> None:
            info = tarfile.TarInfo(name)
            info.mtime, info.uname, info.uid = 4102444800, "someone", 7  # year 2100
            for k, v in kw.items():
                setattr(info, k, v)
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)

        add("./", type=tarfile.DIRTYPE)
        add("./usr/", type=tarfile.DIRTYPE)
        add("./usr/zz", b"payload")
        add("./usr/aa", type=tarfile.LNKTYPE, linkname="./usr/zz")  # sorts before its target
        add("./dev/", type=tarfile.DIRTYPE)
        add("./dev/null", type=tarfile.CHRTYPE, devmajor=1, devminor=3)
    dst = tmp_path / "out.tar"
    archive.normalize_tar(src, dst)
    with tarfile.open(dst) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert list(members) == sorted(members) == ["dev", "usr", "usr/aa", "usr/zz"]
        assert members["usr/aa"].isreg() and members["usr/zz"].islnk()
        assert members["usr/zz"].linkname == "usr/aa"
        assert tar.extractfile("usr/aa").read() == b"payload"  # type: ignore[union-attr]
        assert all(m.mtime == archive.EPOCH and m.uname == "" for m in members.values())
        assert members["usr/aa"].uid == 7
    out = tmp_path / "x"
    with tarfile.open(dst) as tar:
        tar.extractall(out, filter="fully_trusted")
    assert (out / "usr" / "zz").read_bytes() == b"payload"


@pytest.mark.parametrize(
    ("ref", "full", "short"),
    [
        ("busybox", "docker.io/library/busybox:latest", "busybox:latest"),
        ("busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"),
        (
            "codelab/python-base:bookworm",
            "docker.io/codelab/python-base:bookworm",
            "codelab/python-base:bookworm",
        ),
        (
            "ghcr.io/codelab/gateway:1.0.0",
            "ghcr.io/codelab/gateway:1.0.0",
            "ghcr.io/codelab/gateway:1.0.0",
        ),
        ("localhost:5000/x", "localhost:5000/x:latest", "localhost:5000/x:latest"),
    ],
)
def test_normalize_ref(ref: str, full: str, short: str) -> None:
    assert archive.normalize_ref(ref) == full
    assert archive.normalize_ref(ref, short=True) == short
