"""The cost of sound float32 semantics: ACAS Xu instances as VNN-LIB 2 queries declared
`float32` (unsat must hold for IEEE float32 execution in any summation order; sat must replay
in onnxruntime in float32) against the same queries declared `real` (exact over the reals).

    python bench/float_semantics.py [--timeout 60] [--instances default|known|all|N]

Both run the plain standard command a user types, `nnsmt verify QUERY --network N=NET.onnx
--timeout T` (the auto engine), one process per instance, killed at timeout + 10 s. The queries
are the VNN-LIB 1.0 properties written as VNN-LIB 2 (`nnsmt.assignment.vnnlib1_to_2`), with the
bench's instance set of bench/acasxu.py. Prints per semantics: solved, unsat, sat, unknown, total
time; the instances where the answers differ; and the figure of issue 13: float32 solved / real
solved (target >= 90%), with the time ratio.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from acasxu import ACAS, choose  # noqa: E402  (the same instance set)

NNSMT = str(Path(sys.executable).parent / "nnsmt")


def write_queries(rows, folder: Path) -> dict:
    from nnsmt.assignment import vnnlib1_to_2
    from nnsmt.vnnlib import load_vnnlib
    out = {}
    for _, vnn, _ in rows:
        if vnn in out:
            continue
        prop = load_vnnlib(ACAS / vnn)
        for t in ("float32", "real"):
            p = folder / f"{Path(vnn).stem}_{t}.vnnlib"
            p.write_text(vnnlib1_to_2(prop, (1, 1, 1, 5), (1, 5), dtype=t))
            out[vnn, t] = p
    return out


def run(query: Path, onnx: str, timeout: float) -> tuple[str, float]:
    t0 = time.perf_counter()
    try:
        r = subprocess.run([NNSMT, "verify", str(query), "--network", f"N={ACAS / onnx}",
                            "--timeout", str(timeout)], capture_output=True, text=True,
                           timeout=timeout + 10)
        verdict = (r.stdout.splitlines() or ["error"])[0].strip() if r.returncode == 0 else "error"
    except subprocess.TimeoutExpired:
        verdict = "killed"
    return verdict, time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--timeout", type=float, default=60)
    ap.add_argument("--instances", default="default")
    a = ap.parse_args()
    rows = choose(a.instances)
    res: dict = {}
    with tempfile.TemporaryDirectory() as d:
        queries = write_queries(rows, Path(d))
        for onnx, vnn, expected in rows:
            line = [f"{onnx[13:16]} {vnn:15}"]
            for t in ("real", "float32"):
                v, s = run(queries[vnn, t], onnx, a.timeout)
                res[onnx, vnn, t] = (v, s)
                line.append(f"{t}: {v:9} {s:6.1f}s")
            print("  ".join(line) + (f"  (known: {expected})" if expected != "?" else ""), flush=True)
    print()
    solved = {}
    for t in ("real", "float32"):
        vs = [res[o, v, t] for o, v, _ in rows]
        n = {k: sum(1 for x, _ in vs if x == k) for k in ("unsat", "sat")}
        solved[t] = n["unsat"] + n["sat"]
        tot = sum(s for _, s in vs)
        print(f"{t:8} solved {solved[t]:3}/{len(rows)}  unsat {n['unsat']:3}  sat {n['sat']:3}  "
              f"other {len(rows) - solved[t]:3}  total {tot:8.1f} s")
        res[t] = tot
    diff = [(o, v, res[o, v, 'real'][0], res[o, v, 'float32'][0]) for o, v, _ in rows
            if res[o, v, "real"][0] in ("sat", "unsat") and res[o, v, "float32"][0] in ("sat", "unsat")
            and res[o, v, "real"][0] != res[o, v, "float32"][0]]
    for o, v, r, f in diff:
        print(f"answers differ: {o} {v}: real {r}, float32 {f}")
    ratio = solved["float32"] / solved["real"] if solved["real"] else float("nan")
    print(f"\nfloat32 solved / real solved = {solved['float32']}/{solved['real']} = {ratio:.1%} "
          f"(target >= 90%); time float32 / real = {res['float32'] / res['real']:.2f}x")


if __name__ == "__main__":
    main()
