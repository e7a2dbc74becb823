"""nnsmt verify: decide a VNN-LIB property, validating any counterexample before sat."""

from __future__ import annotations

import json
import sys
import time

from .common import EXIT, add_backend_args, add_command, float_evaluator, load_model, solve, add_model_args, model_options


def run(args) -> int:
    from nnsmt.backends import get_backend
    from nnsmt.errors import InputError, ValidationError
    from nnsmt.queries.verify import verify_script
    from nnsmt.validate import validate_counterexample
    from nnsmt.vnnlib import load_vnnlib
    if args.params is not None:  # parameter robustness (nnsmt.queries.robustness)
        from .estimate import run_verify
        if args.property is not None:
            raise InputError(f"{args.property}: a VNN-LIB property and --params do not combine; "
                             "use --property label|eps=E|sigma=S")
        return run_verify(args)
    if args.property is None:
        raise InputError("give a VNN-LIB property, or --params delta=D with --property label|eps=E|sigma=S")
    if not args.split and (args.jobs is not None or args.executor != "local" or args.ray_address):
        raise InputError("--jobs, --executor and --ray-address spread the sub-queries of --split N")
    t0 = time.perf_counter()
    get_backend(args.backend)  # fail early, naming what is missing
    g = load_model(args.model, **model_options(args))
    prop = load_vnnlib(args.property)
    if args.split:
        return _run_split(args, g, prop, t0)
    script = verify_script(g, prop, encoding=args.encoding)
    t_compile = time.perf_counter() - t0
    res = solve(args.backend, script, args.timeout)
    status, reason, cex = res.status, res.reason, None
    if status == "sat":
        try:
            cex = validate_counterexample(g, prop, res.model, float_evaluator(g))
        except ValidationError as e:
            status, reason = "error", str(e)
    out = {"status": status, "reason": reason, "backend": res.backend,
           "network": args.model, "property": args.property,
           "time": {"compile_s": round(t_compile, 4), **{k: round(v, 4) for k, v in res.stats.items()}}}
    if cex is not None:
        out["counterexample"] = _cex_json(cex)
    return _report(args, out, status, reason, cex)


def _cex_json(cex) -> dict:
    return {"x": [float(v) for v in cex.x], "y": [float(v) for v in cex.y],
            "x_exact": [str(v) for v in cex.x],
            "y_onnxruntime": list(cex.y_float) if cex.y_float else None,
            "validated": ["exact"] + ([cex.float_replay] if cex.float_replay else [])}


def _run_split(args, g, prop, t0) -> int:
    """--split N: independent sub-queries over sub-boxes (nnsmt.queries.split), each solved in
    its own process on the executor's workers; --timeout bounds the whole instance."""
    from nnsmt.backends.executors import get_executor, indexed_runner
    from nnsmt.queries.split import verify_split
    left = None if args.timeout is None else max(args.timeout - (time.perf_counter() - t0), 0.1)
    executor = get_executor(args.executor, args.jobs or 1, args.ray_address)
    r = verify_split(g, prop, args.split, None, left, float_evaluator(g),
                     run_tasks=indexed_runner(executor, args.backend), jobs=executor.jobs)
    out = {"status": r["status"], "reason": r["reason"], "backend": args.backend,
           "network": args.model, "property": args.property, "encoding": "bounded",
           "executor": {"name": executor.name, "jobs": executor.jobs},
           "split": r["stats"], "time": {"total_s": round(time.perf_counter() - t0, 4)}}
    if r["counterexample"] is not None:
        out["counterexample"] = _cex_json(r["counterexample"])
    return _report(args, out, r["status"], r["reason"], r["counterexample"])


def _report(args, out, status, reason, cex) -> int:
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print(f"{status} ({reason})" if reason and status != "error" else status)
        if status == "error":
            print(reason, file=sys.stderr)
        if cex is not None:
            print(cex.vnncomp())
            print("; validated: exact replay" + (f" and {cex.float_replay}" if cex.float_replay else ""),
                  file=sys.stderr)
    return EXIT[status]


def register(sub):
    sp = add_command(sub, "verify", "decide a VNN-LIB property; print sat (with a validated "
                     "counterexample), unsat, unknown or error", run)
    sp.add_argument("model", help="network file (.onnx, .pt, .safetensors, .json, .keras, .h5)")
    add_model_args(sp)
    sp.add_argument("property", nargs="?", help="VNN-LIB 1.0 property (asserts the unsafe region); "
                    "omit it with --params")
    add_backend_args(sp)
    sp.add_argument("--encoding", default="plain", choices=["plain", "bounded"],
                    help="ReLU encoding: plain (ite, the default) or bounded (ReLUs that sound "
                         "bounds over the input region show stable become 0 or the identity; "
                         "the rest get bound and triangle lemmas)")
    sp.add_argument("--split", type=int, default=0, metavar="N",
                    help="bisect the input region into at most N independent sub-queries (bounded "
                         "encoding), refuting sub-boxes by bounds where possible: all unsat -> unsat, "
                         "a validated sat -> sat (the others are then cancelled)")
    sp.add_argument("--jobs", type=int, default=None, metavar="J",
                    help="--split: sub-queries solved at once (default 1), each in its own process")
    sp.add_argument("--executor", default="local", choices=["local", "ray"],
                    help="--split: where sub-queries run: local processes (default) or Ray")
    sp.add_argument("--ray-address", default=None, help='--split --executor ray: cluster address (e.g. "auto" '
                    "after `ray start --head`); default: start a local Ray instance")
    sp.add_argument("--json", action="store_true", help="machine-readable result")
    from .estimate import add_robustness_args
    add_robustness_args(sp)
