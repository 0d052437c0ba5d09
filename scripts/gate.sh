#!/usr/bin/env bash
# Run the conformance gate on the embedded local cluster.
# Usage: scripts/gate.sh [pytest args]   (e.g. -n 2, -k ingress, --codelab-keep-namespace)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh
ensure_venv
log "building the local cluster (codelab-cluster build --with velero; cached after the first run)"
"$VENV/bin/codelab-cluster" build --with velero
log "pytest --codelab-cluster=local --codelab-local-velero suites $*"
exec "$VENV/bin/python" -m pytest --codelab-cluster=local --codelab-local-velero suites "$@"
