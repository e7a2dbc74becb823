"""nnsmt verify: decide a VNN-LIB property with the best engine, validating any counterexample;
with --params, a parameter-robustness question instead."""

from __future__ import annotations

from nnsmt.errors import InputError

from .common import EXIT, add_backend_args, add_command, add_model_args, float_evaluator, load_model, show
from .options import ROBUST, add_engine_args, add_robustness_args, from_args, plot, refuse, robustness_query


def options(args):
    """Typed verification options from the parsed command line."""
    from nnsmt.engine.verify import VerifyOptions
    engine = args.engine
    if args.encoding is not None:  # the older spelling of --engine plain|bounded
        if engine not in ("auto", args.encoding):
            raise InputError(f"--encoding {args.encoding} and --engine {engine} disagree")
        engine = args.encoding
    return from_args(VerifyOptions, args, engine=engine)


def run_robustness(args) -> int:
    """`nnsmt verify NET --params ...`: one robustness question through the driver."""
    from nnsmt.engine.reports import robustness_record, robustness_text, where_text
    from nnsmt.engine.robustness import run
    if args.property is not None:
        raise InputError(f"{args.property}: a VNN-LIB property and --params do not combine; "
                         "use --property label|eps=E|sigma=S")
    if args.robust_property is None:
        raise InputError("--property label|eps=E|sigma=S is required with --params")
    q = robustness_query(args, "robustness", args.backend, float_check=True)  # refuses verify's engines
    o = run(q, args.backend, args.timeout)
    out = robustness_record(o, q, args.model, where_text(q.question.point, args.domain))
    show(args, out, *robustness_text(o, out), ascii=False)
    plot(args, q.graph, q.question.domain)
    return EXIT[o.status]


def run(args) -> int:
    if args.params is not None:  # parameter robustness (nnsmt.queries.robustness)
        return run_robustness(args)
    refuse(args, ROBUST, "without --params (a parameter-robustness option)")
    if args.property is None:
        raise InputError("give a VNN-LIB property, or --params delta=D with --property label|eps=E|sigma=S")
    from nnsmt.engine.reports import verify_text
    from nnsmt.engine.verify import outcome_json, verify
    from nnsmt.vnnlib import load_vnnlib
    opts = options(args)
    g = load_model(args)
    o = verify(g, load_vnnlib(args.property), opts, float_evaluator(g))
    show(args, outcome_json(o) | {"network": args.model, "property": args.property,
                                  "executor": {"name": opts.executor, "jobs": opts.jobs}}, *verify_text(o))
    return EXIT[o.status]


def register(sub):
    sp = add_command(sub, "verify", "decide a VNN-LIB property; print sat (with a validated counterexample), "
                     "unsat, unknown or error", run, json="result, with the engine that ran")
    add_model_args(sp)
    sp.add_argument("property", nargs="?", help="VNN-LIB 1.0 property (asserts the unsafe region); omit it with "
                    "--params")
    add_backend_args(sp)
    sp.add_argument("--encoding", default=None, choices=["plain", "bounded"], help="the same as --engine plain|bounded")
    add_engine_args(sp)
    add_robustness_args(sp)
