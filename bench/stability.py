"""Stability classification at the seed's scale: single (harvesting) vs per-neuron queries, on
SMT and MILP backends, then exact compression of each network.

    python bench/stability.py [--nets digits_2x100_l1,...] [--backends cvc5,milp:highs]
                              [--methods single,per-neuron] [--timeout 30] [--cap 600]
                              [--confirm cvc5] [--compress] [--no-guided]

Networks: examples/digits (scikit-learn's digits, 64 inputs, domain [0, 16]^64): the 16x16
ones and the seed's architectures (`train_digits.py --seed-nets`). Each (network, backend,
method) run classifies every ReLU (bounds, the pre-pass: guided corners, attack, a short bab
on what is open; then queries; a MILP's claims confirmed by splitting or by `--confirm`), in
a child process stopped after `--cap` seconds (reported as "did not finish": a ratio against
it is a lower bound). Every unstable verdict's witnesses are replayed exactly. Prints, per
run: counts, queries, time and time per phase; per network: whether the finished runs
classify identically on every neuron both decided (a difference is flagged, exit 1; unknowns
are counted, not flagged) and the per-neuron / single time ratio on each backend, measured
in this run; then the median ratio over the networks. With --compress, each network is
compressed with the first complete classification, else the one with the fewest unknowns
(which stay ReLUs) (`nnsmt.queries.compress`: stable ReLUs removed exactly, the equivalence
proved by `--confirm` with `--timeout` x 4 seconds), and the sizes before and after are printed.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nnsmt.backends import get_backend  # noqa: E402
from nnsmt.domain import parse_box_json  # noqa: E402
from nnsmt.frontends import load_onnx  # noqa: E402
from nnsmt.queries.stability import StabilityOptions, check_witnesses, classify  # noqa: E402
from nnsmt.result import SolveOptions  # noqa: E402

DOMAIN = '{"lo": 0, "hi": 16, "dim": 64}'
NETS = ("digits_l1,digits_plain,digits_2x100_l1,digits_2x100_plain,digits_5x100_l1,digits_2x200_l1,"
        "digits_2x400_l1,digits_2x800_l1")


def solve_on(name: str):
    """A Solve on backend `name` in this process (the bench's child: the cap kills it all)."""
    be = get_backend(name)

    def solve(script, seconds=None, options=SolveOptions()):
        return be.solve(script, seconds, options)
    solve.backend, solve.capabilities = name, be.capabilities
    return solve


def _classify(net, backend, method, timeout, confirm, guided, out):
    g = load_onnx(ROOT / "examples" / "digits" / f"{net}.onnx")
    dom = parse_box_json(DOMAIN, "[0, 16]^64")
    solve = solve_on(backend)
    exact = solve_on(confirm) if "harvest" in solve.capabilities.options else None
    alone = {} if guided else {"guided": False, "attack": 0, "bab_first_s": 0}  # the query methods alone
    st = classify(g, dom, solve, StabilityOptions(method.removesuffix("-all"), timeout, **alone,
                                                  reuse=not method.endswith("-all")), confirm=exact)
    check_witnesses(g, st)
    out.put(st)


def _compress(net, st, confirm, timeout, out):
    from nnsmt.queries.compress import CompressOptions, compress
    g = load_onnx(ROOT / "examples" / "digits" / f"{net}.onnx")
    r = compress(g, parse_box_json(DOMAIN), solve_on(confirm), CompressOptions(StabilityOptions(timeout=timeout)),
                 stability=st)
    out.put((r.before, r.after, r.equivalence, r.equivalence_reason, r.time_s))


def in_child(target, args, cap: float):
    """target(*args, queue) in a child process; (its result or None, seconds)."""
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=target, args=(*args, q))
    t0 = time.perf_counter()
    p.start()
    try:
        res = q.get(timeout=cap)
    except Exception:  # noqa: BLE001 -- the cap (queue.Empty) or a child that died
        res = None
    p.join(5)
    if p.is_alive():
        p.kill()
        p.join()
    return res, time.perf_counter() - t0


def line(net, backend, method, st, wall, cap) -> str:
    head = f"  {backend:11} {method:14}"
    if st is None:
        return f"{head} did not finish in {cap:.0f} s"
    c = st.counts()
    phases = " ".join(f"{k} {v:.1f}" for k, v in st.phase_s.items())
    claims = (f"; claims {st.claims}+{st.unanswered} open: by split {st.confirmed.get('split', 0)}, exact "
              f"{st.confirmed.get('exact', 0)}, refuted {st.refuted_claims}") if st.claims + st.unanswered else ""
    harvest = f", harvested {st.harvested} (skipped {st.harvest_skipped})" if st.harvest else ""
    return (f"{head} active {c['active']:4} inactive {c['inactive']:4} unstable {c['unstable']:4} "
            f"unknown {c['unknown']:4} | bounds {st.by_bounds:4} pre-pass {st.by_samples:4} (attack {st.by_attack:3}) "
            f"bab {st.by_bab:3} | queries "
            f"{st.queries:4} (sat {st.sat}, unsat {st.unsat}, unknown {st.unknown}{harvest}{claims}) | "
            f"{st.time_s:8.1f} s [{phases}]")


