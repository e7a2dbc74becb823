"""nnsmt verify: decide a VNN-LIB property, validating any counterexample before sat."""

from __future__ import annotations

import json
import sys
import time

from .common import EXIT, add_backend_args, add_command, float_evaluator, load_model, solve


def run(args) -> int:
    from nnsmt.backends import get_backend
    from nnsmt.errors import ValidationError
    from nnsmt.queries.verify import verify_script
    from nnsmt.validate import validate_counterexample
    from nnsmt.vnnlib import load_vnnlib
    t0 = time.perf_counter()
    get_backend(args.backend)  # fail early, naming what is missing
    g = load_model(args.model)
    prop = load_vnnlib(args.property)
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
        out["counterexample"] = {"x": [float(v) for v in cex.x], "y": [float(v) for v in cex.y],
                                 "x_exact": [str(v) for v in cex.x],
                                 "y_onnxruntime": list(cex.y_float) if cex.y_float else None,
                                 "validated": ["exact"] + ([cex.float_replay] if cex.float_replay else [])}
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
    sp.add_argument("model", help="network file (.onnx)")
    sp.add_argument("property", help="VNN-LIB 1.0 property (asserts the unsafe region)")
    add_backend_args(sp)
    sp.add_argument("--encoding", default="plain", help="ReLU encoding: plain (default)")
    sp.add_argument("--json", action="store_true", help="machine-readable result")
