"""``codelab-gate``: run the bundled conformance suites with pytest.

An installed wheel carries the suites (``pytest_codelab/_bundled/suites``), so the gate runs
without a checkout: ``codelab-gate --codelab-cluster=existing --codelab-context staging``.
Every argument is passed to pytest unchanged.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import pytest


def main(argv: Sequence[str] | None = None) -> int:
    """Run pytest on the bundled suites folder with ``argv``; return pytest's exit code."""
    from pytest_codelab.resources import bundled_path

    args = list(sys.argv[1:] if argv is None else argv)
    try:
        suites = bundled_path("suites")
    except FileNotFoundError as exc:
        print(f"codelab-gate: {exc}", file=sys.stderr)
        return int(pytest.ExitCode.USAGE_ERROR)
    return int(pytest.main([str(suites), *args]))


if __name__ == "__main__":
    sys.exit(main())
