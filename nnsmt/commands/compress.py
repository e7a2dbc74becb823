"""nnsmt compress: remove stable ReLUs exactly and prove the smaller network equivalent."""

from __future__ import annotations

import json
import sys

from .common import EXIT, add_backend_args, add_command
from .options import add_domain_args, exit_epilog, on_domain, parse_number, stability_options, summary_line


def run(args) -> int:
    from nnsmt.engine.compress import spot_check, write_compressed
    from nnsmt.engine.reports import compression_record
    from nnsmt.queries.compress import CompressOptions, compress
    opts = CompressOptions(stability_options(args, args.method), not args.no_prove,
                           parse_number(args.tolerance, "--tolerance"))
    solve, g, dom = on_domain(args)
    r = compress(g, dom, solve, opts)
    out = args.output
    exact_onnx, ir_path = write_compressed(r.graph, out, args.ir)
    spot = spot_check(args.model, out, dom) if g.meta.get("format") == "onnx" else None
    info = compression_record(r, network=args.model, domain=args.domain, output=out, ir=ir_path,
                              exact_onnx=exact_onnx, spot=spot)
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        b, a = r.before, r.after
        print(f"{args.model} over {args.domain}")
        print("  " + summary_line(r.stability))
        for k in ("relus", "parameters", "connections", "nonzero_connections"):
            print(f"  {k:20} {b[k]:8} -> {a[k]:8}  ({100 * (1 - a[k] / max(b[k], 1)):.1f}% removed)")
        print(f"  wrote {out} ({'exact' if exact_onnx else 'weights rounded to float32: not exactly equivalent'}) "
              f"and {ir_path} (exact IR)")
        eq = {"unsat": f"proved: |f(x) - g(x)| <= {r.tolerance} on the domain (exact IR)",
              "sat": "NOT EQUIVALENT (a bug: please report)", "not checked": "not checked (--no-prove)"}
        print(f"  equivalence: {r.equivalence}{' (' + r.equivalence_reason + ')' if r.equivalence_reason else ''}"
              f" - {eq.get(r.equivalence, 'undecided')}")
        if spot is not None:
            print(f"  onnxruntime spot check (200 points): max |difference| {spot:.3g}")
    if r.equivalence == "sat":
        print("nnsmt: error: the compressed network differs from the original", file=sys.stderr)
    return 0 if r.equivalence == "not checked" else EXIT[r.equivalence]


def register(sub):
    sp = add_command(sub, "compress", "remove stably active/inactive ReLUs over an input domain, "
                     "write the smaller network (ONNX + exact JSON IR) and prove it equivalent", run)
    sp.epilog = exit_epilog("compress", unsat="written, and proved equivalent on the domain (or --no-prove)",
                            sat="written, but the equivalence query found an input where they differ "
                            "(replayed exactly: a bug in nnsmt, please report)",
                            unknown="written; the equivalence query was undecided (timeout)")
    add_domain_args(sp)
    sp.add_argument("-o", "--output", required=True, help="compressed ONNX file to write")
    sp.add_argument("--ir", help="exact JSON IR to write (default: the output with .json)")
    sp.add_argument("--tolerance", default="0", help="equivalence tolerance (default 0: exact)")
    sp.add_argument("--no-prove", action="store_true", help="skip the equivalence query")
    add_backend_args(sp, default="cvc5")  # Z3 stalls on the harvesting disjunctions (README)
    sp.add_argument("--json", action="store_true", help="machine-readable result")
