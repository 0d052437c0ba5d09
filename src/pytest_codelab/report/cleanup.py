"""The report folder describes one run: what an earlier run wrote beside its report goes."""

from __future__ import annotations

import shutil
from pathlib import Path

from pytest_codelab.k8s.diagnostics import DIAGNOSTICS_HEADER, DIAGNOSTICS_INDEX
from pytest_codelab.k8s.namespaces import NAME_PATTERN
from pytest_codelab.report.records import LOAD_DIR


def clear_previous_outputs(report_dir: Path) -> list[Path]:
    """Remove what an earlier run wrote beside its report: failure diagnostics and the load
    folders of gate-made namespaces, so that the folder describes this run only.

    Only folders recognisably the gate's are touched; anything else a person put there stays.
    """
    removed: list[Path] = []
    if not report_dir.is_dir():
        return removed
    for child in sorted(report_dir.iterdir()):
        index = child / DIAGNOSTICS_INDEX
        if child.is_dir() and index.is_file():
            with index.open(encoding="utf-8", errors="replace") as fh:
                if fh.readline().startswith(DIAGNOSTICS_HEADER):
                    removed.append(child)
    load_dir = report_dir / LOAD_DIR
    if load_dir.is_dir():
        removed += [
            child
            for child in sorted(load_dir.iterdir())
            if child.is_dir() and NAME_PATTERN.fullmatch(child.name)
        ]
    for path in removed:
        shutil.rmtree(path, ignore_errors=True)
    return removed
