"""Estimation speed: time to a certified bracket of width <= 1e-6 (or the best in 60 s).

    python bench/estimate.py [--budget 60] [--tolerance 1e-6] [--backends z3,cvc5,dreal]

Cases: the cats logistic regression (examples/cats) and the athletes ReLU MLP
(examples/athletes/relu.onnx), δ = 0.005 absolute. For every installed backend, bisection
(the baseline, measured in the same run) against native optimisation + certification
(`--method auto`: Z3's Optimize where the script is linear, dReal's minimiser), one run each.
The last two cases are genuinely linear (a fixed input with only the first layer perturbed; only
biases perturbed), where native optimisation applies on Z3. Prints a table and the ratio
bisection time / native time per case.
"""

from __future__ import annotations

import argparse
import sys
import time
from fractions import Fraction
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nnsmt.backends import available  # noqa: E402
from nnsmt.domain import load_domain  # noqa: E402
from nnsmt.frontends import load_onnx  # noqa: E402
from nnsmt.params import Perturbation, make_symbolic  # noqa: E402
from nnsmt.engine.robustness import estimate  # noqa: E402

EX = ROOT / "examples"
DELTA = Fraction(5, 1000)


def cases():
    cats = load_onnx(EX / "cats" / "cats.onnx")
    cats_box = load_domain(EX / "cats" / "box.json", 2)
    ath = load_onnx(EX / "athletes" / "relu.onnx")
    ath_box = load_domain(EX / "athletes" / "box.json", 2)
    p = Perturbation(DELTA)
    return [
        ("cats σ, global", make_symbolic(cats, p), "sigma", {"domain": cats_box}),
        ("cats ε, global", make_symbolic(cats, p), "eps", {"domain": cats_box}),
        ("athletes-ReLU σ, global", make_symbolic(ath, p), "sigma", {"domain": ath_box}),
        ("athletes-ReLU ε at (1.80, 75), layer 1 [linear]", make_symbolic(ath, Perturbation(DELTA, layers=("1",))),
         "eps", {"point": (Fraction(180, 100), Fraction(75))}),
        ("cats σ, biases only [linear]", make_symbolic(cats, Perturbation(DELTA, which="biases")), "sigma",
         {"domain": cats_box}),
    ]


def run(gs, objective, where, backend, method, tol, budget):
    t0 = time.perf_counter()
    bs = estimate(gs, objective, backend=backend, tolerance=tol, budget=budget, method=method, **where)
    dt = time.perf_counter() - t0
    width = max(b.width for b in bs)
    return dt, width, bs


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=float, default=60.0)
    ap.add_argument("--tolerance", default="1e-6")
    ap.add_argument("--backends", default="z3,cvc5,dreal")
    args = ap.parse_args(argv)
    tol = Fraction(args.tolerance)
    avail = available()
    backends = []
    for b in args.backends.split(","):
        if avail.get(b, f"unknown backend {b}"):
            print(f"# skipping {b}: {avail.get(b, 'unknown backend')}")
        else:
            backends.append(b)
    print(f"# δ = {float(DELTA)}, target width {float(tol):g}, budget {args.budget:g} s per estimate, one run each")
    print(f"{'case':<50} {'backend':<7} {'method':<9} {'time s':>8} {'width':>10}  brackets")
    for name, gs, obj, where in cases():
        for be in backends:
            res = {}
            for method in ("bisect", "auto"):
                if method == "auto" and be == "cvc5":
                    continue  # no native optimisation: auto would be bisection again
                dt, width, bs = run(gs, obj, where, be, method, tol, args.budget)
                res[method] = (dt, width)
                used = "native" if any(b.method.startswith("native") for b in bs) else "bisect*" \
                    if method == "auto" else "bisect"
                br = "; ".join(f"[{float(b.lo.value):.9g}, {float(b.hi.value):.9g}]" for b in bs)
                print(f"{name:<50} {be:<7} {used:<9} {dt:8.2f} {float(width):10.2e}  {br}", flush=True)
            if "auto" in res:
                (tb, wb), (tn, wn) = res["bisect"], res["auto"]
                both = wb <= tol and wn <= tol
                print(f"{'':<50} {be:<7} ratio bisection/native time = {tb / tn:.2f}x"
                      + ("" if both else f" (widths {float(wb):.2e} vs {float(wn):.2e}: not both reached the target)"))
    print("# bisect* = --method auto fell back to bisection (the script is nonlinear for Z3's Optimize)")


if __name__ == "__main__":
    main()
