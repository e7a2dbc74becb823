"""Stability classification: single-query harvesting vs per-neuron queries, same networks.

    python bench/stability.py [--nets digits_l1,digits_plain] [--backend cvc5] [--timeout 60]
                              [--lemmas none] [--samples 0] [--split 0] [--configs prepass,queries]
                              [--solver-defaults]

On the digits MLPs (examples/digits, 64-16-16-10, domain [0, 16]^64) both methods classify
every ReLU, in two configurations:
- `prepass`: what `nnsmt stable` does by default: bounds, then the pre-pass (the box corners
  the linear bounds point to, plus `--samples` random inputs, and with `--split N` open
  questions refuted by bounds on sub-boxes), then queries for what is left;
- `queries`: bounds, then queries only (no pre-pass): the comparison of the query methods,
  with per-neuron also run without reusing models (exactly two queries per open neuron).
Every run's classification must be identical to the others' and complete (no neuron left
unknown by a timeout); a difference or an unknown is flagged and the exit code is 1. Prints
counts, queries and time per run, and the speed ratios to single measured in this run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nnsmt.backends import get_backend  # noqa: E402
from nnsmt.commands.options import summary_label, summary_line  # noqa: E402
from nnsmt.domain import parse_box_json  # noqa: E402
from nnsmt.frontends import load_onnx  # noqa: E402
from nnsmt.queries.stability import SIMPLEX, StabilityOptions, check_witnesses, classify  # noqa: E402
from nnsmt.result import SolveOptions  # noqa: E402

CONFIGS = {"prepass": "bounds + pre-pass (guided corners) + queries",
           "queries": "bounds + queries only"}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nets", default="digits_l1,digits_plain")
    ap.add_argument("--backend", default="cvc5")
    ap.add_argument("--timeout", type=float, default=60, help="seconds per query")
    ap.add_argument("--lemmas", default="none", choices=["none", "bounds", "triangle"])
    ap.add_argument("--samples", type=int, default=0, help="random inputs added to the pre-pass")
    ap.add_argument("--split", type=int, default=0,
                    help="pre-pass: refute open questions by bounds on up to N sub-boxes")
    ap.add_argument("--configs", default="prepass,queries")
    ap.add_argument("--solver-defaults", action="store_true",
                    help="run the solver with its default simplex (the baseline of SIMPLEX)")
    a = ap.parse_args()
    be = get_backend(a.backend)
    dom = parse_box_json('{"lo": 0, "hi": 16, "dim": 64}', "[0, 16]^64")
    bad = False
    for name in a.nets.split(","):
        g = load_onnx(ROOT / "examples" / "digits" / f"{name}.onnx")
        for cfg in a.configs.split(","):
            pre = cfg == "prepass"
            opts = "default simplex" if a.solver_defaults or "simplex" not in be.capabilities.options \
                else f"simplex {SIMPLEX}"
            print(f"{name} over [0, 16]^64: {CONFIGS[cfg]}; backend {a.backend} ({opts}), {a.timeout:.0f} s "
                  f"per query, lemmas {a.lemmas}" + (f", {a.samples} samples" if pre and a.samples else "")
                  + (f", split {a.split}" if pre and a.split else ""))
            runs = [("single", True), ("per-neuron", True)] + ([] if pre else [("per-neuron", False)])
            res = []
            for m, reuse in runs:
                st = classify(g, dom, lambda s, t=None, o=SolveOptions(): be.solve(s, t, o), StabilityOptions(
                    m, a.timeout, samples=a.samples if pre else 0, guided=pre, lemmas=a.lemmas, reuse=reuse,
                    split=a.split if pre else 0, simplex="default" if a.solver_defaults else SIMPLEX))
                check_witnesses(g, st)
                res.append(st)
                print("  " + summary_line(st), flush=True)
            same = all(r.same_as(res[0]) for r in res)
            unknown = sum(r.counts()["unknown"] for r in res)
            bad |= not same or unknown > 0
            ratios = "; ".join(f"{summary_label(r)} / single: {r.time_s / max(res[0].time_s, 1e-9):.2f}x "
                               f"({r.queries} vs {res[0].queries} queries)" for r in res[1:])
            print(f"  identical classifications: {'yes' if same else 'NO (flagged)'}; "
                  f"undecided: {unknown}{' (flagged)' if unknown else ''}; speed ratio {ratios}", flush=True)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
