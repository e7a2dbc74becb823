"""ACAS Xu: nnsmt (bounds + input splitting + SMT) vs Marabou, one instance at a time.

    python bench/acasxu.py [--timeout 116] [--tools nnsmt,nnsmt-plain,marabou]
                           [--instances default|known|all|N] [--encoding-timeout 30] [--no-encodings]

Tools: `nnsmt` is the plain command a user types, `nnsmt verify NET PROP` (the auto engine);
`nnsmt-plain` is `--engine plain` (one query, the baseline of issue 11); `nnsmt-split` is
`--engine split --split N`; `marabou` is maraboupy.

Instances (`default`, 21 of ../shared/benchmarks/acasxu/acasxu_instances.csv): every instance of
known.csv (6, with published answers), each single-network property 5-10 (6), and 9 more of
properties 1-4 spread over the network grid (a mix of the easy and the hard rows, picked
before running anything). Each tool runs in its own process, killed at timeout + 10 s.

Prints per tool: solved, unsat, sat, unknown, wrong (against known.csv and against the other
tool), total time; every sat counterexample is re-checked the VNN-COMP way (onnxruntime on the
float32 input, tolerance 1e-4). Then the ReLUs the bounds fix over each whole input region
(average) and the solve time of the plain vs bounded encodings on the same sub-queries (the
4 sub-boxes, easiest to hardest, of the 4096-way split of each instance; whole regions time out
under both).
Marabou (`pip install maraboupy`, the `bench` extra) gets the property through its Python API:
input bounds, output atoms as (disjunctions of) inequalities (strict ones closed, as Marabou has
no strict inequalities), and a disjunction of input boxes (property 6) as one run per box.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ACAS = ROOT.parent / "shared" / "benchmarks" / "acasxu"
sys.path.insert(0, str(ROOT))

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


def vnncomp_check(onnx_path, prop, x) -> bool:
    """The VNN-COMP counterexample check: onnxruntime on float32 x, property within 1e-4."""
    from nnsmt.frontends import ort_evaluator
    x32 = np.asarray(x, dtype=np.float32)
    y = np.asarray(ort_evaluator(onnx_path)(x32)).reshape(-1)
    env = {f"X_{i}": float(v) for i, v in enumerate(x32)} | {f"Y_{j}": float(v) for j, v in enumerate(y)}
    return prop.holds(env, tol=1e-4)


def run_nnsmt(onnx, vnn, timeout, extra) -> tuple[str, float, list | None, str]:
    cmd = [sys.executable, "-m", "nnsmt.cli", "verify", str(ACAS / onnx), str(ACAS / vnn),
           "--timeout", str(timeout), "--json", *extra]
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout + 10)
    except subprocess.TimeoutExpired:
        return "unknown", time.perf_counter() - t0, None, "killed"
    dt = time.perf_counter() - t0
    try:
        out = json.loads(p.stdout)
    except json.JSONDecodeError:
        return "error", dt, None, (p.stderr.strip().splitlines() or ["no output"])[-1]
    x = out.get("counterexample", {}).get("x")
    return out["status"], dt, x, out.get("reason", "")


MARABOU_CHILD = r"""
import json, sys, time
from fractions import Fraction
from maraboupy import Marabou, MarabouCore
from maraboupy.MarabouUtils import Equation
from nnsmt.vnnlib import load_vnnlib
from nnsmt.terms import And, Or, Cmp, linear_form
onnx, vnn, timeout = sys.argv[1], sys.argv[2], float(sys.argv[3])
prop = load_vnnlib(vnn)
boxes = prop.input_boxes()
t0 = time.time()

def eq_of(atom, ovars):
    lf, rf = linear_form(atom.lhs), linear_form(atom.rhs)
    coef = {k: lf[0].get(k, 0) - rf[0].get(k, 0) for k in set(lf[0]) | set(rf[0])}
    const = lf[1] - rf[1]  # sum coef*Y + const  op  0
    if atom.op in ("<=", "<"):
        sign = 1
    elif atom.op in (">=", ">"):
        sign = -1
    else:
        raise SystemExit("equality atom")
    e = Equation(MarabouCore.Equation.LE)
    for k, v in coef.items():
        if v:
            e.addAddend(float(sign * v), int(ovars[int(k[2:])]))
    e.setScalar(float(-sign * const))
    return e

status, x = "unknown", None
for lo, hi in boxes:
    left = timeout - (time.time() - t0)
    if left <= 1:
        break
    n = Marabou.read_onnx(onnx)
    iv, ov = n.inputVars[0].reshape(-1), n.outputVars[0].reshape(-1)
    for i, v in enumerate(iv):
        n.setLowerBound(int(v), float(lo[i]))
        n.setUpperBound(int(v), float(hi[i]))
    for _, t in prop.asserts:
        names = set()
        stack = [t]
        while stack:
            s = stack.pop()
            if isinstance(s, (And, Or)):
                stack.extend(s.args)
            elif isinstance(s, Cmp):
                for side in (s.lhs, s.rhs):
                    f = linear_form(side)
                    names |= set(f[0]) if f else set()
        if not any(k.startswith("Y_") for k in names):
            continue
        conj = t.args if isinstance(t, And) else (t,)
        for c in conj:
            if isinstance(c, Cmp):
                n.addEquation(eq_of(c, ov))
            elif isinstance(c, Or):
                n.addDisjunctionConstraint([[eq_of(a, ov) for a in (d.args if isinstance(d, And) else (d,))]
                                            for d in c.args])
            else:
                raise SystemExit("unsupported assert")
    opts = Marabou.createOptions(timeoutInSeconds=max(1, int(left)), verbosity=0)
    res, vals, stats = n.solve(verbose=False, options=opts)
    if res == "sat":
        status, x = "sat", [vals[int(v)] for v in iv]
        break
    if res == "unsat":
        status = "unsat"
        continue
    status = "unknown"
    break
