"""nnsmt diff: one compiled query on several backends, each in its own process; every sat model
is replayed; answers that cannot both be right are flagged."""

from __future__ import annotations

import json
import sys

from .common import EXIT, add_command, float_evaluator, load_model

EXIT_DISAGREE = 4
DIFF_EXIT = """exit codes (diff):
  4   disagreement: a validated sat and an unsat for the same query
  3   no disagreement, but some backend failed (error, or a sat whose model failed the replay)
  0 / 10 / 20   all consistent: unsat / validated sat / unknown (as for verify)
  2   bad input, unknown backend
"""


def _verify_case(args):
    """(script, validate(model) -> str | None error) for the verify query."""
    from nnsmt.errors import ValidationError
    from nnsmt.queries.verify import verify_script
    from nnsmt.validate import validate_counterexample
    from nnsmt.vnnlib import load_vnnlib
    g = load_model(args.model)
    prop = load_vnnlib(args.property)
    fe = float_evaluator(g)

    def validate(model):
        try:
            cex = validate_counterexample(g, prop, model, fe)
            return None, "exact" + (f"+{cex.float_replay}" if cex.float_replay else "")
        except ValidationError as e:
            return str(e).splitlines()[0], ""
    return verify_script(g, prop, encoding=args.encoding), validate


def _train_case(args):
    """(script, validate) for the training query: a model must classify every point exactly."""
    from nnsmt.data import load_csv
    from nnsmt.errors import InputError
    from nnsmt.queries.train import make_problem, misclassified
    from nnsmt.queries.train_encode import encode
    if args.data is None:
        raise InputError("--mode train needs --data DATA.csv")
    g = load_model(args.model)
    k = g.dims()[g.outputs[0]]
    data = load_csv(args.data, n_features=g.inputs[0].dim, n_classes=2 if k == 1 else k)
    problem = make_problem(g, data, free=args.free, weight_bound=args.weight_bound)
    enc = encode(problem, range(data.n), args.encoding if args.encoding != "plain" else None)

    def validate(model):
        wrong = misclassified(problem, enc.decode(model), exact=True)
        if wrong:
            return f"misclassifies {len(wrong)} point(s), e.g. {data.where(wrong[0][0])}", ""
        return None, f"exact, all {data.n} points"
    return enc.script, validate


CASES = {"verify": _verify_case, "train": _train_case}


def compare(rows: list[dict]) -> tuple[bool, str]:
    """(disagree, consensus) over rows with status and validated flags."""
    valid_sat = [r for r in rows if r["status"] == "sat" and r["validated"]]
    unsat = [r for r in rows if r["status"] == "unsat"]
    if valid_sat and unsat:
        return True, "disagreement"
    if valid_sat:
        return False, "sat"
    if unsat:
        return False, "unsat"
    return False, "unknown"


def run(args) -> int:
    from nnsmt.backends import get_backend
    from nnsmt.backends.isolate import solve_many
    names = [b.strip() for b in args.backends.split(",") if b.strip()]
    unavailable = {}
    for b in names:
        try:
            get_backend(b)
        except Exception as e:  # a missing backend is a row, not the end of the comparison
            unavailable[b] = str(e)
    if args.mode == "verify" and args.property is None:
        from nnsmt.errors import InputError
        raise InputError("diff --mode verify needs a VNN-LIB property")
    script, validate = CASES[args.mode](args)
    runnable = [b for b in names if b not in unavailable]
    results = dict(zip(runnable, solve_many(runnable, script, args.timeout, args.memory)))
    rows = []
    for b in names:
        if b in unavailable:
            rows.append({"backend": b, "status": "skipped", "time_s": None, "validated": False,
                         "notes": unavailable[b]})
            continue
        r = results[b]
        row = {"backend": b, "status": r.status, "validated": False, "notes": r.reason,
               "time_s": round(sum(v for k, v in r.stats.items() if k.endswith("_s")), 3)}
        if r.status == "sat":
            err, how = validate(r.model)
            row["validated"] = err is None
            row["notes"] = f"validated ({how})" if err is None else f"MODEL FAILS REPLAY: {err}"
        rows.append(row)
    disagree, consensus = compare(rows)
    failed = any(r["status"] == "error" or (r["status"] == "sat" and not r["validated"]) for r in rows)
    if args.json:
        print(json.dumps({"query": args.mode, "network": args.model, "property": args.property,
                          "consensus": consensus, "disagreement": disagree, "rows": rows}, indent=2))
    else:
        w = max(len(r["backend"]) for r in rows)
        print(f"{'backend':{w}}  {'status':9} {'time':>8}  {'validated':9}  notes")
        for r in rows:
            t = "-" if r["time_s"] is None else f"{r['time_s']:.2f}s"
            v = "yes" if r["validated"] else ("NO" if r["status"] == "sat" else "-")
            print(f"{r['backend']:{w}}  {r['status']:9} {t:>8}  {v:9}  {r['notes']}")
        print("DISAGREEMENT: a validated sat and an unsat for the same query" if disagree
              else f"consistent: {consensus}")
    if disagree:
        return EXIT_DISAGREE
    if failed:
        return 3
    return EXIT[consensus]


def register(sub):
    sp = add_command(sub, "diff", "run one verification or training query on several backends (each in its own "
                     "process, hard timeout and memory limit), replay every sat model, flag disagreements", run)
    sp.epilog = DIFF_EXIT
    sp.add_argument("model", help="network file (.onnx)")
    sp.add_argument("property", nargs="?", help="VNN-LIB 1.0 property (--mode verify)")
    sp.add_argument("--mode", default="verify", choices=sorted(CASES), help="query (default verify)")
    sp.add_argument("--data", help="training data CSV (--mode train)")
    sp.add_argument("--free", help="layers made symbolic (--mode train; default all)")
    sp.add_argument("--weight-bound", type=float, default=None, help="box free weights in [-B, B] (--mode train)")
    sp.add_argument("--backends", default="z3,cvc5",
                    help="comma-separated: z3, cvc5, pysmt:SOLVER, smt2:COMMAND (default z3,cvc5)")
    sp.add_argument("--timeout", type=float, default=60.0, help="seconds per backend (default 60; enforced by killing)")
    sp.add_argument("--memory", type=int, default=4096, help="memory limit per backend in MB (default 4096)")
    sp.add_argument("--encoding", default="plain", help="encoding (verify: plain; train: its default, or seed, margin, homog)")
    sp.add_argument("--json", action="store_true", help="machine-readable table")
