#!/usr/bin/env bash
# VNN-COMP: run_instance.sh v1 CATEGORY ONNX VNNLIB RESULTFILE TIMEOUT
# Runs nnsmt (default engine) on one instance and writes RESULTFILE (atomically: temp + mv):
#   sat + the counterexample, unsat, timeout, unknown or error.
# VNN-LIB 1.0: `nnsmt verify ONNX VNNLIB --json`; a counterexample is written in the VNN-COMP
#   format ((X_0 v) ... (Y_0 v) ...), outputs as onnxruntime computes them on that input.
# VNN-LIB 2 (the query starts with `(vnnlib-version <2`): the standard CLI,
#   `nnsmt verify QUERY --network NAME=ONNX --timeout S`; its stdout (verdict, then the
#   assignment in VNN-LIB 2's command-line format) is written with `timed-out` -> `timeout`.
# .gz inputs are decompressed to a temporary folder. nnsmt gets a timeout a little below
# TIMEOUT; coreutils `timeout` kills its whole process group at TIMEOUT + 1 s (KILL 2 s
# later), and then the result is `timeout`: the script returns within TIMEOUT + ~3 s.
# Exit 0 once RESULTFILE is written; 1 on bad arguments (no result file then).
set -u

VERSION_STRING=v1
die() { echo "run_instance.sh: $*" >&2; exit 1; }

[ "$#" -eq 6 ] || die "usage: run_instance.sh v1 CATEGORY ONNX VNNLIB RESULTFILE TIMEOUT"
[ "$1" = "$VERSION_STRING" ] || die "expected version string '$VERSION_STRING', got '$1'"
CATEGORY="$2"
ONNX="$3"
VNNLIB="$4"
RESULT="$5"
TIMEOUT="$6"
[[ "$TIMEOUT" =~ ^[0-9]+([.][0-9]*)?$ ]] && awk -v t="$TIMEOUT" 'BEGIN { exit !(t + 0 > 0) }' \
    || die "TIMEOUT must be a positive number of seconds, got '$TIMEOUT'"

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)" || die "cannot locate the script's folder"
REPO="$(dirname "$HERE")"
VENV="${NNSMT_VNNCOMP_VENV:-$REPO/.venv}"
PY="$VENV/bin/python"
NNSMT="$VENV/bin/nnsmt"
TAG="${NNSMT_VNNCOMP_TAG:-default}"
case "$TAG" in *[!A-Za-z0-9_-]*|"") die "NNSMT_VNNCOMP_TAG must be letters, digits, _ or -";; esac

RESULT_DIR="$(dirname -- "$RESULT")"
mkdir -p -- "$RESULT_DIR" 2>/dev/null
[ -d "$RESULT_DIR" ] && [ -w "$RESULT_DIR" ] || die "cannot write to the result folder $RESULT_DIR"

WORK=""
CHILD=""
WRITTEN=0

cleanup() { [ -n "$WORK" ] && rm -rf -- "$WORK"; }
trap cleanup EXIT

# write_result TEXT: RESULTFILE holds TEXT (plus a final newline) or is left as it was.
write_result() {
    local tmp
    tmp="$(mktemp "$RESULT_DIR/.$(basename -- "$RESULT").XXXXXX")" || { echo "run_instance.sh: cannot create a temporary file in $RESULT_DIR" >&2; return 1; }
    # mktemp makes the file private; give it the mode a plain `>` would (umask).
    if printf '%s\n' "$1" > "$tmp" && chmod "$(printf '%o' $(( 0666 & ~0$(umask) )))" "$tmp" \
            && mv -f -- "$tmp" "$RESULT"; then
        WRITTEN=1
    else
        rm -f -- "$tmp"
        echo "run_instance.sh: cannot write $RESULT" >&2
        return 1
    fi
}

finish() {  # finish VERDICT-TEXT: write it and exit
    write_result "$1" || exit 1
    exit 0
}

# Killed from outside (e.g. the harness's own timeout): stop the verifier, answer timeout.
on_signal() {
    trap - TERM INT HUP
    [ -n "$CHILD" ] && kill -TERM "$CHILD" 2>/dev/null
    [ "$WRITTEN" = 1 ] || write_result timeout
    exit 143
}
trap on_signal TERM INT HUP

[ -x "$NNSMT" ] || { echo "run_instance.sh: nnsmt is not installed in $VENV (run install_tool.sh v1)" >&2; finish error; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/nnsmt-vnncomp.XXXXXX")" || { echo "run_instance.sh: cannot create a temporary folder" >&2; finish error; }

# unpack PATH NAME: prints the path to read (a decompressed copy for .gz)
unpack() {
    case "$1" in
        *.gz)
            local out="$WORK/$2"
            gzip -dc -- "$1" > "$out" || { echo "run_instance.sh: cannot decompress $1" >&2; return 1; }
            printf '%s\n' "$out";;
        *) printf '%s\n' "$1";;
    esac
}
onnx_base="$(basename -- "$ONNX")"; onnx_base="${onnx_base%.gz}"
spec_base="$(basename -- "$VNNLIB")"; spec_base="${spec_base%.gz}"
[ "$onnx_base" = "$spec_base" ] && spec_base="spec-$spec_base"
ONNX_IN="$(unpack "$ONNX" "$onnx_base")" || finish error
SPEC_IN="$(unpack "$VNNLIB" "$spec_base")" || finish error
[ -r "$ONNX_IN" ] || { echo "run_instance.sh: cannot read $ONNX" >&2; finish error; }
[ -r "$SPEC_IN" ] || { echo "run_instance.sh: cannot read $VNNLIB" >&2; finish error; }

