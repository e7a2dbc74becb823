"""Helpers shared by the subcommands: loading, exit codes, argument conventions."""

from __future__ import annotations

import argparse
import math
import os
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


def timeout_seconds(text: str) -> float:
    """argparse `type=` for a time limit in seconds: a finite number > 0 (`inf`, `nan`, `0`,
    `-1`, `abc` are usage errors)."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(v) or v <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: give a finite number of seconds > 0")
    return v


def positive_int(text: str) -> int:
    """argparse `type=` for a count such as --jobs or --split: an integer >= 1."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give an integer >= 1")
    return v


def nonnegative_int(text: str) -> int:
    """argparse `type=` for a count where 0 means "none" (e.g. a number of samples)."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: give an integer >= 0")
    return v


def finite_float(text: str) -> float:
    """argparse `type=` for a real-valued option: a finite number (no `inf`, `nan`)."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"{text!r}: give a finite number")
    return v


def positive_float(text: str) -> float:
    """argparse `type=` for a finite number > 0 (a tolerance, a bound, a budget)."""
    v = finite_float(text)
    if v <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: give a number > 0")
    return v


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


def output_error(path, e: OSError):
    """The one-line InputError for an OSError while writing `path`."""
    from nnsmt.errors import InputError
    return InputError(f"{path}: cannot write: {e.strerror or e}")


def write_output(path, data: str | bytes) -> None:
    """Write text or bytes to `path`; an OSError becomes a one-line InputError naming it."""
    check_output(path)
    try:
        if isinstance(data, bytes):
            Path(path).write_bytes(data)
        else:
            Path(path).write_text(data)
    except OSError as e:
        raise output_error(path, e) from None


def add_command(sub, name: str, help: str, func) -> argparse.ArgumentParser:
    sp = sub.add_parser(name, help=help, description=help, epilog=EXIT_CODES,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    sp.set_defaults(func=func)
    return sp


def load_model(path, weights=None, arch=None):
    """The network at `path`; `weights` (Keras .json) and `arch` (PyTorch state dict) are the
    loader options of `add_model_args`."""
    from nnsmt.frontends import load_network
    return load_network(path, weights=weights, arch=arch)


def add_model_args(sp):
    """--weights and --arch: what a Keras config or a PyTorch state dict does not hold."""
    sp.add_argument("--weights", help="Keras weights (.weights.h5 or legacy .h5) for a "
                    "model.to_json() config")
    sp.add_argument("--arch", help='PyTorch state-dict architecture, e.g. "linear,relu,'
                    'linear,sigmoid", JSON, or a .json/.yaml spec (default: ReLU between '
                    "Linear layers)")


def model_options(args) -> dict:
    """The loader options of `add_model_args` from parsed arguments (absent ones are None)."""
    return {"weights": getattr(args, "weights", None), "arch": getattr(args, "arch", None)}


def float_evaluator(graph):
    """onnxruntime replay for ONNX sources (None when the source is not ONNX)."""
    if graph.meta.get("format") != "onnx":
        return None
    from nnsmt.frontends import ort_evaluator
    return ort_evaluator(graph.meta["source"])


def add_backend_args(sp, default="z3"):
    sp.add_argument("--backend", default=default,
                    help=f"solver backend (default {default}): z3, cvc5, pysmt:SOLVER (any solver pySMT has), "
                         "or smt2:COMMAND (a solver binary fed SMT-LIB2 on stdin, e.g. 'smt2:z3 -in')")
    sp.add_argument("--timeout", type=timeout_seconds, default=None,
                    help="seconds of solving; on expiry the answer is unknown (timeout). Enforced by "
                         "killing the solver process if it overruns by more than 0.5 s")

