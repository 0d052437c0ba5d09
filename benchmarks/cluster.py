"""Figures of the local engine: build, up-to-Ready, down, idle memory. Prints, asserts nothing.

Run as root with the engine built and no cluster running: ``python benchmarks/cluster.py
--runs 3`` (up/down cycles for each worker count of ``--workers``, default 1 and 3). Targets
on the 2-core machine: up to Ready <= 10 s with 1 worker and <= 20 s with 3 (issue 13),
down <= 5 s, idle memory <= 1.5 GiB with 3 workers, cold build <= 45 min. The cold build is
not re-run here (it would wipe the cache); its figure comes from ``--cold-build-seconds`` as
measured on a fresh cache, or is reported as not measured.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from pytest_codelab.engine import build, processes
from pytest_codelab.engine.down import down
from pytest_codelab.engine.images.recipes import build_engine_images
from pytest_codelab.engine.layout import Layout
from pytest_codelab.engine.up import up


def rss_kib(pids: list[int], key: str = "VmRSS:", source: str = "status") -> int:
    """Memory of the given processes, in KiB: resident (VmRSS, each process counts every
    page it maps) or, with ``key="Pss:", source="smaps_rollup"``, proportional (a page
    shared by N processes counts 1/N: four kubelets share one binary's text)."""
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/{source}").read_text().splitlines():
                if line.startswith(key):
                    total += int(line.split()[1])
        except (FileNotFoundError, ProcessLookupError):
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


def idle_mib(layout: Layout, settle: float) -> tuple[float, float]:
    """Memory of every engine process and pod process after ``settle`` seconds of idling
    (start-up work done), in MiB: (resident, proportional)."""
    deadline = time.monotonic() + settle
    while time.monotonic() < deadline:
        time.sleep(1)
    pids = processes.engine_pids(layout) + sorted(processes.pod_pids())
    return rss_kib(pids) / 1024, rss_kib(pids, "Pss:", "smaps_rollup") / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3, help="up/down cycles per worker count")
    parser.add_argument(
        "--workers", default="1,3", help="worker counts to measure, comma-separated"
    )
    parser.add_argument(
        "--settle", type=float, default=20.0, help="seconds after up before reading idle memory"
    )
    parser.add_argument("--no-build", action="store_true", help="skip the warm build figure")
    parser.add_argument(
        "--cold-build-seconds",
        type=float,
        default=None,
        help="a cold build time measured separately on a fresh cache",
    )
    args = parser.parse_args()
    layout = Layout.default()
    warm_builds = []
    if not args.no_build:
        warm_builds = [timed(lambda: (build.build(), build_engine_images())) for _ in range(2)]
    figures: dict[int, tuple[list[float], list[float], list[float], list[float]]] = {}
    for workers in (int(w) for w in args.workers.split(",")):
        ups, downs, rss, pss = figures.setdefault(workers, ([], [], [], []))
        for _ in range(args.runs):
            ups.append(timed(lambda workers=workers: up(layout, workers=workers)))
            resident, proportional = idle_mib(layout, args.settle)
            rss.append(resident)
            pss.append(proportional)
            downs.append(timed(lambda: down(layout)))
    print("local engine figures (this machine: 2 cores)")
    print(summary("cold build", [args.cold_build_seconds] if args.cold_build_seconds else []))
    print(summary("warm build", warm_builds))
    for workers, (ups, downs, rss, pss) in figures.items():
        print(summary(f"{workers} worker(s): up to Ready", ups))
        print(summary(f"{workers} worker(s): down", downs))
        print(summary(f"{workers} worker(s): idle RSS", rss, " MiB"))
        print(summary(f"{workers} worker(s): idle PSS", pss, " MiB"))


# ----------------------------------------------------------------- optional add-ons (issue 14)

#: Add-on -> (namespace, pod label selector) of its pods, for their memory.
ADDON_PODS = {
    "cert-manager": ("cert-manager", "component=cert-manager"),
    "vpa": ("kube-system", "app in (vpa-recommender,vpa-updater,vpa-admission-controller)"),
}


def addon_memory_mib(layout: Layout, namespace: str, selector: str) -> float:
    """Working-set memory of an add-on's pods as the metrics API reports it (MiB)."""
    from pytest_codelab.engine import addons

    out = addons.kubectl(
        layout, "top", "pods", "-n", namespace, "-l", selector, "--no-headers", timeout=60
    )
    return sum(float(line.split()[2].removesuffix("Mi")) for line in out.splitlines() if line)


def addons_main() -> None:
    """``python benchmarks/cluster.py addons [--with NAME]...``: per optional add-on, the
    (warm) build of its components, its install on the running cluster, its pods' memory.
    Cold build minutes come from a fresh cache and are passed as ``--cold NAME=SECONDS``."""
    from pytest_codelab.engine import versions
    from pytest_codelab.engine.up import install_extras

    parser = argparse.ArgumentParser(description=addons_main.__doc__)
    parser.add_argument("--with", dest="names", action="append", default=[])
    parser.add_argument("--cold", action="append", default=[], metavar="NAME=SECONDS")
    args = parser.parse_args(sys.argv[2:])
    names = args.names or [n for n in ADDON_PODS]
    cold = dict(item.split("=", 1) for item in args.cold)
    layout = Layout.default()
    print("optional add-ons (this machine: 2 cores)")
    for name in names:
        parts = [c.name for c in versions.COMPONENTS if c.addon == name]
        built = timed(lambda parts=parts: build.build(parts))  # type: ignore[misc]
        installed = timed(lambda name=name: install_extras(layout, [name]))  # type: ignore[misc]
        time.sleep(20)  # let the metrics API scrape the new pods
        memory = addon_memory_mib(layout, *ADDON_PODS[name])
        print(summary(f"{name} cold build", [float(cold[name])] if name in cold else []))
        print(summary(f"{name} warm build", [built]))
        print(summary(f"{name} install", [installed]))
        print(summary(f"{name} pods' memory", [memory], " MiB"))


if __name__ == "__main__":
    if sys.argv[1:2] == ["addons"]:
        addons_main()
    else:
        main()
