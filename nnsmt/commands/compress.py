"""nnsmt compress: remove stable ReLUs exactly and prove the smaller network equivalent."""

from __future__ import annotations

import sys

from .common import EXIT, add_backend_args, add_command, show
from .options import STABILITY_TIMEOUT, add_domain_args, from_args, on_domain, parse_number, stability_options


def run(args) -> int:
    from nnsmt.engine.compress import spot_check, write_compressed
    from nnsmt.engine.driver import claims_solver
    from nnsmt.engine.reports import compression_lines, compression_record
    from nnsmt.queries.compress import CompressOptions, compress
    opts = from_args(CompressOptions, args, stability=stability_options(args, args.method),
                     tol=parse_number(args.tolerance, "--tolerance"))  # bad flags before any file is read
    solve, g, dom = on_domain(args)
    st = None
    _, exact = claims_solver(solve)  # a MILP: cvc5 confirms its claims
    if exact is not None:
        from nnsmt.queries.stability import classify
        st = classify(g, dom, solve, opts.stability, confirm=exact)
    r = compress(g, dom, solve, opts, stability=st)
    exact_onnx, ir_path = write_compressed(r.graph, args.output, args.ir)
    spot = spot_check(args.model, args.output, dom) if g.meta.get("format") == "onnx" else None
    info = compression_record(r, network=args.model, domain=args.domain, output=args.output, ir=ir_path,
                              exact_onnx=exact_onnx, spot=spot, notes=dom.notes)
    show(args, info, compression_lines(r, info))
    if r.equivalence == "sat":
        print("nnsmt: error: the compressed network differs from the original", file=sys.stderr)
    return 0 if r.equivalence == "not checked" else EXIT[r.equivalence]


def register(sub):
    sp = add_command(sub, "compress", "remove stably active/inactive ReLUs over an input domain, write the smaller "
                     "network (ONNX + exact JSON IR) and prove it equivalent", run, json="result",
                     unsat="written, and proved equivalent on the domain (or --no-prove)",
                     sat="written, but the equivalence query found an input where they differ (replayed exactly: "
                     "a bug in nnsmt, please report)", unknown="written; the equivalence query was undecided (timeout)")
    add_domain_args(sp)
    sp.add_argument("-o", "--output", required=True, help="compressed ONNX file to write")
    sp.add_argument("--ir", help="exact JSON IR to write (default: the output with .json)")
    sp.add_argument("--tolerance", default="0", help="equivalence tolerance (default 0: exact)")
    sp.add_argument("--no-prove", dest="prove", action="store_false", help="skip the equivalence query")
    add_backend_args(sp, default="cvc5", timeout=STABILITY_TIMEOUT)  # Z3 stalls on the harvesting disjunctions (README)
