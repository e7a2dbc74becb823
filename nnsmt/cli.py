"""The `nnsmt` command line."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from .errors import NnsmtError

EXIT_CODES = """exit codes:
  0   success; for verify: unsat (no input satisfies the property: it holds)
  10  verify: sat (validated counterexample found: the property is violated)
  20  verify: unknown (timeout or the solver gave up; the reason is printed)
  2   bad input or usage: unreadable/unsupported model or property, size mismatch,
      missing backend
  3   error: the solver failed, or its model failed the replay (never reported as sat)
"""

EXIT = {"unsat": 0, "sat": 10, "unknown": 20, "delta-sat": 20, "error": 3}


def _load(path):
    from nnsmt.frontends import load_network
    return load_network(path)


def _float_evaluator(graph):
    """onnxruntime replay for ONNX sources (None when the source is not ONNX)."""
    if graph.meta.get("format") != "onnx":
        return None
    from nnsmt.frontends import ort_evaluator
    return ort_evaluator(graph.meta["source"])


def cmd_inspect(args) -> int:
    from .pretty import format_graph, summary
    g = _load(args.model)
    if args.json:
        print(json.dumps({"summary": summary(g), "meta": dict(g.meta)}, indent=2))
        return 0
    print(format_graph(g))
    print()
    for k, v in summary(g).items():
        print(f"{k}: {v}")
    return 0


def _verify_script(args):
    from .queries.verify import verify_script
    from .vnnlib import load_vnnlib
    g = _load(args.model)
    prop = load_vnnlib(args.property)
    return g, prop, verify_script(g, prop, encoding=args.encoding)


def cmd_compile(args) -> int:
    if args.mode != "verify":
        raise NnsmtError(f"--mode {args.mode} is not available yet")
    if args.property is None:
        from .errors import InputError
        raise InputError("--mode verify needs --property P.vnnlib")
    from nnsmt.backends.smtlib import to_smtlib
    t0 = time.perf_counter()
    _, _, script = _verify_script(args)
    text = to_smtlib(script)
    if args.output:
        Path(args.output).write_text(text)
        print(f"wrote {args.output}: {len(script.decls)} declarations, {len(script.defs)} "
              f"definitions, {len(script.asserts)} assertions, logic {script.logic} "
              f"({time.perf_counter() - t0:.2f} s)", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def cmd_verify(args) -> int:
    from nnsmt.backends import get_backend
    from nnsmt.backends.isolate import solve_isolated
    from .validate import validate_counterexample
    from .errors import ValidationError
    t0 = time.perf_counter()
    backend = get_backend(args.backend)  # fails early, naming what is missing
    g, prop, script = _verify_script(args)
    t_compile = time.perf_counter() - t0
    if args.timeout is None:
        res = backend.solve(script)
    else:  # a hard deadline: the solver runs in a child process that is killed on expiry
        res = solve_isolated(args.backend, script, args.timeout)
    status, reason, cex = res.status, res.reason, None
    if status == "sat":
        try:
            cex = validate_counterexample(g, prop, res.model, _float_evaluator(g))
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
        print(status if not reason else f"{status} ({reason})" if status != "error" else "error")
        if status == "error":
            print(reason, file=sys.stderr)
        if cex is not None:
            print(cex.vnncomp())
            print(f"; validated: exact replay" + (f" and {cex.float_replay}" if cex.float_replay else ""),
                  file=sys.stderr)
    return EXIT[status]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="nnsmt", description="Compile neural networks into exact SMT queries.",
                                epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    from . import __version__
    p.add_argument("--version", action="version", version=f"nnsmt {__version__}")
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    def add(name, help, func):
        sp = sub.add_parser(name, help=help, description=help, epilog=EXIT_CODES,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
        sp.set_defaults(func=func)
        return sp

    sp = add("inspect", "print the IR of a network, one node a line, and a summary", cmd_inspect)
    sp.add_argument("model", help="network file (.onnx)")
    sp.add_argument("--json", action="store_true", help="machine-readable summary")

    sp = add("compile", "compile a query to SMT-LIB2 text", cmd_compile)
    sp.add_argument("model", help="network file (.onnx)")
    sp.add_argument("--property", help="VNN-LIB property (for --mode verify)")
    sp.add_argument("--mode", default="verify", choices=["verify"], help="query to compile (default verify)")
    sp.add_argument("--emit", default="smt2", choices=["smt2"], help="output format (default smt2)")
    sp.add_argument("--encoding", default="plain", choices=["plain"], help="encoding (default plain)")
    sp.add_argument("-o", "--output", help="write here instead of standard output")

    sp = add("verify", "decide a VNN-LIB property; print sat (with a validated counterexample), "
             "unsat, unknown or error", cmd_verify)
    sp.add_argument("model", help="network file (.onnx)")
    sp.add_argument("property", help="VNN-LIB 1.0 property (asserts the unsafe region)")
    sp.add_argument("--backend", default="z3", help="solver backend: z3 (default) or cvc5")
    sp.add_argument("--timeout", type=float, default=None, help="seconds of solving; on expiry the answer is unknown (timeout). Enforced by "
                    "killing the solver process if it overruns by more than 0.5 s")
    sp.add_argument("--encoding", default="plain", choices=["plain"], help="encoding (default plain)")
    sp.add_argument("--json", action="store_true", help="machine-readable result")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except NnsmtError as e:
        print(f"nnsmt: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("nnsmt: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
