#!/usr/bin/env bash
# Run the plugin's own tests and the suites (cluster suites skip without a cluster).
# Usage: scripts/test.sh [pytest args]   (default: tests suites)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh
ensure_venv
if [ $# -eq 0 ]; then
    set -- tests suites
fi
log "pytest -p pytester $*"
exec "$VENV/bin/python" -m pytest -p pytester "$@"
