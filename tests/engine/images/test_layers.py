"""Layer types: Debian sources for mmdebstrap read from this machine's apt configuration."""

from __future__ import annotations

from pathlib import Path

from pytest_codelab.engine.images import layers


def test_apt_mirrors_reads_deb822_and_one_line_sources(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\n"
        "Components: main\n\nTypes: deb\nURIs: http://mirror.example/debian-security\n"
        "Suites: bookworm-security\nComponents: main\n"
    )
    (tmp_path / "sources.list.d" / "other.list").write_text(
        "deb [arch=amd64] https://packages.example/apt stable main\n"
    )
    (tmp_path / "sources.list.d" / "off.list.disabled").write_text(
        "deb http://off.example/debian bookworm main\n"
    )
    assert layers.apt_mirrors("bookworm", tmp_path) == [
        "deb http://mirror.example/debian bookworm main",
        "deb http://mirror.example/debian bookworm-updates main",
        "deb http://mirror.example/debian-security bookworm-security main",
    ]
    assert layers.apt_mirrors("bookworm", tmp_path / "none") == list(layers.DEFAULT_MIRRORS)
