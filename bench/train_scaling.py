"""Training scaling: the seed paper's sphere task, faithful pySMT+Z3 encoding vs nnsmt's default.

    python bench/train_scaling.py [--quick] [--timeout 60] [--widths 1,2,4,...] [--sets grid,50,200]
                                  [--methods faithful,nnsmt,nnsmt-w,milp-w,milp] [--milp milp:scip]
    python bench/train_scaling.py --deep [--timeout 60]     # seed vs margin beyond one hidden layer

For the 12-point angle grid and 50 and 200 random sphere points (seed 0), 3-h-2 ReLU networks
of growing width h (6h + 2 weights) are trained by
  (a) faithful: the seed paper's encoding, re-implemented faithfully: pySMT terms built one by
      one (ReLU as Max(0, .), every weight a Real symbol, the label's logit strictly largest),
      solved by Z3 through pySMT; a fit counts when the model classifies every point (exact
      rational replay);
  (b) nnsmt: nnsmt's default (`nnsmt.queries.train.train`: encoding auto, phase hints, CEGIS
      with coarse stand-ins, narrow first -- a fit of a narrower hidden layer, zero-padded, is
      an exact fit of the wider one -- exact check of every point);
  (c) nnsmt-w: the same without the narrow-first phase (`--no-widen`): the solver solves the
      width asked, which shows how the query itself scales;
  (d) milp-w / milp: nnsmt with `--backend milp:highs` (`--milp` picks milp:scip), without
      and with the narrow-first phase. The MILP steers: every fit is the exact check of every
      point, as for the SMT backends (`train` replays each candidate on all points).
`--methods` picks which run (default: all).
Each attempt runs in a forked child killed after the timeout. A method stops growing a data set
at its first timeout. Prints the largest number of weights each fits and the ratios to the
faithful encoding, the time of nnsmt's (and the baseline's) 3-1-2 unsat proof on the 200
points, and saves bench/out/train_scaling.png (time against weights, like the seed paper's
figure).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nnsmt.data import Dataset, sphere_grid, sphere_points  # noqa: E402
from nnsmt.ir import Affine, Const, Graph, Input, Relu  # noqa: E402


def mlp(h: int, seed: int = 0) -> Graph:
    rng = np.random.default_rng(seed)
    w1, b1 = rng.standard_normal((h, 3)).astype(np.float32), rng.standard_normal(h).astype(np.float32)
    w2, b2 = rng.standard_normal((2, h)).astype(np.float32), rng.standard_normal(2).astype(np.float32)
    return Graph((Input("x", 3), Affine("a1", "x", Const(w1), Const(b1)), Relu("r1", "a1"),
                  Affine("a2", "r1", Const(w2), Const(b2))), ("a2",)).check()


def faithful(x: np.ndarray, y: np.ndarray, h: int) -> tuple[str, float]:
    """The seed's encoding with pySMT + Z3, built term by term. (status, accuracy)."""
    from pysmt.shortcuts import GT, And, Max, Plus, Real, Solver, Symbol, Times
    from pysmt.typing import REAL
    W1 = [[Symbol(f"w1_{j}_{k}", REAL) for k in range(3)] for j in range(h)]
    B1 = [Symbol(f"b1_{j}", REAL) for j in range(h)]
    W2 = [[Symbol(f"w2_{c}_{j}", REAL) for j in range(h)] for c in range(2)]
    B2 = [Symbol(f"b2_{c}", REAL) for c in range(2)]
    zero = Real(0)
    cons = []
    for xi, yi in zip(x, y):
        hid = [Max(zero, Plus([Times(W1[j][k], Real(Fraction(float(xi[k])))) for k in range(3)] + [B1[j]]))
               for j in range(h)]
        out = [Plus([Times(W2[c][j], hid[j]) for j in range(h)] + [B2[c]]) for c in range(2)]
        cons.append(GT(out[yi], out[1 - yi]))
    with Solver(name="z3", logic="QF_NRA") as s:
        s.add_assertion(And(cons))
        if not s.solve():
            return "unsat", 0.0
        val = lambda v: Fraction(str(s.get_py_value(v)))  # noqa: E731
        w1 = [[val(v) for v in row] for row in W1]; b1 = [val(v) for v in B1]
        w2 = [[val(v) for v in row] for row in W2]; b2 = [val(v) for v in B2]
    ok = 0  # exact replay (the margins of a strict model can be far below float precision)
    for xi, yi in zip(x, y):
        xf = [Fraction(float(v)) for v in xi]
        hid = [max(Fraction(0), sum(w1[j][k] * xf[k] for k in range(3)) + b1[j]) for j in range(h)]
        out = [sum(w2[c][j] * hid[j] for j in range(h)) + b2[c] for c in range(2)]
        ok += out[yi] > out[1 - yi]
    acc = ok / len(y)
    return ("sat" if acc == 1.0 else "sat-inexact"), acc


