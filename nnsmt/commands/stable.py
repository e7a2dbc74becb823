"""nnsmt stable: classify every ReLU as stably active, stably inactive or unstable on a domain."""

from __future__ import annotations

import argparse

from .common import EXIT, add_backend_args, add_command, show
from .options import STABILITY_TIMEOUT, add_domain_args, on_domain, stability_options

# cvc5 is the default: with the pre-pass (corners, attack, bab) it classified every digits network
# at least as fast as HiGHS (2x400_l1 3.6 s vs 16-17 s, 2x800_l1 12.6 vs 19-20 s; bench/stability.py)
DEFAULT_BACKEND = "cvc5"


def add_query_args(sp):
    sp.add_argument("--split", type=int, default=0, metavar="N", help="before any query, try to refute each open "
                    "question (\"can a > 0?\") by bounds on at most N sub-boxes of the domain (default 0: off)")
    sp.add_argument("--no-reuse", dest="reuse", action="store_false", help="per-neuron: ask both questions of every "
                    "open neuron, even one an earlier model already answered")
    sp.add_argument("--no-guided", dest="guided", action="store_false", help="skip the pre-pass that replays the "
                    "box corners the linear bounds point to (two per open neuron) before any query")
    sp.add_argument("--attack", type=int, default=64, metavar="N", help="for each neuron state the pre-pass "
                    "left unseen, projected gradient descent on the neuron's cone from N random starts, its points "
                    "replayed exactly (default 64; 0: off)")
    sp.add_argument("--bab-seconds", dest="bab_s", type=float, default=5.0, metavar="S", help="seconds of branch "
                    "and bound on ReLU phases for each question no query settled, before its neuron is called "
                    "unknown (default 5; 0: none)")
    sp.add_argument("--bab-after", dest="bab_after", type=int, default=argparse.SUPPRESS, metavar="N",
                    help="once N queries have run out of time and none has answered, each question left "
                    "gets a query's time (--timeout) of branch and bound instead of its query (default 3: on "
                    "MNIST-size cones the solver answers none; 0: never)")
    sp.add_argument("--confirm", default=None, metavar="BACKEND", help="exact backend that confirms a floating-"
                    "point backend's claims (a MILP's unconfirmed \"no neuron can switch\") on each neuron's cone "
                    "(default cvc5 when --backend is a MILP; claims nothing confirms stay unknown)")
    sp.add_argument("--confirm-split", type=int, default=16, metavar="N", help="first try to confirm each such "
                    "claim by bounds on at most N sub-boxes of the domain (default 16; 0: off)")
    sp.add_argument("--harvest-seconds", dest="harvest_s", type=float, default=1.0, metavar="S", help="MILP: "
                    "seconds one harvesting question may search for solutions (default 1; then asked again "
                    "without what they showed, or one question a state)")
    sp.add_argument("--lemmas", default="none", choices=["none", "bounds", "triangle"], help="what the queries "
                    "assert about unstable ReLUs: nothing (default: fastest on the digits networks), their bounds, "
                    "or also the triangle relaxation")


def run(args) -> int:
    from contextlib import nullcontext

    from nnsmt.engine.driver import claims_solver
    from nnsmt.engine.progress import phase_status
    from nnsmt.engine.reports import classify_all, stability_lines, stability_record
    methods = ["single", "per-neuron"] if args.method == "both" else [args.method]
    opts = [stability_options(args, m) for m in methods]  # bad flags before any file is read
    solve, g, dom = on_domain(args)
    name, confirm = claims_solver(solve, args.confirm)  # a MILP: its infeasibilities are claims
    status, progress = phase_status(args.json)
    with status or nullcontext():
        report = classify_all(g, dom, solve, opts, confirm, progress)
    given = {"network": args.model, "domain": args.domain, "backend": args.backend,
             "confirm": name, "timeout": args.timeout}
    show(args, stability_record(report, notes=dom.notes, **given), stability_lines(report, dom, **given))
    return EXIT[report.verdict]


def register(sub):
    sp = add_command(sub, "stable", "classify every ReLU over an input domain as stably active, stably inactive "
                     "or unstable (bounds first, then exact queries)", run, json="result",
                     unsat="every neuron decided: each stable one proved (bounds or unsat), each unstable one with "
                     "two replayed witnesses", unknown="some neurons unknown (a query timed out, or a MILP's "
                     "claim could not be confirmed exactly)",
                     error="the two methods (--method both) disagree, or a solver failed")
    add_domain_args(sp)
    add_query_args(sp)
    add_backend_args(sp, default=DEFAULT_BACKEND, timeout=STABILITY_TIMEOUT)  # Z3 stalls on the digits queries (README)
