"""nnsmt estimate: the largest ε or σ for a δ, as a certified bracket."""

from __future__ import annotations

import time

from .common import add_backend_args, add_command, add_model_args, positive_float, show
from .options import add_robustness_args, from_args, parse_number, perturbed, plot


def run(args) -> int:
    from nnsmt.engine.reports import estimate_lines, estimate_record, where_text
    from nnsmt.engine.robustness import estimate
    from nnsmt.queries.estimate import EstimateOptions
    t0 = time.perf_counter()
    opts = from_args(EstimateOptions, args, tolerance=parse_number(args.tolerance, "--tolerance", positive=True),
                     query_timeout=args.timeout)
    gs, point, domain = perturbed(args)
    brackets = estimate(gs, args.objective, backend=args.backend, point=point, domain=domain, options=opts)
    out = estimate_record(brackets, network=args.model, objective=args.objective,
                          where=where_text(point, args.domain), perturbation=gs.meta.get("perturbation"),
                          backend=args.backend, tolerance=opts.tolerance, time_s=time.perf_counter() - t0)
    show(args, out, estimate_lines(out, brackets), ascii=False)
    plot(args, gs, domain, sigma=[b.hi.value for b in brackets] if args.objective == "sigma" else None,
         eps_map=args.objective == "eps")
    return 0  # a certified bracket, whatever its width (the output says why it stopped)


def register(sub):
    sp = add_command(sub, "estimate", "the largest ε (output change) or σ (label-flip distance) for a parameter "
                     "perturbation δ, as a certified bracket [lo, hi]", run, json="result",
                     unsat="a certified bracket (its width and why the search stopped are printed), however wide")
    add_model_args(sp)
    add_robustness_args(sp, with_property=False)
    sp.add_argument("--objective", required=True, choices=["eps", "sigma"], help="eps: max |f_p(x) - f_p0(x)| (at "
                    "--point, or over --domain); sigma: the largest distance from the decision level at which a "
                    "label flips, per class")
    sp.add_argument("--tolerance", default="1e-6", help="target bracket width (default 1e-6)")
    sp.add_argument("--budget", type=positive_float, default=60.0, help="seconds for the whole estimate "
                    "(default 60); the best bracket reached is reported")
    sp.add_argument("--method", default="auto", choices=["auto", "bisect", "native"], help="auto: native "
                    "optimisation where the backend has it for this (linear) problem, then bisection; bisect: "
                    "bisection only")
    add_backend_args(sp)
