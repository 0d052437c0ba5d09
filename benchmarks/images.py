"""Cold and warm build times of the local images (pytest_codelab.engine.images).

cold:        a fresh cache; recipes built in order, so a recipe's time includes the base
             layers it is the first to need (shown in the "new layers" column).
reassemble:  layers cached, archive removed: the cost of a tag/config change.
warm:        everything cached (repeated; min and median): the cost of `engine up` again.

Usage: python benchmarks/images.py [NAMES...] [--repeat N] [--no-cold] [--keep]
Needs root, mmdebstrap and Debian's mirror for the cold part (several minutes: LiteLLM's
venv alone is about 2 min).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from pytest_codelab.engine.images import recipes
from pytest_codelab.engine.images.builder import Builder, build_recipe, images_dir
from pytest_codelab.engine.paths import cache_dir


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="recipes or groups (default: all)")
    parser.add_argument("--repeat", type=int, default=5, help="warm runs per recipe")
    parser.add_argument(
        "--no-cold", action="store_true", help="skip the cold part; warm runs use the normal cache"
    )
    parser.add_argument("--keep", action="store_true", help="keep the cold cache folder")
    args = parser.parse_args()
    table = recipes.recipe_table()
    names = recipes.expand(args.names or recipes.DEFAULT_SET, table)

    base = cache_dir()
    base.mkdir(parents=True, exist_ok=True)
    cache = Path(tempfile.mkdtemp(prefix="bench-images-", dir=base)) if not args.no_cold else base
    rows: list[tuple[str, float | None, str, float, float, float, int]] = []
    try:
        cold: dict[str, tuple[float, str]] = {}
        if not args.no_cold:
            print(f"cold builds into {cache} ...", file=sys.stderr, flush=True)
            builder = Builder(cache)
            for n in names:
                before = set((images_dir(cache) / "layers").glob("*.tar"))
                t = time.monotonic()
                builder.build(table[n])
                after = set((images_dir(cache) / "layers").glob("*.tar"))
                new = sorted(
                    json.loads(p.with_suffix(".json").read_text())["name"] for p in after - before
                )
                cold[n] = (time.monotonic() - t, ",".join(new) or "-")
        for n in names:
            archive = build_recipe(table[n], cache=cache, log=lambda _: None)
            archive.unlink()
            t = time.monotonic()
            build_recipe(table[n], cache=cache, log=lambda _: None)
            reassemble = time.monotonic() - t
            warm: list[float] = []
            for _ in range(args.repeat):
                t = time.monotonic()
                build_recipe(table[n], cache=cache, log=lambda _: None)
                warm.append(time.monotonic() - t)
            c = cold.get(n)
            rows.append(
                (
                    n,
                    c[0] if c else None,
                    c[1] if c else "",
                    reassemble,
                    min(warm),
                    statistics.median(warm),
                    archive.stat().st_size,
                )
            )
    finally:
        if not args.no_cold and not args.keep:
            shutil.rmtree(cache, ignore_errors=True)

    print(
        f"\n{'recipe':22} {'cold s':>8} {'reassemble s':>13} {'warm min ms':>12} "
        f"{'warm med ms':>12} {'archive MB':>11}  new layers (cold)"
    )
    for n, c, new, re_, wmin, wmed, size in rows:
        cold_s = f"{c:8.1f}" if c is not None else f"{'-':>8}"
        print(
            f"{n:22} {cold_s} {re_:13.2f} {wmin * 1000:12.1f} {wmed * 1000:12.1f} "
            f"{size / 1e6:11.1f}  {new}"
        )
    total = sum(r[1] or 0 for r in rows)
    if total:
        print(f"{'total cold':22} {total:8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
