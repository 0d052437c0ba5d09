# Shared by gate.sh and test.sh (sourced, not run): the project venv, created and kept
# up to date idempotently in ${CODELAB_VENV:-${CODELAB_CACHE:-$HOME/.cache/pytest-codelab}/venv}.
# .ci/run points CODELAB_VENV at an empty temporary folder, so every CI run installs from
# scratch with the README's install line and a dependency only a hand install gave fails.

log() { printf '==> %s\n' "$*" >&2; }

CODELAB_CACHE="${CODELAB_CACHE:-$HOME/.cache/pytest-codelab}"
VENV="${CODELAB_VENV:-$CODELAB_CACHE/venv}"
PYTHON_BIN="${PYTHON:-python3}"

ensure_venv() {
    if ! "$PYTHON_BIN" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        log "error: Python >= 3.11 is needed ($PYTHON_BIN is $("$PYTHON_BIN" --version 2>&1))"
        return 1
    fi
    if [ ! -x "$VENV/bin/python" ]; then
        log "creating venv $VENV"
        mkdir -p "$CODELAB_CACHE"
        "$PYTHON_BIN" -m venv "$VENV"
    fi
    # Reinstall only when the project metadata changed (the install is editable, so code
    # changes need nothing) or the package is missing.
    local stamp="$VENV/.pytest-codelab.stamp"
    local want
    want="$(sha256sum pyproject.toml | cut -c1-64) $(pwd)"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] \
        && "$VENV/bin/python" -c 'import pytest_codelab' 2>/dev/null; then
        log "venv up to date: $VENV"
        return 0
    fi
    log "installing pytest-codelab[dev] into $VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e ".[dev]"
    printf '%s' "$want" >"$stamp"
}
