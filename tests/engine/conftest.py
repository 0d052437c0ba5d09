"""The engine's tests run without the gate: ``python -m pytest -p no:codelab tests/engine``.

So nothing here imports ``pytest_codelab`` outside the engine; the one marker these tests
use, registered by the gate's plugin when it is loaded, is registered here too.
"""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: takes more than a few seconds")
