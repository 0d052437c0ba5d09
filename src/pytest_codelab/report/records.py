"""What suites add to the gate report: a load run's record, and the test properties that carry
requirements, markers and load records from any xdist worker to the controller.

``write_load_record`` writes one load run (Locust's statistics and the HPA timeline) as JSON;
``attach_load_record`` names it in the test's ``user_properties``, which travel with the test's
reports to the controller, where the collector reads them."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

LOAD_PROPERTY = "codelab_load"
REQUIREMENT_PROPERTY = "codelab_requirement"
MARKERS_PROPERTY = "codelab_markers"
#: Folder of load-run outputs under the report dir, one subfolder per namespace.
LOAD_DIR = "load"
#: Markers worth showing next to a test.
SHOWN_MARKERS = ("e2e", "disruptive", "slow", "offline")
#: Why the gate deselected an item (set before it calls ``pytest_deselected``), so the report
#: can say why the promises the item checks were not checked.
DESELECT_REASON = pytest.StashKey[str]()


def write_load_record(
    path: Path,
    *,
    title: str,
    load: Any = None,
    timeline: Any = None,
    t0: float | None = None,
    notes: Sequence[str] = (),
) -> Path:
    """Write one load run (a ``LoadResult`` and/or ``TimelineData``) as JSON for the report.

    Rewriting the same path later (e.g. after scale-down was sampled too) updates the record.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "title": title,
        "t0": t0,
        "load": load.to_dict() if load is not None else None,
        "timeline": timeline.to_dict() if timeline is not None else None,
        "notes": list(notes),
    }
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, default=str), encoding="utf-8")
    tmp.replace(path)
    return path


def attach_load_record(node: pytest.Item, path: Path) -> None:
    """Name a load record in the test's report (``user_properties`` travel to the controller)."""
    entry = (LOAD_PROPERTY, str(Path(path).resolve()))
    if entry not in node.user_properties:
        node.user_properties.append(entry)


def requirement_texts(item: pytest.Item) -> list[str]:
    """The texts of the item's ``requirement`` markers, each once."""
    texts = [str(m.args[0]) for m in item.iter_markers("requirement") if m.args]
    return list(dict.fromkeys(texts))


def annotate_item(item: pytest.Item) -> None:
    """Copy the item's requirement texts and shown markers into ``user_properties`` (also
    written by pytest's JUnit XML as ``<property>``)."""
    for text in requirement_texts(item):
        entry = (REQUIREMENT_PROPERTY, text)
        if entry not in item.user_properties:
            item.user_properties.append(entry)
    shown = [m for m in SHOWN_MARKERS if item.get_closest_marker(m) is not None]
    if shown and not any(k == MARKERS_PROPERTY for k, _ in item.user_properties):
        item.user_properties.append((MARKERS_PROPERTY, ",".join(shown)))


def load_folder(report_dir: Path, namespace: str) -> Path:
    """Where the load runs of ``namespace`` write their files and records (a new run clears
    the folders of gate-made namespaces: report.cleanup)."""
    return Path(report_dir) / LOAD_DIR / re.sub(r"[^A-Za-z0-9_.-]+", "_", namespace).strip("_")[:80]
