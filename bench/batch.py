"""Batch throughput: ACAS Xu instances with --jobs 1 and --jobs 2, local and Ray, in one run.

    python bench/batch.py [--count 20] [--timeout 116] [--backend z3] [--encoding plain] [--executors local,ray]
                          [--split N [--split-only]]

Instances: every instance of ../shared/benchmarks/acasxu/known.csv, then the instance list in
order, skipping repeats, until --count. Each configuration runs the same instances from scratch
(fresh result folder). Prints the verdict counts, wall time, throughput (instances per minute),
the speed-up over --jobs 1 of the same executor and mode, and over the first row (local,
--jobs 1, no split); verdicts must agree across configurations. With --split N every executor
also runs `nnsmt batch --split N` (sub-queries spread over the workers) at --jobs 1 and 2.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ACAS = ROOT.parent / "shared" / "benchmarks" / "acasxu"


def choose(count: int) -> list[tuple[str, str]]:
    chosen = [(r["onnx"], r["vnnlib"]) for r in csv.DictReader(open(ACAS / "known.csv"))]
    for r in csv.reader(open(ACAS / "acasxu_instances.csv")):
        if len(chosen) >= count:
            break
        if (r[0], r[1]) not in chosen and (ACAS / r[0]).exists():
            chosen.append((r[0], r[1]))
    return chosen[:count]


def run(instances, executor, jobs, split, args) -> tuple[float, dict]:
    with tempfile.TemporaryDirectory() as d:
        lst = Path(d) / "instances.csv"
        lst.write_text("".join(f"{ACAS / a},{ACAS / b},{args.timeout}\n" for a, b in instances))
        out = Path(d) / "results.csv"
        cmd = [sys.executable, "-m", "nnsmt.cli", "batch", str(lst), "-o", str(out), "--json",
               "--backend", args.backend, "--jobs", str(jobs), "--executor", executor, "--encoding", args.encoding]
        if split:
            cmd += ["--split", str(split)]
        t0 = time.perf_counter()
        p = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if p.returncode not in (0, 3):
            raise SystemExit(f"batch failed ({executor}, jobs {jobs}, split {split}): {p.stderr[-2000:]}")
        verdicts = {(Path(r["onnx"]).name, Path(r["vnnlib"]).name): r["status"] for r in csv.DictReader(open(out))}
        return wall, verdicts


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=20)
    ap.add_argument("--timeout", type=float, default=116)
    ap.add_argument("--backend", default="z3")
    ap.add_argument("--encoding", default="plain")
    ap.add_argument("--executors", default="local,ray")
    ap.add_argument("--split", type=int, default=0, help="also run with batch --split N (default: no)")
    ap.add_argument("--split-only", action="store_true",
                    help="with --split: only the split configurations (row 1 is then local, jobs 1, split)")
    args = ap.parse_args()
    instances = choose(args.count)
    print(f"{len(instances)} ACAS Xu instances, backend {args.backend}, encoding {args.encoding}, "
          f"timeout {args.timeout:.0f} s")
    print(f"  {'executor':8} {'split':>5} {'jobs':>4} {'wall':>9} {'inst/min':>9} {'vs jobs 1':>9} "
          f"{'vs row 1':>9}  verdicts")
    reference, first = None, None
    if args.split_only and not args.split:
        raise SystemExit("--split-only needs --split N")
    for split in ([] if args.split_only else [0]) + ([args.split] if args.split else []):
        for ex in args.executors.split(","):
            base = None
            for jobs in (1, 2):
                wall, verdicts = run(instances, ex, jobs, split, args)
                counts = {}
                for v in verdicts.values():
                    counts[v] = counts.get(v, 0) + 1
                base, first = base or wall, first or wall
                decided = {k: v for k, v in verdicts.items() if v in ("sat", "unsat")}
                if reference is None:
                    reference = dict(decided)
                clash = [k for k, v in decided.items() if reference.get(k, v) != v]
                reference.update(decided)
                print(f"  {ex:8} {split or '-':>5} {jobs:4d} {wall:8.1f}s {60 * len(instances) / wall:9.2f} "
                      f"{base / wall:8.2f}x {first / wall:8.2f}x  {json.dumps(counts)}"
                      + (f"  DISAGREE on {clash}" if clash else ""), flush=True)


if __name__ == "__main__":
    main()
