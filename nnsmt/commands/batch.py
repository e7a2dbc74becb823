"""nnsmt batch: many verification instances, in a local pool or on Ray; resumable.

Results are written as they complete, each atomically: one VNN-COMP result file per instance
(the verdict, and for sat the counterexample), a JSON record beside it, and the summary CSV.
An instance whose record exists is skipped, so an interrupted run loses nothing finished.
With --split, an instance's sub-queries are tasks like any other, so one hard instance spreads
over all workers; a validated counterexample cancels its instance's other sub-queries.
"""

from __future__ import annotations

import json
import sys
import time

from .common import add_command


class Progress:
    def __init__(self, total: int, done: int, quiet: bool):
        self.total, self.done, self.t0 = total, done, time.perf_counter()
        self.counts: dict[str, int] = {}
        self.bar = None
        if not quiet and sys.stderr.isatty():
            from rich.progress import BarColumn, MofNCompleteColumn, Progress as P, TextColumn, TimeElapsedColumn
            self.bar = P(TextColumn("batch"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                         TextColumn("{task.description}"), transient=False)
            self.bar.start()
            self.task = self.bar.add_task("", total=total, completed=done)
        self.quiet = quiet

    def update(self, key: str, status: str):
        self.done += 1
        self.counts[status] = self.counts.get(status, 0) + 1
        counts = " ".join(f"{k}={v}" for k, v in sorted(self.counts.items()))
        if self.bar is not None:
            self.bar.update(self.task, advance=1, description=counts)
        elif not self.quiet:
            print(f"[{self.done}/{self.total} {time.perf_counter() - self.t0:6.1f}s] {status:8} {key}  ({counts})",
                  file=sys.stderr)

    def close(self):
        if self.bar is not None:
            self.bar.stop()


def run(args) -> int:
    from nnsmt.engine.batch import Batch, BatchOptions
    opts = BatchOptions(tuple(b.strip() for b in args.backend.split(",") if b.strip()), args.timeout,
                        args.memory, args.jobs, args.executor, args.ray_address, args.engine, args.split)
    batch = Batch(args.instances, args.output, args.results_dir, opts)
    if not args.json and batch.records:
        print(f"resuming: {len(batch.records)} of {len(batch.instances)} instances already done", file=sys.stderr)
    progress = Progress(len(batch.instances), len(batch.records), args.json)
    try:
        counts = batch.run(progress.update)
    finally:
        progress.close()
    if args.json:
        print(json.dumps({"summary": str(batch.summary), "results": str(batch.results), "counts": counts}, indent=2))
    else:
        print(f"{len(batch.records)} instances: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
              + f"; summary {batch.summary}, result files in {batch.results}/")
    return 3 if counts.get("error") else 0


def register(sub):
    sp = add_command(sub, "batch", "run many instances (a VNN-COMP instance list or a CSV of queries) "
                     "in a local process pool or on Ray; resumable", run)
    sp.add_argument("instances", help="CSV: onnx,vnnlib,timeout rows (VNN-COMP), or a header naming "
                    "onnx|network, vnnlib|property[, timeout][, backend]; paths relative to the CSV")
    sp.add_argument("-o", "--output", required=True, help="summary CSV to write")
    sp.add_argument("--results-dir", help="per-instance result files (default: <output stem>_results/)")
    sp.add_argument("--backend", default="z3", help="backend, or a comma-separated list to run every instance on each")
    sp.add_argument("--timeout", type=float, default=None, help="seconds per instance (overrides the CSV's)")
    sp.add_argument("--memory", type=int, default=None, help="memory limit per solver process in MB")
    sp.add_argument("--jobs", type=int, default=None, help="tasks at once (default: number of cores)")
    sp.add_argument("--executor", default="local", choices=["local", "ray"], help="local process pool (default) or Ray")
    sp.add_argument("--ray-address", default=None, help='Ray cluster address (e.g. "auto" after `ray start --head`); '
                    "default: start a local Ray instance")
    sp.add_argument("--engine", default="auto", choices=["auto", "plain", "bounded", "split"],
                    help="verification engine per instance (default auto, as nnsmt verify)")
    sp.add_argument("--split", type=int, default=None, metavar="N",
                    help="the split engine's most sub-queries per instance (as verify --split), spread "
                    "over the workers; the instance's timeout bounds all of them")
    sp.add_argument("--json", action="store_true", help="machine-readable summary; no progress output")
