"""nnsmt compile: write a query as SMT-LIB2 text, `to_smtlib(query.compile())`.

Each mode is a function args -> Query, registered in MODES. There is no backend here, so
`--sigmoid auto` writes the exact exp (what an exact solver decides)."""

from __future__ import annotations

import time

from nnsmt.errors import InputError

from .common import add_command, add_model_args, add_output, load_model, network_pairs, put
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


def standard_query(args):
    """`nnsmt compile QUERY --network NAME=FILE ...`: the VNN-LIB 2 (or 1.0) query with its
    networks, lowered as `nnsmt verify` lowers it (float-typed queries widened by rounding
    errors), as one plain query: one complete script another tool can solve."""
    from dataclasses import replace
    from nnsmt.engine.build import verify_query as make
    from nnsmt.engine.standard import prepare, query_from_v1
    from nnsmt.vnnlib2 import is_vnnlib2, load_query
    if args.mode != "verify" or args.property is not None:
        raise InputError("with --network the query is the positional argument (nnsmt compile QUERY "
                         "--network NAME=FILE ...; --mode verify)")
    pairs = network_pairs(args.network)
    q = load_query(args.model) if is_vnnlib2(args.model) else query_from_v1(args.model, pairs)
    inst = prepare(q, pairs)
    query = make(inst.graph, inst.prop, args.encoding or "plain", args.sigmoid)
    return replace(query, float_type=inst.float_type) if hasattr(query, "float_type") else query


def _standard_query_alone(args) -> bool:
    """`nnsmt compile QUERY` with no --property and no --network, QUERY a VNN-LIB 2 file: the
    standard form with every network missing (its error names them)."""
    import os
    from nnsmt.vnnlib2 import is_vnnlib2
    return args.property is None and os.path.isfile(args.model) and is_vnnlib2(args.model)


def run(args) -> int:
    from nnsmt.backends.smtlib import to_smtlib
    t0 = time.perf_counter()
    standard = args.network or _standard_query_alone(args)
    script = (standard_query(args) if standard else MODES[args.mode](args)).compile()
    put(args.output, to_smtlib(script), f": {len(script.decls)} declarations, {len(script.defs)} definitions, "
        f"{len(script.asserts)} assertions, logic {script.logic} ({time.perf_counter() - t0:.2f} s)")
    return 0


def register(sub):
    sp = add_command(sub, "compile", "compile a query to SMT-LIB2 text", run)
    add_model_args(sp, help="network file; with --network, the VNN-LIB 2 (or 1.0) query")
    sp.add_argument("--network", action="append", default=[], metavar="NAME=FILE",
                    help="compile a VNN-LIB 2 query: the ONNX model of each network it declares")
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
