"""The report's inline SVG charts."""

from __future__ import annotations

import re

from pytest_codelab.report import svg


def test_chart_axes_cover_the_data_and_gaps_split_lines() -> None:
    assert svg.nice_ticks(0, 1037)[-1] >= 1037
    assert svg.nice_ticks(0, 6.3)[-1] >= 6.3
    series = svg.Series("s", [(0, 1.0), (1, None), (2, 3.0), (3, 4.0)], "#000")
    chart = svg.svg_chart([series], marks=[svg.Mark(1.5, "event", "scale", 7)])
    path = re.search(r'<path d="([^"]+)"', chart)
    assert path and path.group(1).count("M") == 2
    assert ">7</text>" in chart and "clip-path=" in chart
    assert "http://www.w3.org/2000/svg" in chart  # the namespace only, not a fetched resource
