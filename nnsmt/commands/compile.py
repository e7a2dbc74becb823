"""nnsmt compile: write a query as SMT-LIB2 text, `to_smtlib(query.compile())`.

Each mode is a function args -> Query, registered in MODES. There is no backend here, so
`--sigmoid auto` writes the exact exp (what an exact solver decides)."""

from __future__ import annotations

import time

from nnsmt.errors import InputError

from .common import add_command, add_model_args, add_output, load_model, put
from .options import (ESTIMATE, ROBUST, TRAIN, add_estimate_args, add_robustness_args, add_training_args,
                      refuse, robustness_query, train_query)


def verify_query(args):
    """The VNN-LIB property's query (--encoding plain, the default, or bounded)."""
    from nnsmt.engine.build import verify_query as make
    from nnsmt.vnnlib import load_vnnlib
    refuse(args, TRAIN + ESTIMATE + tuple(n for n in ROBUST if n != "robust_property"), "to --mode verify")
    if args.property is None:
        raise InputError("--mode verify needs --property P.vnnlib")
    if args.encoding not in (None, "plain", "bounded"):
        raise InputError(f"--mode verify: --encoding plain or bounded (got {args.encoding!r})")
    g, prop = load_model(args), load_vnnlib(args.property)
    return make(g, prop, args.encoding or "plain", args.sigmoid)


def robust(args):
    """The query of --mode robustness or estimate."""
    args.robust_property = args.property  # one --property here: label|eps=E|sigma=S
    return robustness_query(args, args.mode)


MODES = {"verify": verify_query, "robustness": robust, "estimate": robust, "train": lambda args: train_query(args, "seed")}


def run(args) -> int:
    from nnsmt.backends.smtlib import to_smtlib
    t0 = time.perf_counter()
    script = MODES[args.mode](args).compile()
    put(args.output, to_smtlib(script), f": {len(script.decls)} declarations, {len(script.defs)} definitions, "
        f"{len(script.asserts)} assertions, logic {script.logic} ({time.perf_counter() - t0:.2f} s)")
    return 0


def register(sub):
    sp = add_command(sub, "compile", "compile a query to SMT-LIB2 text", run)
    add_model_args(sp)
    sp.add_argument("--mode", default="verify", choices=sorted(MODES), help="query to compile (default verify)")
    sp.add_argument("--emit", default="smt2", choices=["smt2"], help="output format (default smt2)")
    add_output(sp)
    sp.add_argument("--property", help="VNN-LIB property (--mode verify); label|eps=E|sigma=S "
                    "(--mode robustness); eps=T|sigma=T (--mode estimate: can the quantity exceed T?)")
    sp.add_argument("--encoding", default=None, help="verify: plain (default) or bounded; train: seed "
                    "(default, faithful to the seed paper), margin, homog, auto")
    add_robustness_args(sp, with_property=False, plot=False)
    add_estimate_args(sp)
    add_training_args(sp)