print(json.dumps({"status": status, "x": x}))
"""


def run_marabou(onnx, vnn, timeout) -> tuple[str, float, list | None, str]:
    t0 = time.perf_counter()
    try:
        p = subprocess.run([sys.executable, "-c", MARABOU_CHILD, str(ACAS / onnx), str(ACAS / vnn), str(timeout)],
                           capture_output=True, text=True, timeout=timeout + 10)
    except subprocess.TimeoutExpired:
        return "unknown", time.perf_counter() - t0, None, "killed"
    dt = time.perf_counter() - t0
    lines = [l for l in p.stdout.splitlines() if l.startswith("{")]
    if not lines:
        return "error", dt, None, (p.stderr.strip().splitlines() or ["no output"])[-1][:120]
    out = json.loads(lines[-1])
    return out["status"], dt, out["x"], ""


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


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--timeout", type=float, default=116)
    ap.add_argument("--tools", default="nnsmt,marabou")
    ap.add_argument("--instances", default="default", help="default | known | all | N (first N of default)")
    ap.add_argument("--split", type=int, default=4096, help="nnsmt --split N (default 4096)")
    ap.add_argument("--backend", default="z3")
    ap.add_argument("--encoding-timeout", type=float, default=10,
                    help="seconds per sub-query in the plain vs bounded comparison")
    ap.add_argument("--no-encodings", action="store_true")
    a = ap.parse_args()
    from nnsmt.vnnlib import load_vnnlib
    rows = choose(a.instances)
    tools = [t.strip() for t in a.tools.split(",") if t.strip()]
    print(f"ACAS Xu: {len(rows)} instances, timeout {a.timeout:.0f} s each, tools {', '.join(tools)}; "
          f"nnsmt = `nnsmt verify NET PROP --backend {a.backend}` (defaults)")
    res: dict = {t: [] for t in tools}
    print(f"  {'instance':26} {'known':6} " + " ".join(f"{t:>22}" for t in tools), flush=True)
    for onnx, vnn, expected in rows:
        prop = load_vnnlib(ACAS / vnn)
        cells = []
        for t in tools:
            if t.startswith("nnsmt"):
                extra = {"nnsmt": [], "nnsmt-plain": ["--engine", "plain"],
                         "nnsmt-split": ["--engine", "split", "--split", str(a.split)]}[t]
                st, dt, x, why = run_nnsmt(onnx, vnn, a.timeout, extra + ["--backend", a.backend])
            else:
                st, dt, x, why = run_marabou(onnx, vnn, a.timeout)
            ok = True
            if st == "sat":
                ok = x is not None and vnncomp_check(ACAS / onnx, prop, x)
            res[t].append((st, dt, ok, expected, why))
            cells.append(f"{st}{'' if ok else ' BADCEX'} {dt:7.1f}s")
        print(f"  {onnx[13:16] + ' ' + vnn:26} {expected:6} " + " ".join(f"{c:>22}" for c in cells), flush=True)
    print()
    for t in tools:
        rs = res[t]
        others = [o for o in tools if o != t]
        wrong = 0
        for i, (st, dt, ok, exp, _) in enumerate(rs):
            bad = (st in ("sat", "unsat") and exp in ("sat", "unsat") and st != exp) or not ok
            for o in others:  # only the other tool's checked answers count against this one
                so, _, o_ok = res[o][i][:3]
                bad |= st in ("sat", "unsat") and so in ("sat", "unsat") and so != st and o_ok
            wrong += bad
        solved = sum(st in ("sat", "unsat") for st, *_ in rs)
        print(f"  {t:8} solved {solved:3}  unsat {sum(s == 'unsat' for s, *_ in rs):3}  "
              f"sat {sum(s == 'sat' for s, *_ in rs):3}  unknown {sum(s not in ('sat', 'unsat') for s, *_ in rs):3}  "
              f"wrong {wrong:2}  total time {sum(d for _, d, *_ in rs):8.1f} s")
    for other in tools[1:]:
        a0, a1 = (sum(st in ("sat", "unsat") for st, *_ in res[t]) for t in (tools[0], other))
        t0, t1 = (sum(d for _, d, *_ in res[t]) for t in (tools[0], other))
        print(f"  solved {tools[0]} / {other}: {a0} / {a1};  time ratio {other} / {tools[0]}: {t1 / max(t0, 1e-9):.2f}x")
    if not a.no_encodings:
        encodings(rows, a.encoding_timeout, split=a.split)


if __name__ == "__main__":
    main()
