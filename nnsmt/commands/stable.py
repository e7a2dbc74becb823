"""nnsmt stable: classify every ReLU as stably active, stably inactive or unstable on a domain."""

from __future__ import annotations

import json

from .common import add_backend_args, add_command, add_model_args, load_model, model_options, solve


def add_domain_args(sp):
    sp.add_argument("--domain", required=True, metavar="BOX",
                    help='input domain: box.json ({"lo": [...], "hi": [...]}, see README) or a '
                         "VNN-LIB property (its input boxes)")
    sp.add_argument("--method", default="single", choices=["single", "per-neuron", "both"],
                    help="exact queries for what bounds leave open: single (harvest models of one "
                         "query, default), per-neuron (two queries a neuron), both (compare)")
    sp.add_argument("--samples", type=int, default=0,
                    help="random inputs replayed exactly first, as cheap witnesses (default 0)")


def add_query_args(sp):
    sp.add_argument("--split", type=int, default=0, metavar="N",
                    help="before any query, try to refute each open question (\"can a > 0?\") by "
                         "bounds on at most N sub-boxes of the domain (default 0: off)")
    sp.add_argument("--no-reuse", dest="reuse", action="store_false",
                    help="per-neuron: ask both questions of every open neuron, even one an earlier "
                         "model already answered")
    sp.add_argument("--no-guided", dest="guided", action="store_false",
                    help="skip the pre-pass that replays the box corners the linear bounds point to "
                         "(two per open neuron) before any query")
    sp.add_argument("--lemmas", default="none", choices=["none", "bounds", "triangle"],
                    help="what the queries assert about unstable ReLUs: nothing (default: fastest on "
                         "the digits networks), their bounds, or also the triangle relaxation")


def summary_label(st) -> str:
    return st.method + ("" if st.reuse else " (no reuse)")


def summary_line(st) -> str:
    c = st.counts()
    return (f"{summary_label(st):21} active {c['active']:4}  inactive {c['inactive']:4}  "
            f"unstable {c['unstable']:4}  unknown {c['unknown']:3}  | by bounds {st.by_bounds:4}  "
            f"by pre-pass {st.by_samples:4}  "
            + (f"refuted by splitting {st.by_split}  " if st.by_split else "")
            + f"queries {st.queries:4} (sat {st.sat}, unsat {st.unsat}, unknown {st.unknown})  "
            f"{st.time_s:8.2f} s")


def run(args) -> int:
    from nnsmt.backends import get_backend
    from nnsmt.domain import load_domain
    from nnsmt.errors import InputError
    from nnsmt.queries.stability import check_witnesses, classify, layer_counts
    get_backend(args.backend)
    if args.split < 0:
        raise InputError(f"--split needs a number of sub-boxes >= 0, got {args.split}")
    g = load_model(args.model, **model_options(args))
    dom = load_domain(args.domain, g.inputs[0].dim if len(g.inputs) == 1 else None)
    methods = ["single", "per-neuron"] if args.method == "both" else [args.method]
    results = []
    for m in methods:
        st = classify(g, dom, lambda s, t: solve(args.backend, s, t), method=m, timeout=args.timeout,
                      samples=args.samples, guided=args.guided, lemmas=args.lemmas, reuse=args.reuse,
                      split=args.split)
        check_witnesses(g, st)
        results.append(st)
    same = all(r.same_as(results[0]) for r in results)
    if args.json:
        print(json.dumps({"network": args.model, "domain": args.domain, "backend": args.backend,
                          "identical": same, "results": [
                              {"method": r.method, "reuse": r.reuse, "counts": r.counts(), "by_bounds": r.by_bounds,
                               "by_prepass": r.by_samples, "prepass_points": r.points,
                               "refuted_by_split": r.by_split,
                               "queries": r.queries, "sat": r.sat, "unsat": r.unsat, "unknown": r.unknown,
                               "time_s": round(r.time_s, 4), "solve_s": round(r.solve_s, 4),
                               "layers": {k: v for k, v in layer_counts(r)}} for r in results]}, indent=2))
    else:
        print(f"{args.model} over {args.domain} ({dom.dim} inputs, {len(dom.boxes)} box(es)), backend {args.backend}")
        for name, c in layer_counts(results[0]):
            print(f"  {name:12} " + "  ".join(f"{k} {v}" for k, v in c.items()))
        for r in results:
            print("  " + summary_line(r))
        if len(results) > 1:
            print(f"  classifications identical: {'yes' if same else 'NO'}"
                  + (f"; speed ratio per-neuron / single = {results[1].time_s / max(results[0].time_s, 1e-9):.2f}x"
                     if same else ""))
    unknown = any(r.counts()["unknown"] for r in results)
    return 3 if not same else (20 if unknown else 0)


def register(sub):
    sp = add_command(sub, "stable", "classify every ReLU over an input domain as stably active, "
                     "stably inactive or unstable (bounds first, then exact queries)", run)
    sp.add_argument("model", help="network file")
    add_model_args(sp)
    add_domain_args(sp)
    add_query_args(sp)
    add_backend_args(sp, default="cvc5")  # Z3 stalls on the digits queries (README)
    sp.add_argument("--json", action="store_true", help="machine-readable result")
