"""MNIST-FC (VNN-COMP): nnsmt vs nnenum and Marabou, one instance at a time (issue 14).

    python bench/mnistfc.py [--nets 256x2|256x4|256x6|all] [--tools nnsmt,nnenum,marabou]
                            [--timeout T] [--instances N]

Instances: ../shared/benchmarks/mnistfc/mnistfc_instances.csv, the 30 of each chosen network
(15 images x epsilon 0.03, 0.05), in the CSV's order; `--instances N` takes the first N of each
network. The timeout is the competition's (120 s for 256x2, 300 s for 256x4 and 256x6) unless
--timeout is given.

Tools: `nnsmt` is the plain command a user types, `nnsmt verify NET PROP --timeout T`;
`nnenum` is nnenum from the checkout named by NNENUM_DIR, run by NNENUM_PYTHON; `marabou` is
maraboupy (bench/peers.py, bench/README.md). A peer that cannot run here is skipped with one
line saying how to enable it. Each tool runs in its own process, killed at timeout + 10 s.

Prints per instance each tool's answer and time; then per tool solved, sat, unsat, unknown,
wrong (against known.csv and against the other tools' checked answers; every sat counterexample
is re-checked the VNN-COMP way, onnxruntime on the float32 input, tolerance 1e-4), total and
median time, and the ratio of total times against nnsmt.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MNIST = ROOT.parent / "shared" / "benchmarks" / "mnistfc"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from peers import CERTIFY_HELP, asked_tools, cell, certify, nnenum_processes, print_breakdown, run_tool, summarize, timeout_label, usable  # noqa: E402

NETS = ("256x2", "256x4", "256x6")
TOOLS = ("nnsmt", "nnenum", "marabou")


def choose(nets: list[str], first: int | None) -> list[tuple[str, str, str, float]]:
    """(onnx, vnnlib, expected, competition timeout) in the CSV's order, the first N per network."""
    known = {(r["onnx"], r["vnnlib"]): r["expected"] for r in csv.DictReader(open(MNIST / "known.csv"))}
    rows = []
    for n in nets:
        mine = [(o, v, known.get((o, v), "?"), float(t)) for o, v, t in csv.reader(open(MNIST / "mnistfc_instances.csv"))
                if o == f"mnist-net_{n}.onnx"]
        rows += mine[:first] if first is not None else mine
    return rows


def _name(onnx: str, vnn: str) -> str:
    """An instance as the tables name it, e.g. "256x2 prop_3_0.03"."""
    return onnx.removeprefix("mnist-net_").removesuffix(".onnx") + " " + vnn.removesuffix(".vnnlib")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nets", default="256x2", help="256x2 | 256x4 | 256x6 | all, or a comma list")
    ap.add_argument("--tools", default="nnsmt,nnenum,marabou", help="comma list of nnsmt, nnenum, marabou")
    ap.add_argument("--timeout", type=float, default=None, help="seconds per instance (default: the CSV's)")
    ap.add_argument("--instances", type=int, default=None, help="the first N instances of each network")
    ap.add_argument("--certify", action="store_true", help=CERTIFY_HELP)
    a = ap.parse_args()
    from nnsmt.vnnlib import load_vnnlib
    nets = list(NETS) if a.nets == "all" else [n.strip() for n in a.nets.split(",") if n.strip()]
    if bad := [n for n in nets if n not in NETS]:
        ap.error(f"unknown nets: {', '.join(bad)} (choose from {', '.join(NETS)} or all)")
    asked = asked_tools(ap, a.tools, TOOLS)
    rows = choose(nets, a.instances)
    timeouts = [a.timeout if a.timeout is not None else t for *_, t in rows]
    tl = timeout_label(a.timeout, timeouts)
    print(f"MNIST-FC {', '.join(nets)}: {len(rows)} instances, timeout {tl} each, tools {', '.join(asked)}; "
          f"nnsmt = `nnsmt verify NET PROP --timeout T` (defaults)")
    tools = usable(asked)
    if "nnenum" in tools:
        print(f"  nnenum: processes {nnenum_processes()}")
    res: dict = {t: [] for t in tools}
    print(f"  {'instance':24} {'known':6} " + " ".join(f"{t:>22}" for t in tools), flush=True)
    for (onnx, vnn, expected, _), timeout in zip(rows, timeouts):
        prop = load_vnnlib(MNIST / vnn)
        cells = []
        for t in tools:
            st, dt, ok, why = run_tool(t, MNIST / onnx, MNIST / vnn, prop, timeout)
            res[t].append((st, dt, ok, expected, why))
            cells.append(cell(st, dt, ok))
        name = _name(onnx, vnn)
        print(f"  {name:24} {expected:6} " + " ".join(f"{c:>22}" for c in cells), flush=True)
    summarize(tools, res)
    print_breakdown()
    if a.certify and "nnsmt" in tools:
        certify([(MNIST / o, MNIST / v, _name(o, v), t)
                 for (o, v, _, _), t, (st, *_) in zip(rows, timeouts, res["nnsmt"]) if st == "unsat"])


if __name__ == "__main__":
    main()
