"""nnsmt batch: many verification instances, in a local pool or on Ray; resumable.

Results are written as they complete, each atomically: one VNN-COMP result file per instance
(the verdict, and for sat the counterexample), a JSON record beside it, and the summary CSV.
An instance whose record exists is skipped, so an interrupted run loses nothing finished.
With --split, an instance's sub-queries are tasks like any other, so one hard instance spreads
over all workers; a validated counterexample cancels its instance's other sub-queries.
"""

from __future__ import annotations

import sys

from .common import BACKENDS, add_command, check_output, names, positive_int, show, timeout_seconds
from .options import add_engine_args, from_args


def run(args) -> int:
    from nnsmt.engine.batch import Batch, BatchOptions
    from nnsmt.engine.progress import BatchProgress
    check_output(args.output)
    opts = from_args(BatchOptions, args, backends=tuple(names(args.backend)), memory_mb=args.memory)
    batch = Batch(args.instances, args.output, args.results_dir, opts)
    if not args.json and batch.records:
        print(f"resuming: {len(batch.records)} of {len(batch.instances)} instances already done", file=sys.stderr)
    progress = BatchProgress(len(batch.instances), len(batch.records), args.json)
    try:
        counts = batch.run(progress.update)
    finally:
        progress.close()
    show(args, {"summary": str(batch.summary), "results": str(batch.results), "counts": counts},
         [f"{len(batch.records)} instances: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
          + f"; summary {batch.summary}, result files in {batch.results}/"])
    return 3 if counts.get("error") else 0


def register(sub):
    sp = add_command(sub, "batch", "run many instances (a VNN-COMP instance list or a CSV of queries) in a local "
                     "process pool or on Ray; resumable", run, json="summary; no progress output")
    sp.add_argument("instances", help="CSV: onnx,vnnlib,timeout rows (VNN-COMP), or a header naming "
                    "onnx|network, vnnlib|property[, timeout][, backend]; paths relative to the CSV. A property may "
                    "be VNN-LIB 1.0 or 2 (one network: the row's model, in the query's declared semantics)")
    sp.add_argument("-o", "--output", required=True, help="summary CSV to write")
    sp.add_argument("--results-dir", help="per-instance result files (default: <output stem>_results/)")
    sp.add_argument("--backend", default="z3", help=f"backend (default z3), or a comma-separated list to run every "
                    f"instance on each: {BACKENDS}")
    sp.add_argument("--timeout", type=timeout_seconds, default=None, help="seconds per instance (overrides the CSV's)")
    sp.add_argument("--memory", type=positive_int, default=None, help="memory limit per solver process in MB")
    add_engine_args(sp, "per instance, as nnsmt verify; --jobs counts tasks at once, instances and their\n"
                    "sub-queries alike, and an instance's timeout bounds all of its sub-queries")
