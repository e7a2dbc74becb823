#!/usr/bin/env bash
# VNN-COMP: prepare_instance.sh v1 CATEGORY ONNX VNNLIB
# Puts the machine in a clean state for the next instance (ends nnsmt processes a previous
# run_instance.sh left behind) and checks that the instance's files are there. No analysis.
# Every category is accepted. Exit 0 when ready; otherwise nonzero with one line on stderr.
# Environment: NNSMT_VNNCOMP_TAG (default "default"): the tag run_instance.sh marks its
# processes with; only processes of this user carrying the same tag are ended.
set -u

VERSION_STRING=v1
die() { echo "prepare_instance.sh: $*" >&2; exit 1; }

[ "$#" -eq 4 ] || die "usage: prepare_instance.sh v1 CATEGORY ONNX VNNLIB"
[ "$1" = "$VERSION_STRING" ] || die "expected version string '$VERSION_STRING', got '$1'"
CATEGORY="$2"
ONNX="$3"
VNNLIB="$4"

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)" || die "cannot locate the script's folder"
REPO="$(dirname "$HERE")"
VENV="${NNSMT_VNNCOMP_VENV:-$REPO/.venv}"
TAG="${NNSMT_VNNCOMP_TAG:-default}"
case "$TAG" in *[!A-Za-z0-9_-]*|"") die "NNSMT_VNNCOMP_TAG must be letters, digits, _ or -";; esac
# run_instance.sh starts the verifier as `python -X nnsmt_vnncomp_run=TAG ...`; its solver
# processes are forked from it and carry the same command line.
MARKER="-X nnsmt_vnncomp_run=${TAG}( |\$)"

# End leftovers of earlier runs (TERM, then KILL for whatever is still there).
if command -v pkill >/dev/null 2>&1; then
    if pgrep -u "$(id -u)" -f -- "$MARKER" >/dev/null 2>&1; then
        pkill -TERM -u "$(id -u)" -f -- "$MARKER" 2>/dev/null
        for _ in 1 2 3 4 5 6 7 8 9 10; do
            pgrep -u "$(id -u)" -f -- "$MARKER" >/dev/null 2>&1 || break
            sleep 0.2
        done
        pkill -KILL -u "$(id -u)" -f -- "$MARKER" 2>/dev/null
    fi
fi

[ -x "$VENV/bin/nnsmt" ] || die "nnsmt is not installed in $VENV (run install_tool.sh v1)"
command -v timeout >/dev/null 2>&1 || die "coreutils 'timeout' is missing"

check_file() {  # what path
    [ -e "$2" ] || die "$1 file not found: $2"
    [ -f "$2" ] && [ -r "$2" ] || die "$1 file is not a readable file: $2"
    case "$2" in
        *.gz) gzip -t -- "$2" 2>/dev/null || die "$1 file is not valid gzip: $2";;
    esac
}
check_file ONNX "$ONNX"
check_file VNN-LIB "$VNNLIB"

echo "nnsmt ready for category '$CATEGORY': $ONNX, $VNNLIB"
exit 0
