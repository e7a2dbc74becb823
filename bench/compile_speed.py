"""Compile speed: MNIST-FC 784-256-256-10 + one property to SMT-LIB2 text, nnsmt vs pySMT.

    python bench/compile_speed.py [--repeat 3] [--no-solve] [--timeout 60]

Both sides start from the same loaded IR and property, build the same formula (exact rational
constants, ReLU as ite) and print it as SMT-LIB2; the baseline uses pySMT's formula manager and
its SMT-LIB printer. Prints the ratio (target: nnsmt >= 20x faster, and under 1 s). Then prints
per-instance solve times of the vnncomp-test instances on every installed backend.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT.parent / "shared" / "benchmarks"
sys.path.insert(0, str(ROOT))

from nnsmt.backends.smtlib import to_smtlib  # noqa: E402
from nnsmt.frontends import load_onnx  # noqa: E402
from nnsmt.ir import Affine, Relu  # noqa: E402
from nnsmt.queries.verify import verify_script  # noqa: E402
from nnsmt.terms import And, Cmp, Num, Or, Var, Add, Mul  # noqa: E402
from nnsmt.vnnlib import load_vnnlib  # noqa: E402


def nnsmt_compile(graph, prop) -> str:
    return to_smtlib(verify_script(graph, prop))


def pysmt_compile(graph, prop) -> str:
    """The same query built term by term with pySMT and printed by its SMT-LIB printer."""
    from pysmt.shortcuts import GE, GT, LE, LT, And as PAnd, Equals, Ite, Or as POr, Plus, Real, Symbol, Times
    from pysmt.smtlib.script import smtlibscript_from_formula
    from pysmt.typing import REAL
    fr = {}

    def const(v):
        q = Fraction(v)
        c = fr.get(q)
        if c is None:
            c = fr[q] = Real(q)
        return c

    inp = graph.inputs[0]
    env = {inp.name: [Symbol(f"X_{i}", REAL) for i in range(inp.dim)]}
    for n in graph.nodes:
        if isinstance(n, Affine):
            w, b, x = n.weight.value, n.bias.value, env[n.x]
            rows = []
            for i in range(w.shape[0]):
                terms = [Times(const(c), x[j]) for j, c in enumerate(w[i]) if c != 0]
                rows.append(Plus(terms + [const(b[i])]))
            env[n.name] = rows
        elif isinstance(n, Relu):
            zero = const(0)
            env[n.name] = [Ite(GE(a, zero), a, zero) for a in env[n.x]]
    ys = env[graph.outputs[0]]
    var = {f"X_{i}": v for i, v in enumerate(env[inp.name])} | {f"Y_{j}": v for j, v in enumerate(ys)}
    ops = {"<=": LE, "<": LT, ">=": GE, ">": GT, "=": Equals}

    def conv(t):
        if isinstance(t, Var):
            return var[t.name]
        if isinstance(t, Num):
            return const(t.value)
        if isinstance(t, Add):
            return Plus([conv(a) for a in t.args])
        if isinstance(t, Mul):
            return Times([conv(a) for a in t.args])
        if isinstance(t, Cmp):
            return ops[t.op](conv(t.lhs), conv(t.rhs))
        if isinstance(t, And):
            return PAnd([conv(a) for a in t.args])
        if isinstance(t, Or):
            return POr([conv(a) for a in t.args])
        raise TypeError(t)

    formula = PAnd([conv(t) for _, t in prop.asserts])
    buf = io.StringIO()
    smtlibscript_from_formula(formula, logic="QF_LRA").serialize(buf, daggify=True)
    return buf.getvalue()


def timed(f, *a, repeat=1):
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = f(*a)
        best = min(best, time.perf_counter() - t0)
    return best, out


def compile_bench(repeat: int):
    net = BENCH / "mnistfc" / "mnist-net_256x2.onnx"
    vnn = BENCH / "mnistfc" / "prop_0_0.03.vnnlib"
    t_load, graph = timed(load_onnx, net, repeat=repeat)
    t_prop, prop = timed(load_vnnlib, vnn, repeat=repeat)
    t_ours, text = timed(nnsmt_compile, graph, prop, repeat=repeat)
    t_base, base_text = timed(pysmt_compile, graph, prop)
    print(f"MNIST-FC 784-256-256-10 + {vnn.name} -> SMT-LIB2 (best of {repeat} for nnsmt)")
    print(f"  load ONNX            {t_load:8.3f} s")
    print(f"  parse VNN-LIB        {t_prop:8.3f} s")
    print(f"  nnsmt build+print    {t_ours:8.3f} s   ({len(text) / 1e6:.1f} MB)")
    print(f"  nnsmt end to end     {t_load + t_prop + t_ours:8.3f} s   (target < 1 s)")
    print(f"  pySMT build+print    {t_base:8.3f} s   ({len(base_text) / 1e6:.1f} MB)")
    print(f"  ratio pySMT / nnsmt  {t_base / t_ours:8.1f} x   (target >= 20x)")


def solve_bench(timeout: float):
    from nnsmt.backends import available
    from nnsmt.backends.isolate import solve_isolated
    from nnsmt.frontends import ort_evaluator
    from nnsmt.validate import validate_counterexample
    from nnsmt.errors import ValidationError
    folder = BENCH / "vnncomp-test"
    rows = list(csv.DictReader(open(folder / "known.csv")))
    backends = [b for b, why in available().items() if why is None]
    print(f"\nvnncomp-test instances, timeout {timeout:.0f} s each")
    print(f"  {'instance':34} {'expected':8} " + " ".join(f"{b:>20}" for b in backends))
    for r in rows:
        g = load_onnx(folder / r["onnx"])
        prop = load_vnnlib(folder / r["vnnlib"])
        script = verify_script(g, prop)
        cells = []
        for name in backends:
            t0 = time.perf_counter()
            res = solve_isolated(name, script, timeout)  # hard deadline, as `nnsmt verify --timeout`
            status = res.status
            if status == "sat":
                try:
                    validate_counterexample(g, prop, res.model, ort_evaluator(folder / r["onnx"]))
                except ValidationError:
                    status = "error"
            mark = "" if status in ("unknown",) or status == r["expected"] else " WRONG"
            cells.append(f"{status}{mark} {time.perf_counter() - t0:7.2f}s")
        print(f"  {r['onnx'] + ' ' + r['vnnlib']:34} {r['expected']:8} " + " ".join(f"{c:>20}" for c in cells))


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=60)
    ap.add_argument("--no-solve", action="store_true")
    a = ap.parse_args()
    compile_bench(a.repeat)
    if not a.no_solve:
        solve_bench(a.timeout)
