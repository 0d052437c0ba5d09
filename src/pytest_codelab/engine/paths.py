"""Where the engine keeps what it builds (cache) and what a running cluster owns (state).

Built things never live in the repository: binaries, sources of wrapper modules, images
and the containerd content store go to the cache; a running cluster's files go to the
state folder, which ``down`` removes whole.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """Root of everything built: ``$CODELAB_CACHE`` or ``~/.cache/pytest-codelab``."""
    env = os.environ.get("CODELAB_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "pytest-codelab"


def bin_dir() -> Path:
    """Built binaries of the engine."""
    return cache_dir() / "bin"


def state_dir() -> Path:
    """Runtime state of the one local cluster (removed by ``down``)."""
    env = os.environ.get("CODELAB_STATE")
    return Path(env) if env else Path("/var/lib/pytest-codelab")
