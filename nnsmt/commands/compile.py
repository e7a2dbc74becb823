"""nnsmt compile: write a query as SMT-LIB2 text.

Each mode is a function args -> Script, registered in MODES; a mode's own options are added
to the parser in `register`.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from nnsmt.errors import InputError

from .common import add_command, add_model_args


def verify_mode(args):
    from nnsmt.queries.verify import verify_script
    from nnsmt.vnnlib import load_vnnlib
    from .common import load_model, model_options
    if args.property is None:
        raise InputError("--mode verify needs --property P.vnnlib")
    return verify_script(load_model(args.model, **model_options(args)), load_vnnlib(args.property), encoding=args.encoding or "plain")


def _robustness_mode(args):
    from .estimate import robustness_mode
    return robustness_mode(args)


def _estimate_mode(args):
    from .estimate import estimate_mode
    return estimate_mode(args)


def train_mode(args):
    """Every free weight a variable, every data point's label the strict winner (see nnsmt train)."""
    from nnsmt.queries.train import training_script
    from .train import load_problem
    return training_script(load_problem(args), args.encoding or "seed")


MODES = {"verify": verify_mode, "robustness": _robustness_mode, "estimate": _estimate_mode,
         "train": train_mode}


def run(args) -> int:
    from nnsmt.backends.smtlib import to_smtlib
    t0 = time.perf_counter()
    script = MODES[args.mode](args)
    text = to_smtlib(script)
    if args.output:
        Path(args.output).write_text(text)
        print(f"wrote {args.output}: {len(script.decls)} declarations, {len(script.defs)} "
              f"definitions, {len(script.asserts)} assertions, logic {script.logic} "
              f"({time.perf_counter() - t0:.2f} s)", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def register(sub):
    sp = add_command(sub, "compile", "compile a query to SMT-LIB2 text", run)
    sp.add_argument("model", help="network file (.onnx, .pt, .safetensors, .json, .keras, .h5)")
    add_model_args(sp)
    sp.add_argument("--mode", default="verify", choices=sorted(MODES), help="query to compile (default verify)")
    sp.add_argument("--emit", default="smt2", choices=["smt2"], help="output format (default smt2)")
    sp.add_argument("-o", "--output", help="write here instead of standard output")
    sp.add_argument("--property", help="VNN-LIB property (--mode verify); label|eps=E|sigma=S "
                    "(--mode robustness)")
    sp.add_argument("--encoding", default=None,
                    help="encoding; each mode lists its own (verify: plain, the default, or bounded)")
    from .estimate import add_compile_args
    add_compile_args(sp)
    sp.add_argument("--data", help="training data CSV (--mode train; encodings: seed, the default "
                    "and faithful to the seed paper, margin, homog)")
    sp.add_argument("--free", default=None, metavar="LAYERS",
                    help="--mode train: layers made symbolic (all, last, a2, 2, a1,a3; default all)")
    sp.add_argument("--weight-bound", type=float, default=None, metavar="B",
                    help="--mode train: box free weights and biases in [-B, B]")
