"""ACAS Xu: nnsmt (bounds + input splitting + SMT) vs nnenum and Marabou, one instance at a time.

    python bench/acasxu.py [--timeout 116] [--tools nnsmt,nnsmt-plain,nnenum,marabou]
                           [--instances default|known|all|N] [--encoding-timeout 30] [--no-encodings]

Tools: `nnsmt` is the plain command a user types, `nnsmt verify NET PROP` (the auto engine);
`nnsmt-plain` is `--engine plain` (one query, the baseline of issue 11); `nnsmt-split` is
`--engine split --split N`; `marabou` is maraboupy; `nnenum` is nnenum from the checkout named by
NNENUM_DIR, run by NNENUM_PYTHON (bench/peers.py, bench/README.md). A peer that cannot run here
is skipped with one line saying how to enable it. The timeout is the competition's
(acasxu_instances.csv, 116 s) unless --timeout is given.

Instances (`default`, 21 of ../shared/benchmarks/acasxu/acasxu_instances.csv): every instance of
known.csv (6, with published answers), each single-network property 5-10 (6), and 9 more of
properties 1-4 spread over the network grid (a mix of the easy and the hard rows, picked
before running anything). Each tool runs in its own process, killed at timeout + 10 s.

Prints per tool: solved, sat, unsat, unknown, wrong (against known.csv and against the other
tools), total and median time, and the ratio of total times against nnsmt; every sat
counterexample is re-checked the VNN-COMP way (onnxruntime on the float32 input, tolerance 1e-4). Then the ReLUs the bounds fix over each whole input region
(average) and the solve time of the plain vs bounded encodings on the same sub-queries (the
4 sub-boxes, easiest to hardest, of the 4096-way split of each instance; whole regions time out
under both).
Marabou (`pip install maraboupy`, the `bench` extra) gets the property through its Python API:
input bounds, output atoms as (disjunctions of) inequalities (strict ones closed, as Marabou has
no strict inequalities), and a disjunction of input boxes (property 6) as one run per box.
`--instances all` runs the 186 VNN-COMP instances (issue 14: nnsmt vs nnenum vs Marabou).
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ACAS = ROOT.parent / "shared" / "benchmarks" / "acasxu"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from peers import (CERTIFY_HELP, asked_tools, cell, certify, nnenum_processes, print_breakdown,  # noqa: E402,F401
                   run_tool, summarize, timeout_label, usable, vnncomp_check)

EXTRA = [("1_1", 5), ("1_1", 6), ("1_9", 7), ("2_9", 8), ("3_3", 9), ("4_5", 10),
         ("2_3", 1), ("4_7", 1), ("2_2", 2), ("3_4", 2), ("5_9", 2), ("3_3", 3), ("4_2", 3),
         ("3_6", 4), ("5_1", 4)]


def net(n: str) -> str:
    return f"ACASXU_run2a_{n}_batch_2000.onnx"


def choose(spec: str) -> list[tuple[str, str, str]]:
    known = [(r["onnx"], r["vnnlib"], r["expected"]) for r in csv.DictReader(open(ACAS / "known.csv"))]
    if spec == "known":
        return known
    if spec == "all":
        rows = list(csv.reader(open(ACAS / "acasxu_instances.csv")))
        kn = {(a, b): e for a, b, e in known}
        return [(a, b, kn.get((a, b), "?")) for a, b, _ in rows]
    out = known + [(net(n), f"prop_{p}.vnnlib", "?") for n, p in EXTRA if (net(n), f"prop_{p}.vnnlib") not in
                   {(a, b) for a, b, _ in known}]
    if spec.isdigit():
        out = out[: int(spec)]
    return out


def encodings(rows, timeout, per_instance: int = 4, split: int = 4096):
    """Bounds fixed per instance, and plain vs bounded solve time (Z3) on the same queries.

    Whole ACAS Xu regions time out under both encodings (measured: every instance at 20 s), which
    makes their ratio meaningless; so the time comparison runs on sub-queries: the first
    `per_instance` sub-boxes of a `split`-way split of each instance (the sub-boxes the bounds
    did not refute), each solved once with the plain encoding (the sub-box asserted, nothing
    else) and once with the bounded one (the script `verify --split` sends: stable ReLUs fixed,
    bound lemmas on the rest). The sub-boxes are taken evenly from easiest to hardest (by their
    count of unstable ReLUs); an instance whose planning already found a counterexample has none."""
    from dataclasses import replace as dc_replace
    from nnsmt.backends.isolate import solve_isolated
    from nnsmt.bounds import count_states, relu_states
    from nnsmt.domain import property_bounds
    from nnsmt.frontends import load_onnx
    from nnsmt.queries.split import plan_split
    from nnsmt.queries.verify import verify_script
    from nnsmt.vnnlib import load_vnnlib
    print(f"\nBounds over each whole input region; plain vs bounded encoding (z3) on "
          f"{per_instance} sub-queries (easiest to hardest) of a {split}-way split of each instance, timeout "
          f"{timeout:.0f} s per query")
    print(f"  {'instance':34} {'fixed':>7} {'sub-box fixed':>13} {'plain':>22} {'bounded':>22}")
    fixed, sub_fixed, tp, tb, np_, nb, total = [], [], 0.0, 0.0, 0, 0, 0
    for onnx, vnn, _ in rows:
        g, prop = load_onnx(ACAS / onnx), load_vnnlib(ACAS / vnn)
        c = count_states(relu_states(g, property_bounds(g, prop)))
        fixed.append(c["active"] + c["inactive"])
        plan = plan_split(g, prop, split, time_budget=20)
        subs = [q for q in plan.subqueries if q.box and q.box[0]]
        if len(subs) > per_instance:  # evenly over the list, which runs from easiest to hardest
            subs = [subs[int(k)] for k in np.linspace(0, len(subs) - 1, per_instance)]
        times = {"plain": 0.0, "bounded": 0.0}
        solved = {"plain": 0, "bounded": 0}
        whole = verify_script(g, prop, encoding="plain")  # the same for every sub-box
        for q in subs:
            box_assert = dict(q.script.asserts)["split_box"]
            plain = dc_replace(whole, asserts=whole.asserts + (("split_box", box_assert),))
            for enc, script in (("plain", plain), ("bounded", q.script)):
                t0 = time.perf_counter()
                r = solve_isolated("z3", script, timeout)
                times[enc] += time.perf_counter() - t0
                solved[enc] += r.status in ("sat", "unsat")
            sub_fixed.append(c["total"] - q.meta["unstable"] if "unstable" in q.meta else np.nan)
        tp, tb = tp + times["plain"], tb + times["bounded"]
        np_, nb, total = np_ + solved["plain"], nb + solved["bounded"], total + len(subs)
        cells = [f"{solved[e]}/{len(subs)} solved {times[e]:6.1f}s" for e in ("plain", "bounded")]
        sf = [v for v in sub_fixed[-len(subs):] if v == v] if subs else []
        sfs = f"{np.mean(sf):.1f}" if sf else "-"
        print(f"  {onnx[13:16] + ' ' + vnn:34} {fixed[-1]:4}/{c['total']} {sfs:>13} {cells[0]:>22} "
              f"{cells[1]:>22}", flush=True)
    print(f"  ReLUs fixed by bounds on average: {np.mean(fixed):.1f} of 300 over the whole region")
    print(f"  sub-queries: plain solved {np_}/{total} in {tp:.1f} s, bounded solved {nb}/{total} in "
          f"{tb:.1f} s; time ratio plain / bounded {tp / max(tb, 1e-9):.2f}x "
          f"(a timeout counts as {timeout:.0f} s)")


def competition_timeouts() -> dict[tuple[str, str], float]:
    return {(a, b): float(t) for a, b, t in csv.reader(open(ACAS / "acasxu_instances.csv"))}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--timeout", type=float, default=None,
                    help="seconds per instance (default: the competition's, 116 s, from acasxu_instances.csv)")
    ap.add_argument("--tools", default="nnsmt,marabou",
                    help="comma list of nnsmt, nnsmt-plain, nnsmt-split, nnenum, marabou")
    ap.add_argument("--instances", default="default", help="default | known | all | N (first N of default)")
    ap.add_argument("--split", type=int, default=4096, help="nnsmt --split N (default 4096)")
    ap.add_argument("--backend", default="z3")
    ap.add_argument("--encoding-timeout", type=float, default=10,
                    help="seconds per sub-query in the plain vs bounded comparison")
    ap.add_argument("--no-encodings", action="store_true")
    ap.add_argument("--certify", action="store_true", help=CERTIFY_HELP)
    a = ap.parse_args()
    from nnsmt.vnnlib import load_vnnlib
    rows = choose(a.instances)
    comp = competition_timeouts()
    timeouts = [a.timeout if a.timeout is not None else comp.get((o, v), 116.0) for o, v, _ in rows]
    asked = asked_tools(ap, a.tools, ("nnsmt", "nnsmt-plain", "nnsmt-split", "nnenum", "marabou"))
    tl = timeout_label(a.timeout, timeouts)
    print(f"ACAS Xu: {len(rows)} instances, timeout {tl} each, tools {', '.join(asked)}; "
          f"nnsmt = `nnsmt verify NET PROP --backend {a.backend}` (defaults)")
    tools = usable(asked)
    if "nnenum" in tools:
        print(f"  nnenum: processes {nnenum_processes()}")
    res: dict = {t: [] for t in tools}
    print(f"  {'instance':26} {'known':6} " + " ".join(f"{t:>22}" for t in tools), flush=True)
    for (onnx, vnn, expected), timeout in zip(rows, timeouts):
        prop = load_vnnlib(ACAS / vnn)
        cells = []
        for t in tools:
            extra = {"nnsmt": [], "nnsmt-plain": ["--engine", "plain"],
                     "nnsmt-split": ["--engine", "split", "--split", str(a.split)]}.get(t, [])
            st, dt, ok, why = run_tool(t, ACAS / onnx, ACAS / vnn, prop, timeout, extra + ["--backend", a.backend])
            res[t].append((st, dt, ok, expected, why))
            cells.append(cell(st, dt, ok))
        print(f"  {onnx[13:16] + ' ' + vnn:26} {expected:6} " + " ".join(f"{c:>22}" for c in cells), flush=True)
    summarize(tools, res)
    print_breakdown()
    if a.certify and "nnsmt" in tools:
        certify([(ACAS / o, ACAS / v, o[13:16] + " " + v, t) for (o, v, _), t, (st, *_)
                 in zip(rows, timeouts, res["nnsmt"]) if st == "unsat"], a.backend)
    if not a.no_encodings:
        encodings(rows, a.encoding_timeout, split=a.split)


if __name__ == "__main__":
    main()
