"""nnsmt verify: decide a VNN-LIB property with the best engine, validating any counterexample."""

from __future__ import annotations

import json
import sys

from .common import EXIT, add_backend_args, add_command, add_model_args, float_evaluator, load_model, model_options


def options(args):
    """Typed verification options from the parsed command line."""
    from nnsmt.engine.verify import VerifyOptions
    from nnsmt.errors import InputError
    engine = args.engine
    if args.encoding is not None:  # the older spelling of --engine plain|bounded
        if engine not in ("auto", args.encoding):
            raise InputError(f"--encoding {args.encoding} and --engine {engine} disagree")
        engine = args.encoding
    return VerifyOptions(engine=engine, backend=args.backend, timeout=args.timeout, split=args.split,
                         jobs=args.jobs, executor=args.executor, ray_address=args.ray_address,
                         sigmoid=args.sigmoid, memory_mb=getattr(args, "memory", None))


def run(args) -> int:
    from nnsmt.errors import InputError
    if args.params is not None:  # parameter robustness (nnsmt.queries.robustness)
        if args.property is not None:
            raise InputError(f"{args.property}: a VNN-LIB property and --params do not combine; "
                             "use --property label|eps=E|sigma=S")
        from .options import run_robustness
        return run_robustness(args)
    from .options import vnnlib_args
    vnnlib_args(args)
    if args.property is None:
        raise InputError("give a VNN-LIB property, or --params delta=D with --property label|eps=E|sigma=S")
    from nnsmt.engine.verify import outcome_json, verify
    from nnsmt.vnnlib import load_vnnlib
    opts = options(args)
    g = load_model(args.model, **model_options(args))
    prop = load_vnnlib(args.property)
    o = verify(g, prop, opts, float_evaluator(g))
    if args.json:
        out = outcome_json(o) | {"network": args.model, "property": args.property,
                                 "executor": {"name": opts.executor, "jobs": opts.jobs}}
        print(json.dumps(out, indent=2))
        return EXIT[o.status]
    print(f"{o.status} ({o.reason})" if o.reason and o.status != "error" else o.status)
    if o.status == "error":
        print(o.reason, file=sys.stderr)
    if o.witness is not None:
        print(o.witness.vnncomp())
        w = o.witness
        print("; validated: exact replay" + (f" and {w.float_replay}" if w.float_replay else ""), file=sys.stderr)
        if not w.float_ok:  # sat for the real-valued network; float execution disagrees
            print(f"; note: {w.float_check}", file=sys.stderr)
    for note in o.notes:
        print(f"; {note}", file=sys.stderr)
    return EXIT[o.status]


def register(sub):
    sp = add_command(sub, "verify", "decide a VNN-LIB property; print sat (with a validated "
                     "counterexample), unsat, unknown or error", run)
    sp.add_argument("model", help="network file (.onnx, .pt, .safetensors, .json, .keras, .h5)")
    add_model_args(sp)
    sp.add_argument("property", nargs="?", help="VNN-LIB 1.0 property (asserts the unsafe region); "
                    "omit it with --params")
    add_backend_args(sp)
    sp.add_argument("--engine", default="auto", choices=["auto", "plain", "bounded", "split"],
                    help="auto (default): input splitting with bounds for networks with at most 16 "
                         "inputs, bounds then one bounded query above that, one query for sigmoid "
                         "networks; plain: every ReLU an ite; bounded: ReLUs that sound bounds show "
                         "stable are fixed, the others get bound lemmas; split: as auto's splitting "
                         "(--json says which engine ran and why)")
    sp.add_argument("--encoding", default=None, choices=["plain", "bounded"],
                    help="the same as --engine plain|bounded")
    sp.add_argument("--split", type=int, default=None, metavar="N",
                    help="the split engine's most sub-queries (default 4096 up to 16 inputs, else 1): "
                         "the input region is bisected, sub-boxes refuted by bounds where possible; "
                         "all unsat -> unsat, a validated sat -> sat (the others are then cancelled)")
    sp.add_argument("--jobs", type=int, default=None, metavar="J",
                    help="sub-queries solved at once (default: one per core), each in its own process")
    sp.add_argument("--executor", default="local", choices=["local", "ray"],
                    help="where sub-queries run: local processes (default) or Ray")
    sp.add_argument("--ray-address", default=None, help='--executor ray: cluster address (e.g. "auto" '
                    "after `ray start --head`); default: start a local Ray instance")
    sp.add_argument("--json", action="store_true", help="machine-readable result, with the engine that ran")
    from .options import add_robustness_args
    add_robustness_args(sp)
