#!/usr/bin/env bash
# VNN-COMP: install_tool.sh v1
# Installs nnsmt from this checkout: a virtualenv at <repo>/.venv (Python >= 3.11) with nnsmt
# installed editable plus onnxruntime (the `ort` extra: the Makefile's `make demo` install
# steps) and `vnnlib`, the VNN-LIB 2 standard's parser (for VNN-LIB 2 queries). No tests run.
# Idempotent. Works from any directory.
# Environment: PYTHON (the interpreter to build the venv from; default: the first python3.x
# >= 3.11 on PATH), NNSMT_VNNCOMP_VENV (the venv's path; default <repo>/.venv).
set -u

VERSION_STRING=v1
die() { echo "install_tool.sh: $*" >&2; exit 1; }

[ "$#" -eq 1 ] || die "usage: install_tool.sh v1"
[ "$1" = "$VERSION_STRING" ] || die "expected version string '$VERSION_STRING', got '$1'"

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)" || die "cannot locate the script's folder"
REPO="$(dirname "$HERE")"
VENV="${NNSMT_VNNCOMP_VENV:-$REPO/.venv}"
[ -f "$REPO/pyproject.toml" ] || die "$REPO/pyproject.toml is missing (the script must stay in <repo>/vnncomp/)"

py_ok() { "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; }

PY3=""
if [ -n "${PYTHON:-}" ]; then
    py_ok "$PYTHON" || die "PYTHON=$PYTHON is not a Python >= 3.11"
    PY3="$PYTHON"
else
    for cand in python3 python3.13 python3.12 python3.11; do
        if command -v "$cand" >/dev/null 2>&1 && py_ok "$cand"; then PY3="$cand"; break; fi
    done
    [ -n "$PY3" ] || die "nnsmt needs Python >= 3.11: none on PATH (set PYTHON=/path/to/python3.11+)"
fi

if [ ! -x "$VENV/bin/python" ]; then
    if ! "$PY3" -m venv "$VENV"; then
        # Debian/Ubuntu ship venv's ensurepip separately (python3.X-venv); install it if we may.
        pyver="$("$PY3" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
        if command -v apt-get >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
            sudo -n apt-get install -y "python${pyver}-venv" || sudo -n apt-get install -y python3-venv
            rm -rf "$VENV"
            "$PY3" -m venv "$VENV" || die "cannot create the virtualenv $VENV"
        else
            rm -rf "$VENV"
            die "cannot create the virtualenv $VENV (on Debian/Ubuntu: apt-get install python${pyver}-venv)"
        fi
    fi
fi

cd "$REPO" || die "cannot enter $REPO"
"$VENV/bin/python" -m pip install -q --upgrade pip || die "pip upgrade failed"
"$VENV/bin/python" -m pip install -q -e '.[ort]' 'vnnlib>=1.0.2' || die "pip install -e '.[ort]' vnnlib failed"

# Smoke test: the CLI runs and the onnxruntime replay of counterexamples is available.
"$VENV/bin/nnsmt" --version || die "$VENV/bin/nnsmt does not run"
"$VENV/bin/python" -c 'import onnxruntime, vnnlib' || die "onnxruntime or vnnlib does not import"
command -v timeout >/dev/null 2>&1 || die "coreutils 'timeout' is missing (run_instance.sh needs it)"
command -v pkill >/dev/null 2>&1 || echo "install_tool.sh: warning: pkill (procps) is missing; prepare_instance.sh cannot clean up" >&2
echo "nnsmt installed in $VENV"
