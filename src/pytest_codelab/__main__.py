"""``codelab-gate``: run the bundled conformance suites with pytest.

An installed wheel carries the suites (``pytest_codelab/_bundled/suites``), so the gate runs
without a checkout: ``codelab-gate --codelab-cluster=existing --codelab-context staging``.
Every argument is passed to pytest unchanged.

The gate is run to judge a deployment, so it needs a cluster (``--codelab-cluster`` from the
flag, env or ini) or an explicit ``--codelab-offline``; otherwise it stops with one line
instead of running the suites with every cluster test skipped, which could be read as a
gate that was passed. Plain ``pytest`` keeps skipping cluster tests (the verdict then says
incomplete). Listing the tests (``--collect-only``) and pytest's help need neither.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import pytest

from pytest_codelab.options import BY_NAME, CLUSTER_CHOICES
from pytest_codelab.settings import resolve

NEEDS_CLUSTER = (
    f"codelab-gate needs a cluster: pass {BY_NAME['cluster'].flag}="
    f"{'|'.join(CLUSTER_CHOICES)} (or {BY_NAME['cluster'].env}), or {BY_NAME['offline'].flag} "
    "to run only the checks that need none"
)
#: pytest options that only show something: they run no test, so they need no cluster.
_SHOW_ONLY = ("help", "collectonly", "showfixtures", "show_fixtures_per_test", "markers")


class NeedsCluster:
    """Stops a ``codelab-gate`` run that has neither a cluster nor --codelab-offline."""

    @pytest.hookimpl(tryfirst=True)  # before the report folder is touched
    def pytest_configure(self, config: pytest.Config) -> None:
        if any(getattr(config.option, name, False) for name in _SHOW_ONLY):
            return
        settings = resolve(config)  # the one resolver: flag > env > ini > default
        if settings.cluster is None and not settings.offline:
            raise pytest.UsageError(NEEDS_CLUSTER)


def main(argv: Sequence[str] | None = None) -> int:
    """Run pytest on the bundled suites folder with ``argv``; return pytest's exit code."""
    from pytest_codelab.resources import bundled_path

    args = list(sys.argv[1:] if argv is None else argv)
    try:
        suites = bundled_path("suites")
    except FileNotFoundError as exc:
        print(f"codelab-gate: {exc}", file=sys.stderr)
        return int(pytest.ExitCode.USAGE_ERROR)
    return int(pytest.main([str(suites), *args], plugins=[NeedsCluster()]))


if __name__ == "__main__":
    sys.exit(main())
