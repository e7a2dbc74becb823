"""nnsmt estimate: the largest ε or σ for a δ, as a certified bracket."""

from __future__ import annotations

import json
import time

from .common import add_backend_args, add_command, add_model_args, positive_float
from .options import add_robustness_args, exit_epilog, perturbed, plot, where

LO_BY = {"witness": "a witness replayed exactly (a sigmoid with certified enclosures)",
         "nominal network": "the nominal network (trivial)", "interval bounds": "interval bounds",
         "none": "nothing"}
HI_BY = {"unsat": "unsat at this value", "interval bounds": "sound interval bounds"}
NAMES = {"eps": "ε", "sigma above": "σ (class 1, above the level)", "sigma below": "σ (class 0, below the level)"}


def run(args) -> int:
    from nnsmt.engine.robustness import estimate
    from nnsmt.queries.estimate import EstimateOptions
    from .options import parse_number
    t0 = time.perf_counter()
    opts = EstimateOptions(parse_number(args.tolerance, "--tolerance"), args.budget, args.method,
                           args.sigmoid, args.pieces, args.timeout)
    gs, point, domain = perturbed(args)
    brackets = estimate(gs, args.objective, backend=args.backend, point=point, domain=domain, options=opts)
    if args.json:
        print(json.dumps({"network": args.model, "objective": args.objective, "where": where(args, point),
                          "perturbation": gs.meta.get("perturbation"), "backend": args.backend,
                          "tolerance": float(opts.tolerance), "brackets": [b.to_json() for b in brackets],
                          "time_s": round(time.perf_counter() - t0, 4)}, indent=2, ensure_ascii=False))
    else:
        print(f"{args.objective} of {args.model} {where(args, point)}, {gs.meta.get('perturbation')}, "
              f"backend {args.backend}")
        for b in brackets:
            print(format_bracket(b))
    plot(args, gs, domain, sigma=[b.hi.value for b in brackets] if args.objective == "sigma" else None,
         eps_map=args.objective == "eps")
    return 0  # a certified bracket, whatever its width (the output says why it stopped)


def format_bracket(b) -> str:
    from .options import describe_witness
    name = NAMES[b.quantity]
    if b.none and b.lo.value == b.hi.value == 0:
        return f"  {name}: no label of this class can flip (unsat on {b.hi.backend}, {b.hi.time_s:.2f} s)"
    lines = [f"  {name} ∈ [{float(b.lo.value):.10g}, {float(b.hi.value):.10g}]  width {float(b.width):.3g}"
             f"  ({b.method}; {len(b.probes)} solver calls; stopped: {b.stopped})"]
    for end, by in (("lo", LO_BY), ("hi", HI_BY)):
        e = getattr(b, end)
        lines.append(f"    {end} {float(e.value):.10g}: {by.get(e.how, e.how)}"
                     + (f" — {e.backend}, {e.time_s:.2f} s" if e.backend else ""))
        if end == "lo" and e.witness is not None and e.how == "witness":
            lines += describe_witness(e.witness, "      ")
            if e.replayed:
                lines.append(f"      (also replayed through {e.replayed})")
    if b.delta_sat_at is not None:
        lines.append(f"    δ-sat at {float(b.delta_sat_at):.10g} without a witness that replays exactly: "
                     "not a lower bound")
    if b.note:
        lines.append(f"    note: {b.note}")
    return "\n".join(lines)


def register(sub):
    sp = add_command(sub, "estimate", "the largest ε (output change) or σ (label-flip distance) for "
                     "a parameter perturbation δ, as a certified bracket [lo, hi]", run)
    sp.epilog = exit_epilog("estimate", unsat="a certified bracket (its width and why the search stopped "
                            "are printed), however wide")
    sp.add_argument("model", help="network file (.onnx, ...)")
    add_model_args(sp)
    add_robustness_args(sp, with_property=False)
    sp.add_argument("--objective", required=True, choices=["eps", "sigma"],
                    help="eps: max |f_p(x) - f_p0(x)| (at --point, or over --domain); sigma: the "
                         "largest distance from the decision level at which a label flips, per class")
    sp.add_argument("--tolerance", default="1e-6", help="target bracket width (default 1e-6)")
    sp.add_argument("--budget", type=positive_float, default=60.0, help="seconds for the whole estimate "
                    "(default 60); the best bracket reached is reported")
    sp.add_argument("--method", default="auto", choices=["auto", "bisect", "native"],
                    help="auto: native optimisation where the backend has it for this (linear) "
                         "problem, then bisection; bisect: bisection only")
    add_backend_args(sp)
    sp.add_argument("--json", action="store_true", help="machine-readable result")
