"""Helpers shared by the subcommands: loading, exit codes, argument conventions."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

# The exit codes, in one place: EXIT_CODES is the text every --help shows, EXIT maps a verdict
# to its code, and the EXIT_* names are the codes that are not verdicts.
EXIT_CODES = """exit codes:
  0   success; for verify: unsat (no input satisfies the property: it holds)
  10  verify: sat (validated counterexample found: the property is violated)
  20  verify: unknown (timeout or the solver gave up; the reason is printed)
  2   bad input or usage: unreadable/unsupported model or property, size mismatch,
      bad option value, missing backend (one line names the file and the element)
  3   error: the solver failed, or its model failed the replay (never reported as sat)
  4   diff: the backends disagree (or a sat model fails the replay)
  5   check-certificate: the certificate does not prove the query (rejected)
  1   internal error: a bug in nnsmt (one line; NNSMT_DEBUG=1 shows the traceback)
  130 interrupted (Ctrl-C)
  141 standard output closed before everything was written (e.g. `| head`)
"""

EXIT = {"unsat": 0, "sat": 10, "unknown": 20, "delta-sat": 20, "error": 3}
EXIT_USAGE = 2
EXIT_DISAGREE = 4
EXIT_INTERNAL = 1
EXIT_INTERRUPTED = 130
EXIT_PIPE = 141


def _checked(convert, kind: str, ok, wanted: str):
    """An argparse `type=`: `convert(text)` (a ValueError: "is not KIND"), then `ok(value)`
    (else "give WANTED")."""
    def check(text: str):
        try:
            v = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {kind}") from None
        if not ok(v):
            raise argparse.ArgumentTypeError(f"{text!r}: give {wanted}")
        return v
    return check


# a time limit (`inf`, `nan`, `0`, `-1`, `abc` are usage errors); a count such as --jobs; a count
# where 0 means "none"; a real-valued option; a tolerance, a bound, a budget
timeout_seconds = _checked(float, "a number of seconds", lambda v: math.isfinite(v) and v > 0,
                           "a finite number of seconds > 0")
positive_int = _checked(int, "an integer", lambda v: v >= 1, "an integer >= 1")
MAX_JOBS = 1024  # processes (or Ray tasks) at once; a million would fork until the machine stops
job_count = _checked(int, "an integer", lambda v: 1 <= v <= MAX_JOBS, f"an integer from 1 to {MAX_JOBS}")
nonnegative_int = _checked(int, "an integer", lambda v: v >= 0, "an integer >= 0")
finite_float = _checked(float, "a number", math.isfinite, "a finite number")
positive_float = _checked(finite_float, "a number", lambda v: v > 0, "a number > 0")


def check_output(path) -> Path:
    """Check an output path (-o) before any work is done: not a directory, in an existing
    directory, and writable there.

    Raises:
        InputError: one line naming the path and what is wrong (exit 2).
    """
    from nnsmt.errors import InputError
    p = Path(path)
    if str(path) == "" or p.is_dir():
        raise InputError(f"{path or '(empty)'}: is a directory, not an output file name")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        why = "does not exist" if not parent.exists() else "is not a directory"
        raise InputError(f"{path}: cannot write: directory {str(parent)!r} {why}")
    if p.exists() and not os.access(p, os.W_OK) or not p.exists() and not os.access(parent, os.W_OK):
        raise InputError(f"{path}: cannot write: permission denied")
    return p


def write_output(path, data: str | bytes) -> None:
    """Write text or bytes to `path`; an OSError becomes a one-line InputError naming it."""
    from nnsmt.errors import InputError
    check_output(path)
    try:
        Path(path).write_bytes(data) if isinstance(data, bytes) else Path(path).write_text(data)
    except OSError as e:
        raise InputError(f"{path}: cannot write: {e.strerror or e}") from None


def put(path, text: str, said: str = "") -> None:
    """`text` to `path`, then "wrote PATH" and `said` on standard error; to standard output
    when there is no path (no -o)."""
    if not path:
        sys.stdout.write(text)
        return
    write_output(path, text)
    print(f"wrote {path}{said}", file=sys.stderr)


def add_output(sp, also: str = "") -> None:
    """-o/--output: a file instead of standard output."""
    sp.add_argument("-o", "--output", help="write here instead of standard output" + also)


def exit_epilog(command: str, **meanings: str) -> str:
    """The exit-code table of one command, in the shared order: sat means a witness exists (10),
    unsat that none does (0), as for verify."""
    rows = [("0", meanings.get("unsat")), ("10", meanings.get("sat")), ("20", meanings.get("unknown")),
            ("2", "bad input or usage (one line names the file or option)"),
            ("3", meanings.get("error", "error: a solver failed, or its model failed the replay")),
            ("1", "internal error: a bug in nnsmt (NNSMT_DEBUG=1 shows the traceback)")]
    return f"exit codes ({command}):\n" + "".join(f"  {c:3} {m}\n" for c, m in rows if m)


def add_command(sub, name: str, help: str, func, json: str | None = None, epilog: str = EXIT_CODES,
                **exits: str) -> argparse.ArgumentParser:
    """The parser of command `name` running `func`: `help` is its description; its epilog is
    `epilog` (the shared exit codes), or its own table of `exits` (`exit_epilog`); `json`: what
    --json prints (no --json without it)."""
    sp = sub.add_parser(name, help=help, description=help, epilog=exit_epilog(name, **exits) if exits else epilog,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    sp.set_defaults(func=func)
    if json:
        sp.add_argument("--json", action="store_true", help=f"machine-readable {json}")
    return sp


NETWORK = "network file (.onnx, .pt, .safetensors, .json, .keras, .h5)"


def add_model_args(sp, help: str = NETWORK):
    """The network (positional `model`) and what a Keras config or a PyTorch state dict does
    not hold: --weights and --arch."""
    sp.add_argument("model", help=help)
    sp.add_argument("--weights", help="Keras weights (.weights.h5 or legacy .h5) for a "
                    "model.to_json() config")
    sp.add_argument("--arch", help='PyTorch state-dict architecture, e.g. "linear,relu,'
                    'linear,sigmoid", JSON, or a .json/.yaml spec (default: ReLU between '
                    "Linear layers)")


def load_model(args):
    """The network of `add_model_args` from parsed arguments."""
    from nnsmt.frontends import load_network
    return load_network(args.model, weights=getattr(args, "weights", None), arch=getattr(args, "arch", None))


def float_evaluator(graph):
    """onnxruntime replay for ONNX sources (None when the source is not ONNX)."""
    if graph.meta.get("format") != "onnx":
        return None
    from nnsmt.frontends import ort_evaluator
    return ort_evaluator(graph.meta["source"])


BACKENDS = "z3, cvc5, pysmt:SOLVER (any solver pySMT has), smt2:COMMAND (a solver binary fed SMT-LIB2 " \
    "on stdin, e.g. 'smt2:z3 -in'), or milp:highs / milp:scip (a MILP solver for piecewise-linear " \
    "queries; its answers are checked exactly, its infeasibility confirmed by z3)"


def names(text: str) -> list[str]:
    """The items of a comma-separated list (--backends, --layers), stripped, empty ones dropped."""
    return [b.strip() for b in text.split(",") if b.strip()]


def add_backend_args(sp, default="z3", timeout: float | None = None):
    """--backend and --timeout of a command that solves on one backend; `timeout`: the
    default seconds (None: no limit)."""
    sp.add_argument("--backend", default=default, help=f"solver backend (default {default}): {BACKENDS}")
    limit = "no limit" if timeout is None else f"{timeout:g} per query"
    sp.add_argument("--timeout", type=timeout_seconds, default=timeout,
                    help=f"seconds of solving (default {limit}); on expiry the answer is unknown (timeout). "
                         "Enforced by killing the solver process if it overruns by more than 0.5 s")


def show(args, record, out=(), err=(), ascii: bool = True) -> None:
    """With --json, `record` as indented JSON; else lines of text: `out` to standard output,
    then `err` to standard error."""
    if getattr(args, "json", False):
        return print(json.dumps(record, indent=2, ensure_ascii=ascii))
    for line in out:
        print(line)
    for line in err:
        print(line, file=sys.stderr)


def network_pairs(items) -> dict[str, str]:
    """--network NAME=FILE, each name once."""
    from nnsmt.errors import InputError
    out: dict[str, str] = {}
    for it in items:
        name, eq, path = it.partition("=")
        if not eq or not name or not path:
            raise InputError(f"--network {it}: give NAME=FILE (a network declared in the query, "
                             "and its ONNX model)")
        if name in out:
            raise InputError(f"--network {name}: given twice")
        out[name] = path
    return out
