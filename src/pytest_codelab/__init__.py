"""pytest-codelab: a pytest plugin and conformance suite that gates CodeLab on Kubernetes.

The plugin (entry point ``codelab``) adds the ``--codelab-*`` options, the cluster
fixtures and failure diagnostics; see docs/architecture.md for the module layout.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("pytest-codelab")
except PackageNotFoundError:  # running from a checkout without installing
    __version__ = "0.0.0"

__all__ = ["__version__"]
