#!/usr/bin/env bash
# The README's test command (CI runs it through .ci/run):
#   1. the plugin's own tests and the offline suites,
#   2. the e2e tests and the cluster suites on the embedded local cluster, which is built
#      (cached after the first time), started for the run and taken down at its end; every
#      promise of the deployment guide the local cluster can check must be checked,
#   3. the engine's own tests without the gate's plugin, and its life cycle: up, a refused
#      second up, down leaving nothing behind.
# Usage: scripts/test.sh [pytest args]   everything (needs root for the local cluster)
#        scripts/test.sh --fast [args]   step 1 only: no cluster, for the inner loop
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh
ensure_venv
PYTEST=("$VENV/bin/python" -m pytest -p pytester)
if [ "${1:-}" = "--fast" ]; then
    shift
    log "fast subset: pytest tests suites -m 'not e2e' $*"
    exec "${PYTEST[@]}" tests suites -m "not e2e" "$@"
fi
if [ "$(id -u)" -ne 0 ]; then
    log "error: the local cluster needs root; run as root, or use scripts/test.sh --fast"
    exit 2
fi
log "building the local cluster (codelab-cluster build --with velero; cached after the first run)"
"$VENV/bin/codelab-cluster" build --with velero
# Two Locust worker pods: the distributed-load test runs on the local cluster too; Velero
# and MinIO: the backup and restore suite too.
GATE=(--codelab-cluster=local --codelab-load-workers=2 --codelab-local-velero)
# Every promise of the deployment guide the local cluster can check must be checked: one
# that is not (its tests skipped, deselected or missing) fails the run. Waived, exactly the
# promises the local cluster cannot check today:
#   vpa                the engine installs no VerticalPodAutoscaler CRD or recommender, so
#                      test_vpa_recommends_resources skips (skip_if_missing_kind).
# network-isolation is checked: the local cluster enforces NetworkPolicies (kube-network-
# policies on every node), so test_forbidden_paths_are_refused runs for real.
#   tls-issuance       cert-manager and Pebble are add-ons (--codelab-local-addons=cert-manager)
#                      not switched on here yet: without them suites/test_tls.py skips.
# (TLS itself is checked locally: the ingress serves the stack's generated certificate.)
# The plugin's own tests in the same run carry no promise and change nothing here.
WAIVED_LOCALLY=vpa,tls-issuance
# Two long e2e tests stay out of this run unless CODELAB_FULL=1, to keep CI within its 90
# minutes on 2 cores (the 3-worker cluster run measured 66 min before the rollouts with
# them in): the node-failure e2e test (6.7 min) and the staging rehearsal (passed 3/3 in
# that run). They run by hand: CODELAB_FULL=1 scripts/test.sh.
if [ "${CODELAB_FULL:-}" != "1" ]; then
    GATE+=(--deselect tests/e2e/test_node_failure.py
           --deselect tests/e2e/test_staging_rehearsal.py)
fi
GATE+=(--codelab-require-all "--codelab-waive=$WAIVED_LOCALLY")
log "pytest ${GATE[*]} --ignore=tests/engine tests suites $*"
"${PYTEST[@]}" "${GATE[@]}" --ignore=tests/engine tests suites "$@"
# The engine stands alone: its tests run without the gate's plugin, the life cycle last.
log "engine tests and life cycle: CODELAB_ENGINE_TESTS=1 pytest -p no:codelab tests/engine"
CODELAB_ENGINE_TESTS=1 "${PYTEST[@]}" -p no:codelab tests/engine