# The VNN-LIB version and, for VNN-LIB 2, the name of the (first) declared network.
probe="$("$PY" - "$SPEC_IN" <<'PYEOF'
import re, sys
with open(sys.argv[1], "rb") as f:
    text = f.read().decode("utf-8-sig", "replace")
body = re.sub(r";[^\n]*", "", text)          # VNN-LIB comments run from ; to the line's end
if re.match(r"\s*\(\s*vnnlib-version\s+<\s*2", body):
    m = re.search(r"\(\s*declare-network\s+([^\s()]+)", body)
    print("2", m.group(1) if m else "")
else:
    print("1")
PYEOF
)" || { echo "run_instance.sh: cannot read $VNNLIB" >&2; finish error; }
read -r SPEC_VERSION NETWORK_NAME <<<"$probe"

# nnsmt's own timeout: TIMEOUT less 5 % (at least 1 s, at most 5 s; never below TIMEOUT/2);
# the hard stop is TIMEOUT + 1 s.
read -r SOFT HARD SOFT_INT <<<"$(awk -v t="$TIMEOUT" 'BEGIN {
    m = t * 0.05; if (m < 1) m = 1; if (m > 5) m = 5
    s = t - m; if (s < t / 2) s = t / 2
    si = int(s); if (si < 1) si = 1
    printf "%.3f %.3f %d\n", s, t + 1, si }')"

OUT="$WORK/stdout"
# The -X option only marks the process (and its forked solver processes) so that
# prepare_instance.sh can find leftovers: `pkill -f 'nnsmt_vnncomp_run=TAG'`.
if [ "$SPEC_VERSION" = 2 ]; then
    [ -n "$NETWORK_NAME" ] || { echo "run_instance.sh: $VNNLIB declares no network" >&2; finish error; }
    timeout -k 2 "$HARD" "$PY" -X "nnsmt_vnncomp_run=$TAG" "$NNSMT" verify "$SPEC_IN" \
        --network "$NETWORK_NAME=$ONNX_IN" --timeout "$SOFT_INT" > "$OUT" &
else
    timeout -k 2 "$HARD" "$PY" -X "nnsmt_vnncomp_run=$TAG" "$NNSMT" verify "$ONNX_IN" "$SPEC_IN" \
        --timeout "$SOFT" --json > "$OUT" &
fi
CHILD=$!
wait "$CHILD"
rc=$?
CHILD=""

# timeout(1) exits 124 when it sent TERM, 137 (128 + KILL) when KILL was needed.
if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    echo "run_instance.sh: nnsmt killed at the hard timeout (${HARD} s)" >&2
    finish timeout
fi

text="$("$PY" - "$SPEC_VERSION" "$OUT" "$rc" <<'PYEOF'
import json, math, re, sys

version, path, rc = sys.argv[1], sys.argv[2], int(sys.argv[3])
with open(path, encoding="utf-8", errors="replace") as f:
    out = f.read()
TIMEOUT_WORDS = re.compile(r"time[- ]?out|timed[- ]out", re.I)

def num(v):
    v = float(v)  # JSON numbers; nan/inf never pass as sat (checked below)
    return repr(v)

def v1():
    try:
        d = json.loads(out)
    except ValueError:
        return "error"
    if not isinstance(d, dict):
        return "error"
    status = d.get("status")
    if status == "unsat":
        return "unsat"
    if status == "unknown":
        return "timeout" if TIMEOUT_WORDS.search(str(d.get("reason", ""))) else "unknown"
    if status != "sat":
        return "error"
    cex = d.get("counterexample") or {}
    x = cex.get("x")
    y = cex.get("y_onnxruntime")
    if not y or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in y):
        y = cex.get("y")
    if not x or not y:  # a sat without its witness would score as a wrong answer
        print("run_instance.sh: sat without a counterexample in nnsmt's JSON", file=sys.stderr)
        return "unknown"
    try:
        items = [f"(X_{i} {num(v)})" for i, v in enumerate(x)]
        items += [f"(Y_{j} {num(v)})" for j, v in enumerate(y)]
    except (TypeError, ValueError):
        return "error"
    return "sat\n(" + "\n ".join(items) + ")"

def v2():
    lines = out.splitlines()
    while lines and not lines[0].strip():
        lines.pop(0)
    if not lines:
        return "error"
    word = lines[0].strip()
    rest = [ln for ln in lines[1:] if ln.strip()]
    if word == "timed-out":
        return "timeout"
    if word in ("unsat", "unknown"):
        return word
    if word == "sat":
        if not rest:
            print("run_instance.sh: sat without an assignment on nnsmt's stdout", file=sys.stderr)
            return "unknown"
        return "\n".join(["sat"] + rest)
    return "error"

print(v1() if version == "1" else v2())
PYEOF
)" || { echo "run_instance.sh: cannot read nnsmt's output" >&2; finish error; }

finish "$text"
