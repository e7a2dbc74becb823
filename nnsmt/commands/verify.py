"""nnsmt verify: decide a VNN-LIB property with the best engine, validating any counterexample;
with --params, a parameter-robustness question instead."""

from __future__ import annotations

from nnsmt.errors import InputError

from .common import EXIT, NETWORK, network_pairs, add_backend_args, add_command, add_model_args, float_evaluator, load_model, show
from .options import ROBUST, add_engine_args, add_robustness_args, from_args, plot, refuse, robustness_query


def options(args, sources=()):
    """Typed verification options from the parsed command line; `sources`: the files a
    certificate names, ((role, path), ...)."""
    from nnsmt.engine.verify import VerifyOptions
    engine = args.engine
    if args.encoding is not None:  # the older spelling of --engine plain|bounded
        if engine not in ("auto", args.encoding):
            raise InputError(f"--encoding {args.encoding} and --engine {engine} disagree")
        engine = args.encoding
    return from_args(VerifyOptions, args, engine=engine, sources=tuple(sources))


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


STANDARD_VERDICT = {"sat": "sat", "unsat": "unsat"}


def standard_verdict(o) -> str:
    """The standard's first stdout line for an outcome: sat, unsat, unknown or timed-out."""
    if o.status in STANDARD_VERDICT:
        return STANDARD_VERDICT[o.status]
    return "timed-out" if "timeout" in (o.reason or "").lower() else "unknown"


def run_standard(args) -> int:
    """`nnsmt verify QUERY --network NAME=FILE ...`: VNN-LIB 2's verifier interface (chapter 5).
    stdout: the verdict line, then for sat the assignment (or --serialise-assignments DIR);
    everything else on stderr. Exit 0 for every verdict, 2 for bad input (the standard's error
    conditions), 3 when a solver failed (the verdict line then says unknown)."""
    import sys
    from nnsmt.assignment import format_assignment, write_pb
    from nnsmt.engine.standard import assignment, prepare, query_from_v1, verify
    from nnsmt.engine.verify import outcome_json
    from nnsmt.vnnlib2 import is_vnnlib2, load_query
    if args.property is not None:
        raise InputError(f"{args.property}: with --network the query is the only positional "
                         "argument (nnsmt verify QUERY --network NAME=FILE ...)")
    pairs = network_pairs(args.network)
    path = args.model
    if is_vnnlib2(path):
        q = load_query(path)
    else:
        q = query_from_v1(path, pairs)
    out_dir = args.serialise_assignments
    if out_dir is not None:
        check_dir(out_dir)
    inst = prepare(q, pairs)
    opts = options(args, (("property", path),) + tuple((f"network:{n}", f) for n, f in dict(inst.files).items()))
    o = verify(inst, opts)
    verdict = standard_verdict(o)
    if args.json:
        rec = outcome_json(o) | {"query": path, "networks": dict(inst.files), "verdict": verdict,
                                 "semantics": inst.float_type or "real"}
        if o.witness is not None:
            rec["assignment"] = {d.name: [str(v) for v in vals] for d, vals in assignment(inst, o.witness)}
        show(args, rec)
    else:
        print(verdict)
        if o.status == "sat":
            items = assignment(inst, o.witness)
            if out_dir is not None:
                for d, vals in items:
                    write_pb(out_dir, d, vals)
            else:
                sys.stdout.write(format_assignment(items))
        what = f"nnsmt: {o.status} by {o.engine}" + (f" on {o.backend}" if o.backend else "")
        print(what + (f": {o.reason}" if o.reason else ""), file=sys.stderr)
        for n in o.notes:
            print(f"nnsmt: note: {n}", file=sys.stderr)
    return EXIT["error"] if o.status == "error" else 0


def check_dir(path) -> None:
    from pathlib import Path
    p = Path(path)
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"--serialise-assignments {path}: cannot create the folder: {e.strerror}") from None
    if not p.is_dir():
        raise InputError(f"--serialise-assignments {path}: not a folder")


def _standard_query_alone(args) -> bool:
    """`nnsmt verify QUERY` with no property and no --network, QUERY a VNN-LIB 2 file: the
    standard form with every network missing (its error names them)."""
    import os
    from nnsmt.vnnlib2 import is_vnnlib2
    return (args.property is None and args.params is None and os.path.isfile(args.model)
            and is_vnnlib2(args.model))


def run(args) -> int:
    if args.network or _standard_query_alone(args):
        return run_standard(args)
    if args.serialise_assignments is not None:
        raise InputError("--serialise-assignments needs the standard form: nnsmt verify QUERY --network NAME=FILE")
    if args.params is not None:  # parameter robustness (nnsmt.queries.robustness)
        if args.certificate is not None:
            raise InputError("--certificate covers VNN-LIB verification, not --params questions")
        return run_robustness(args)
    refuse(args, ROBUST, "without --params (a parameter-robustness option)")
    if args.property is None:
        raise InputError("give a VNN-LIB property, or --params delta=D with --property label|eps=E|sigma=S")
    from nnsmt.engine.reports import verify_text
    from nnsmt.engine.verify import outcome_json, verify
    from nnsmt.vnnlib import load_vnnlib
    from nnsmt.vnnlib2 import is_vnnlib2
    if str(args.model).endswith(".vnnlib") and is_vnnlib2(args.model):
        raise InputError(f"{args.model}: a VNN-LIB 2 query names its networks: nnsmt verify "
                         f"{args.model} --network NAME=MODEL.onnx ...")
    prop = load_vnnlib(args.property)  # first: it names a VNN-LIB 2 query and the form it takes
    opts = options(args, (("network", args.model), ("property", args.property)))
    g = load_model(args)
    o = verify(g, prop, opts, float_evaluator(g))
    show(args, outcome_json(o) | {"network": args.model, "property": args.property,
                                  "executor": {"name": opts.executor, "jobs": opts.jobs}}, *verify_text(o))
    return EXIT[o.status]


def register(sub):
    sp = add_command(sub, "verify", "decide a VNN-LIB property; print sat (with a validated counterexample), "
                     "unsat, unknown or error. Two forms: `nnsmt verify NET PROP` (VNN-LIB 1.0), and the "
                     "VNN-LIB 2 standard's `nnsmt verify QUERY --network NAME=FILE ...` (first stdout line "
                     "sat/unsat/unknown/timed-out, then the assignment; exit 0 for every verdict)",
                     run, json="result, with the engine that ran")
    add_model_args(sp, help=NETWORK + "; in the standard form, the VNN-LIB 2 (or 1.0) query")
    sp.add_argument("property", nargs="?", help="VNN-LIB 1.0 property (asserts the unsafe region); omit it with "
                    "--params or --network")
    sp.add_argument("--network", action="append", default=[], metavar="NAME=FILE",
                    help="the standard form: the ONNX model of network NAME declared in the query (once "
                         "per network, except `equal-to` ones)")
    sp.add_argument("--serialise-assignments", metavar="DIR", default=None,
                    help="the standard form: write a sat assignment as one ONNX TensorProto NAME.pb per "
                         "variable in DIR instead of printing it")
    sp.add_argument("--certificate", metavar="FILE", default=None,
                    help="on unsat, write the proof: the branch tree with each leaf's justification (bounds, "
                         "infeasible phases, or an exact solver's unsat), JSON (.gz: compressed); "
                         "`nnsmt check-certificate FILE ...` replays it. Real-valued queries only")
    add_backend_args(sp)
    sp.add_argument("--encoding", default=None, choices=["plain", "bounded"], help="the same as --engine plain|bounded")
    add_engine_args(sp)
    add_robustness_args(sp)