def nnsmt_default(x: np.ndarray, y: np.ndarray, h: int, timeout: float,
                  widen: bool = True, backend: str = "z3") -> tuple[str, float, str]:
    """nnsmt's default (`widen=False`: the requested width only, no narrow-first phase).
    (status, accuracy, width the solver solved). A sat is a fit `train` checked exactly on
    every point; it is checked here once more, independently."""
    from nnsmt.engine.driver import solver
    from nnsmt.queries.train import TrainOptions, make_problem, train
    r = train(make_problem(mlp(h), Dataset(x, y)), solver(backend), TrainOptions(timeout=timeout, widen=widen))
    if r.status == "sat" and exact_accuracy(r.params, x, y) != 1.0:
        return "error", 0.0, "a fit failed the exact check"
    solved = next((n.split("hidden width ")[1].split()[0] for n in r.notes if "widened" in n), str(h))
    return r.status, (1.0 if r.status == "sat" else 0.0), solved


def exact_accuracy(params: dict, x: np.ndarray, y: np.ndarray) -> float:
    """Training accuracy of trained 3-h-2 parameters in exact rationals (class 1 iff its logit
    is strictly larger)."""
    w1, b1, w2, b2 = (params[k] for k in ("W_a1", "b_a1", "W_a2", "b_a2"))
    ok = 0
    for xi, yi in zip(x, y):
        xf = [Fraction(float(v)) for v in xi]
        hid = [max(Fraction(0), sum(Fraction(w1[j][k]) * xf[k] for k in range(3)) + Fraction(b1[j]))
               for j in range(len(b1))]
        out = [sum(Fraction(w2[c][j]) * hid[j] for j in range(len(hid))) + Fraction(b2[c]) for c in range(2)]
        ok += out[yi] > out[1 - yi]
    return ok / len(y)


MILP = "milp:highs"


def milp_fixed(x, y, h, timeout):
    return nnsmt_default(x, y, h, timeout, widen=False, backend=MILP)


def milp_default(x, y, h, timeout):
    return nnsmt_default(x, y, h, timeout, widen=True, backend=MILP)


def nnsmt_fixed(x: np.ndarray, y: np.ndarray, h: int, timeout: float):
    return nnsmt_default(x, y, h, timeout, widen=False)


def mlp2(h: int, k: int, seed: int = 0) -> Graph:
    """3-h-h-k: two hidden ReLU layers, k logits."""
    rng = np.random.default_rng(seed)
    def lin(m, n):
        return Const(rng.standard_normal((n, m)).astype(np.float32)), Const(rng.standard_normal(n).astype(np.float32))
    (w1, b1), (w2, b2), (w3, b3) = lin(3, h), lin(h, h), lin(h, k)
    return Graph((Input("x", 3), Affine("a1", "x", w1, b1), Relu("r1", "a1"), Affine("a2", "r1", w2, b2),
                  Relu("r2", "a2"), Affine("a3", "r2", w3, b3)), ("a3",)).check()


def three_classes(n: int, seed: int = 0):
    """Points on the sphere labelled by how many of two random planes they are above (0, 1, 2)."""
    rng = np.random.default_rng(seed + 1)
    x = rng.standard_normal((n, 3))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    planes = rng.standard_normal((2, 3))
    return x, ((x @ planes.T) > 0).sum(axis=1)


