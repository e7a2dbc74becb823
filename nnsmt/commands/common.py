"""Helpers shared by the subcommands: loading, exit codes, argument conventions."""

from __future__ import annotations

import argparse

EXIT_CODES = """exit codes:
  0   success; for verify: unsat (no input satisfies the property: it holds)
  10  verify: sat (validated counterexample found: the property is violated)
  20  verify: unknown (timeout or the solver gave up; the reason is printed)
  2   bad input or usage: unreadable/unsupported model or property, size mismatch,
      missing backend
  3   error: the solver failed, or its model failed the replay (never reported as sat)
"""

EXIT = {"unsat": 0, "sat": 10, "unknown": 20, "delta-sat": 20, "error": 3}


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
    sp.add_argument("--timeout", type=float, default=None,
                    help="seconds of solving; on expiry the answer is unknown (timeout). Enforced by "
                         "killing the solver process if it overruns by more than 0.5 s")


def solve(backend_name: str, script, timeout):
    """Solve with a hard deadline when a timeout is given (child process, killed on overrun)."""
    from nnsmt.backends import get_backend
    from nnsmt.backends.isolate import solve_isolated
    backend = get_backend(backend_name)
    if timeout is None:
        return backend.solve(script)
    return solve_isolated(backend_name, script, timeout)