def agree(a, b) -> bool:
    """Whether two classifications agree on every neuron both decided (an unknown is reported
    as such, not as a disagreement)."""
    import numpy as np
    from nnsmt.queries.stability import UNKNOWN
    return a.states.keys() == b.states.keys() and all(
        np.array_equal(x[(x != UNKNOWN) & (y != UNKNOWN)], y[(x != UNKNOWN) & (y != UNKNOWN)])
        for x, y in ((a.states[k], b.states[k]) for k in a.states))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nets", default=NETS)
    ap.add_argument("--backends", default="cvc5,milp:highs")
    ap.add_argument("--methods", default="single,per-neuron", help="single, per-neuron (models of earlier "
                    "queries reused), per-neuron-all (two problems per open neuron, as the seed's baseline)")
    ap.add_argument("--timeout", type=float, default=30, help="seconds per query (default 30)")
    ap.add_argument("--cap", type=float, default=600, help="seconds per run (default 600)")
    ap.add_argument("--confirm", default="cvc5", help="exact backend of a MILP's claims and of the equivalence")
    ap.add_argument("--no-guided", dest="guided", action="store_false",
                    help="no pre-pass (corners, attack, bab before the queries): the query methods alone")
    ap.add_argument("--compress", action="store_true", help="also compress each network and prove it")
    a = ap.parse_args()
    print(f"domain [0, 16]^64; {a.timeout:.0f} s per query, {a.cap:.0f} s per run; MILP claims confirmed by "
          f"bounds on sub-boxes, then {a.confirm}", flush=True)
    bad, ratios = False, {}
    for net in a.nets.split(","):
        print(net, flush=True)
        done = {}
        for be in a.backends.split(","):
            for m in a.methods.split(","):
                st, wall = in_child(_classify, (net, be, m, a.timeout, a.confirm, a.guided), a.cap)
                done[(be, m)] = st
                print(line(net, be, m, st, wall, a.cap), flush=True)
        fin = [s for s in done.values() if s is not None]
        same = all(agree(s, fin[0]) for s in fin)
        complete = [s for s in fin if s.counts()["unknown"] == 0]
        bad |= not same
        parts = []
        for be in a.backends.split(","):
            for m in a.methods.split(","):
                s, p = done.get((be, "single")), done.get((be, m))
                if s is None or m == "single":
                    continue
                if p is None:
                    r = a.cap / max(s.time_s, 1e-9)
                    parts.append(f"{be}: {m} / single >= {r:.1f}x ({m} did not finish in {a.cap:.0f} s)")
                else:
                    r = p.time_s / max(s.time_s, 1e-9)
                    parts.append(f"{be}: {m} / single = {r:.2f}x")
                ratios.setdefault((be, m), []).append((r, p is None))
        print(f"  identical classifications: {'yes' if same else 'NO (flagged)'}; complete runs {len(complete)}"
              f"/{len(done)}; " + "; ".join(parts), flush=True)
        if a.compress and fin:
            # the first with the fewest unknowns (kept as ReLUs): the first complete one if any
            use = min(fin, key=lambda s: s.counts()["unknown"])
            left = use.counts()["unknown"]
            if left:
                print(f"  compression with {left} unknown neurons kept as ReLUs", flush=True)
            res, wall = in_child(_compress, (net, use, a.confirm, 4 * a.timeout), a.cap)
            if res is None:
                print(f"  compression: did not finish in {a.cap:.0f} s", flush=True)
                continue
            b, af, eq, why, ts = res
            sizes = "; ".join(f"{k} {b[k]} -> {af[k]} ({100 * (1 - af[k] / max(b[k], 1)):.1f}% removed)"
                              for k in ("relus", "parameters", "connections", "nonzero_connections"))
            print(f"  compression: {sizes}; equivalence {eq}{' (' + why + ')' if why else ''} "
                  f"in {ts['prove']:.1f} s", flush=True)
    for (be, m), rs in ratios.items():
        low = sum(lb for _, lb in rs)
        print(f"median {m} / single over {len(rs)} networks, {be}: "
              f"{statistics.median(r for r, _ in rs):.2f}x" + (f" ({low} of them lower bounds)" if low else ""),
              flush=True)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