def nnsmt_encoding(x, y, h: int, k: int, encoding: str, timeout: float):
    from nnsmt.engine.driver import solver
    from nnsmt.queries.train import TrainOptions, make_problem, train
    r = train(make_problem(mlp2(h, k), Dataset(x, y)), solver("z3"),
              TrainOptions(encoding=encoding, timeout=timeout, widen=False))
    return r.status, 1.0 if r.status == "sat" else 0.0


def deep(a) -> None:
    """seed vs margin (the default beyond one hidden layer) on deeper and multi-class nets."""
    cases = [("grid", *sphere_grid(0), 2), ("50", *sphere_points(50, 0), 2),
             ("3cls30", *three_classes(30), 3)]
    print(f"seed vs margin encodings (nnsmt, CEGIS, no narrow phase), 3-h-h-k nets, "
          f"{a.timeout:.0f} s per attempt")
    print(f"{'data':>7} {'arch':>9} {'seed':>16} {'margin':>16}")
    tot = {"seed": 0.0, "margin": 0.0}
    solved = {"seed": 0, "margin": 0}
    for name, x, y, k in cases:
        for h in (2, 4, 8):
            cells = []
            for enc in ("seed", "margin"):
                st, t, _ = attempt(nnsmt_encoding, (x, y, h, k, enc, a.timeout), a.timeout)
                tot[enc] += t
                solved[enc] += st in ("sat", "unsat")
                cells.append(f"{st} {t:6.2f}s")
            print(f"{name:>7} {f'3-{h}-{h}-{k}':>9} {cells[0]:>16} {cells[1]:>16}", flush=True)
    print(f"decided: seed {solved['seed']}, margin {solved['margin']}; total time seed {tot['seed']:.1f} s, "
          f"margin {tot['margin']:.1f} s, ratio seed / margin {tot['seed'] / max(tot['margin'], 1e-9):.2f}x "
          f"(a timeout counts as {a.timeout:.0f} s)")


METHODS = {"faithful": faithful, "nnsmt": nnsmt_default, "nnsmt-w": nnsmt_fixed, "milp-w": milp_fixed,
           "milp": milp_default}


def _child(conn, fn, args):
    try:
        conn.send(fn(*args))
    except BaseException as e:  # noqa: BLE001 -- reported, never hangs the parent
        conn.send(("error", f"{type(e).__name__}: {e}"))
    conn.close()


