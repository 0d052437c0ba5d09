"""Figures of the local engine: build, up-to-Ready, down, idle memory. Prints, asserts nothing.

Run as root with the engine built: ``python benchmarks/cluster.py --runs 3``. Targets on the
2-core machine (issue 3): up <= 10 s and down <= 5 s warm, idle memory <= 1 GiB, cold
build <= 45 min. The cold build is not re-run here (it would wipe the cache); its figure
comes from ``--cold-build-seconds`` as measured on a fresh cache, or is reported as not
measured.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from pytest_codelab.engine import build, processes
from pytest_codelab.engine.down import down
from pytest_codelab.engine.images.recipes import build_engine_images
from pytest_codelab.engine.layout import Layout
from pytest_codelab.engine.up import up


def rss_kib(pids: list[int]) -> int:
    """Resident memory of the given processes, in KiB (VmRSS)."""
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except FileNotFoundError:
            continue
    return total


def timed(fn: object) -> float:
    started = time.monotonic()
    fn()  # type: ignore[operator]
    return time.monotonic() - started


def summary(name: str, values: list[float], unit: str = "s") -> str:
    """One line: median, min, max over the runs."""
    if not values:
        return f"{name:<28} not measured"
    med = statistics.median(values)
    return (
        f"{name:<28} median {med:8.2f}{unit}  min {min(values):8.2f}{unit}  "
        f"max {max(values):8.2f}{unit}  (n={len(values)})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3, help="up/down cycles to measure")
    parser.add_argument(
        "--settle", type=float, default=20.0, help="seconds after up before reading idle memory"
    )
    parser.add_argument(
        "--cold-build-seconds",
        type=float,
        default=None,
        help="a cold build time measured separately on a fresh cache",
    )
    args = parser.parse_args()
    layout = Layout.default()
    warm_builds = [timed(lambda: (build.build(), build_engine_images())) for _ in range(2)]
    ups, downs, mem = [], [], []
    for _ in range(args.runs):
        ups.append(timed(lambda: up(layout)))
        deadline = time.monotonic() + args.settle
        while time.monotonic() < deadline:  # idle: let start-up work finish, then sample
            time.sleep(1)
        pids = processes.engine_pids(layout) + sorted(processes.pod_pids())
        mem.append(rss_kib(pids) / 1024)
        downs.append(timed(lambda: down(layout)))
    print("local engine figures (this machine: 2 cores)")
    print(summary("cold build", [args.cold_build_seconds] if args.cold_build_seconds else []))
    print(summary("warm build", warm_builds))
    print(summary("up to Ready (with add-ons)", ups))
    print(summary("down", downs))
    print(summary("idle RSS, all components", mem, " MiB"))


if __name__ == "__main__":
    main()