def attempt(fn, args, timeout: float) -> tuple[str, float, str]:
    """(status, seconds, detail) of fn(*args) in a forked child, killed after `timeout` (+1 s).
    Not daemonic: nnsmt's own solver children (hard-killed at its deadline) must be allowed."""
    ctx = mp.get_context("fork")
    recv, send = ctx.Pipe(duplex=False)
    t0 = time.perf_counter()
    p = ctx.Process(target=_child, args=(send, fn, args), daemon=False)
    p.start()
    send.close()
    status, detail = "timeout", ""
    if recv.poll(timeout + 1.0):
        try:
            got = recv.recv()
            status, detail = got[0], (str(got[2]) if len(got) > 2 else "")
        except EOFError:
            status = "error"
    el = time.perf_counter() - t0
    if p.is_alive():
        p.kill()
    p.join()
    if status == "unknown":
        status = "timeout"
    return status, (min(el, timeout) if status == "timeout" else el), detail


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--widths", default="1,2,4,8,16,32,64,128,256")
    ap.add_argument("--sets", default="grid,50,200")
    ap.add_argument("--quick", action="store_true", help="grid and 50 points, widths up to 16, 20 s")
    ap.add_argument("--no-plot", action="store_true")
    ap.add_argument("--deep", action="store_true",
                    help="instead: seed vs margin encodings on 3-h-h-k nets (2 and 3 classes)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "out" / "train_scaling.png"))
    ap.add_argument("--methods", default=",".join(METHODS), help=f"comma-separated, of {', '.join(METHODS)}")
    ap.add_argument("--milp", default="milp:highs", help="the MILP backend of milp/milp-w (default milp:highs)")
    a = ap.parse_args()
    global MILP
    MILP = a.milp
    methods = [m for m in a.methods.split(",") if m]
    bad = [m for m in methods if m not in METHODS]
    if bad:
        ap.error(f"unknown method {bad[0]!r}; choose from {', '.join(METHODS)}")
    if a.deep:
        return deep(a)
    if a.quick:
        a.timeout, a.widths, a.sets = 20.0, "1,2,4,8,16", "grid,50"
    widths = [int(w) for w in a.widths.split(",")]
    sets = {}
    for s in a.sets.split(","):
        sets[s] = sphere_grid(0) if s == "grid" else sphere_points(int(s), 0)
    runs = {}  # (set, method) -> [(weights, status, seconds)]
    print(f"3-h-2 networks on the sphere task, {a.timeout:.0f} s per attempt (killed on expiry)")
    print("methods: faithful = seed encoding via pySMT+Z3; nnsmt = default (narrow first, then the "
          "width asked);\n         nnsmt-w = nnsmt --no-widen (the width asked only); milp-w / milp = "
          f"the same two on --backend {MILP}.\n         'solved at' = hidden width the solver solved")
    print(f"{'data':>5} {'method':>9} {'h':>4} {'weights':>7} {'status':>9} {'time_s':>7} {'solved at':>9}")
    for name, (x, y) in sets.items():
        for method in methods:
            rows = runs[(name, method)] = []
            for h in widths:
                fn = METHODS[method]
                args = (x, y, h) if method == "faithful" else (x, y, h, a.timeout)
                status, t, detail = attempt(fn, args, a.timeout)
                rows.append((6 * h + 2, status, t))
                print(f"{name:>5} {method:>9} {h:>4} {6 * h + 2:>7} {status:>9} {t:>7.2f} "
                      f"{detail if status == 'sat' else '':>9}", flush=True)
                if status not in ("sat", "unsat"):
                    break
    print()
    print(f"largest number of weights fitted (100% training accuracy) within {a.timeout:.0f} s:")
    for name in sets:
        best = {m: max([w for w, s, _ in runs[(name, m)] if s == "sat"], default=0) for m in methods}
        line = f"  {name:>5} points:"
        for m in methods:
            if m == "faithful" or "faithful" not in best:
                line += f" {m} {best[m]:>5};"
                continue
            ratio = f"{best[m] / best['faithful']:.1f}x" if best["faithful"] else \
                ("inf (faithful fits none)" if best[m] else "n/a (neither fits any)")
            line += f" {m} {best[m]:>5} (ratio {ratio});"
        print(line.rstrip(";"))
    if "200" in sets and {"faithful", "nnsmt"} <= set(methods):
        x, y = sets["200"]
        print()
        print("3-1-2 on the 200 points (one hidden ReLU: a half-space; the two-plane wedge is not one):")
        for method in ("faithful", "nnsmt"):
            fn, args = (faithful, (x, y, 1)) if method == "faithful" else (nnsmt_default, (x, y, 1, a.timeout))
            status, t, _ = attempt(fn, args, a.timeout)
            print(f"  {method:>9}: {status} in {t:.2f} s")
    if not a.no_plot:
        try:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            print("matplotlib is not installed (pip install -e '.[dev]'): no plot")
            return
        fig, axes = plt.subplots(1, len(sets), figsize=(5 * len(sets), 4), squeeze=False)
        for ax, name in zip(axes[0], sets):
            for method, mk in (("faithful", "o-"), ("nnsmt", "s-"), ("nnsmt-w", "^--"), ("milp-w", "d-."),
                               ("milp", "v:")):
                if (name, method) not in runs:
                    continue
                rows = runs[(name, method)]
                ax.plot([w for w, _, _ in rows], [t for _, _, t in rows], mk, label=method)
                for w, s, t in rows:
                    if s not in ("sat",):
                        ax.annotate(s, (w, t), fontsize=7)
            ax.axhline(a.timeout, color="grey", lw=0.5, ls="--")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("weights (3-h-2)")
            ax.set_ylabel("seconds to 100% training accuracy")
            ax.set_title(f"sphere, {len(sets[name][1])} points")
            ax.legend()
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        fig.tight_layout()
        fig.savefig(a.out, dpi=120)
        print(f"saved {a.out}")


if __name__ == "__main__":
    main()
