"""nnsmt batch: many verification instances, in a local pool or on Ray; resumable.

Results are written as they complete, each atomically: one VNN-COMP result file per instance
(the verdict, and for sat the counterexample), a JSON record beside it, and the summary CSV.
An instance whose record exists is skipped, so an interrupted run loses nothing finished.
With --split, an instance's sub-queries are tasks like any other, so one hard instance spreads
over all workers; a validated counterexample cancels its instance's other sub-queries.
"""

from __future__ import annotations

import csv
import json
import os
import re
import sys
import time
from pathlib import Path

from nnsmt.errors import InputError, NnsmtError

from .common import add_command

SUMMARY_FIELDS = ["onnx", "vnnlib", "backend", "status", "reason", "time_s", "result_file"]


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def read_instances(path: Path, backends: list[str], default_timeout: float | None) -> list[dict]:
    """Rows of a VNN-COMP instance list (onnx, vnnlib, timeout; no header) or of a CSV with a
    header naming onnx|network, vnnlib|property and optionally timeout, backend. Paths are
    relative to the CSV's folder. Each row runs on every backend of `backends` unless it names
    its own."""
    try:
        rows = [r for r in csv.reader(path.read_text().splitlines()) if r and not r[0].startswith("#")]
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror}") from None
    if not rows:
        raise InputError(f"{path}: no instances")
    head = [c.strip().lower() for c in rows[0]]
    net_col = next((head.index(c) for c in ("onnx", "network") if c in head), None)
    if net_col is not None:
        prop_col = next((head.index(c) for c in ("vnnlib", "property") if c in head), None)
        if prop_col is None:
            raise InputError(f"{path}:1: header needs a vnnlib (or property) column")
        t_col = head.index("timeout") if "timeout" in head else None
        b_col = head.index("backend") if "backend" in head else None
        body, first = rows[1:], 2
    else:
        prop_col, t_col, b_col, net_col, body, first = 1, 2, None, 0, rows, 1
    out = []
    for i, r in enumerate(body, first):
        need = max(c for c in (net_col, prop_col, t_col, b_col) if c is not None)
        if len(r) <= need and not (t_col == need and len(r) == need):
            raise InputError(f"{path}:{i}: expected at least {need + 1} columns, got {len(r)}")
        timeout = default_timeout
        if t_col is not None and len(r) > t_col and r[t_col].strip() and default_timeout is None:
            try:
                timeout = float(r[t_col])
            except ValueError:
                raise InputError(f"{path}:{i}: timeout {r[t_col]!r} is not a number") from None
        bs = [r[b_col].strip()] if b_col is not None and len(r) > b_col and r[b_col].strip() else backends
        for b in bs:
            out.append({"onnx": r[net_col].strip(), "vnnlib": r[prop_col].strip(), "backend": b,
                        "timeout": timeout, "folder": path.parent})
    return out


def instance_key(inst: dict) -> str:
    raw = f"{Path(inst['onnx']).stem}__{Path(inst['vnnlib']).stem}__{inst['backend']}"
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", raw)


def vnncomp_result(status: str, cex) -> str:
    """VNN-COMP result file text: the verdict line, then the counterexample for sat."""
    text = f"{status}\n"
    if cex is not None:
        text += cex.vnncomp() + "\n"
    return text


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
    from nnsmt.backends import get_backend
    from nnsmt.backends.executors import Task, get_executor
    from nnsmt.errors import ValidationError
    from nnsmt.frontends import load_network, ort_evaluator
    from nnsmt.queries.split import split_result, start_split
    from nnsmt.queries.verify import verify_script
    from nnsmt.validate import validate_counterexample
    from nnsmt.vnnlib import load_vnnlib

    if args.split < 0:
        raise InputError(f"--split needs a positive number of sub-queries, got {args.split}")
    src = Path(args.instances)
    backends = [b.strip() for b in args.backend.split(",") if b.strip()]
    for b in backends:
        get_backend(b)  # fail early, naming what is missing
    insts = read_instances(src, backends, args.timeout)
    summary = Path(args.output)
    outdir = Path(args.results_dir) if args.results_dir else summary.with_name(summary.stem + "_results")
    outdir.mkdir(parents=True, exist_ok=True)
    records: dict[str, dict] = {}
    for inst in insts:
        rec = outdir / f"{instance_key(inst)}.json"
        if rec.exists():
            records[instance_key(inst)] = json.loads(rec.read_text())
    pending = [i for i in insts if instance_key(i) not in records]
    if args.json is False and records:
        print(f"resuming: {len(records)} of {len(insts)} instances already done", file=sys.stderr)

    loaded: dict[tuple, tuple] = {}

    def load(inst):
        """(graph, property, compiled script or None with --split, error), compiled in the
        driver; a bad instance becomes an error record, not the end of the run."""
        net, prop = inst["folder"] / inst["onnx"], inst["folder"] / inst["vnnlib"]
        k = (str(net), str(prop))
        if k not in loaded:
            try:
                g, p = load_network(net), load_vnnlib(prop)
                loaded[k] = (g, p, None if args.split else verify_script(g, p, encoding=args.encoding), None)
            except NnsmtError as e:
                loaded[k] = (None, None, None, str(e).splitlines()[0])
        return loaded[k]

    evaluators: dict[str, object] = {}

    def evaluator(inst, g):
        """onnxruntime replay for ONNX networks, made when first needed."""
        net = str(inst["folder"] / inst["onnx"])
        if net not in evaluators:
            evaluators[net] = ort_evaluator(net) if g.meta.get("format") == "onnx" else None
        return evaluators[net]

    def write_summary():
        rows = [records[instance_key(i)] for i in insts if instance_key(i) in records]
        with open(summary.with_name(summary.name + ".tmp"), "w", newline="") as f:
            w = csv.DictWriter(f, SUMMARY_FIELDS, extrasaction="ignore")
            w.writeheader()
            w.writerows(rows)
        os.replace(summary.with_name(summary.name + ".tmp"), summary)

    def finish(key, inst, status, reason, t, cex=None, extra=None):
        if status == "unknown" and (reason == "timeout" or reason.endswith("(timeout)")):
            status = "timeout"  # the VNN-COMP word
        result_file = outdir / f"{key}.txt"
        _atomic_write(result_file, vnncomp_result(status, cex))
        rec = {"onnx": inst["onnx"], "vnnlib": inst["vnnlib"], "backend": inst["backend"],
               "status": status, "reason": reason, "time_s": round(t, 3), "result_file": str(result_file)}
        _atomic_write(outdir / f"{key}.json", json.dumps(rec | (extra or {})))
        records[key] = rec
        write_summary()
        progress.update(key, status)

    progress = Progress(len(insts), len(records), args.json)
    executor = get_executor(args.executor, args.jobs, args.ray_address) if pending else None
    owner: dict[str, str] = {}  # task key -> instance key
    insts_by_key = {instance_key(i): i for i in pending}
    splits: dict[str, object] = {}  # instance key -> SplitRun still being solved

    def finish_split(key):
        r = split_result(splits.pop(key))
        finish(key, insts_by_key[key], r["status"], r["reason"], r["stats"].get("total_s", 0.0),
               r["counterexample"], {"split": r["stats"]})

    def tasks():
        """Made lazily, when a worker is free: an instance's split is planned when its turn
        comes, so its timeout counts from then and bounds the whole instance."""
        for inst in pending:
            key = instance_key(inst)
            g, p, script, err = load(inst)
            if err:
                finish(key, inst, "error", err, 0.0)
                continue
            if not args.split:
                owner[key] = key
                yield Task(key, inst["backend"], script, inst["timeout"], args.memory)
                continue
            try:
                splits[key] = start_split(g, p, args.split, inst["timeout"], evaluator(inst, g), jobs=executor.jobs)
            except NnsmtError as e:
                finish(key, inst, "error", str(e).splitlines()[0], 0.0)
                continue
            run = splits[key]
            while (item := run.take()) is not None:
                index, script, left = item
                owner[f"{key}#{index}"] = key
                yield Task(f"{key}#{index}", inst["backend"], script, left, args.memory)
            if key in splits and run.done:  # decided by bounds, or out of time with nothing running
                finish_split(key)

    try:
        for task_key, res in (executor.run(tasks()) if executor else ()):
            key = owner.pop(task_key)
            inst = insts_by_key[key]
            if key in splits:
                run = splits[key]
                run.record(int(task_key.rsplit("#", 1)[1]), res)
                if run.done:
                    executor.cancel([f"{key}#{i}" for i in run.outstanding])
                    finish_split(key)
                continue
            if args.split:
                continue  # a sub-query of an instance already decided
            g, p, _, _ = load(inst)
            status, reason, cex = res.status, res.reason, None
            if status == "sat":
                try:
                    cex = validate_counterexample(g, p, res.model, evaluator(inst, g))
                except ValidationError as e:
                    status, reason = "error", str(e).splitlines()[0]
            t = sum(v for k, v in res.stats.items() if k.endswith("_s"))
            finish(key, inst, status, reason, t, cex)
        for key in list(splits):  # out of time, nothing was left running
            finish_split(key)
    finally:
        progress.close()
    write_summary()
    counts: dict[str, int] = {}
    for r in records.values():
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    if args.json:
        print(json.dumps({"summary": str(summary), "results": str(outdir), "counts": counts}, indent=2))
    else:
        print(f"{len(records)} instances: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
              + f"; summary {summary}, result files in {outdir}/")
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
    sp.add_argument("--encoding", default="plain", help="ReLU encoding (default plain)")
    sp.add_argument("--split", type=int, default=0, metavar="N",
                    help="split each instance's input region into at most N sub-queries (as verify --split; "
                    "bounded encoding) spread over the workers; the instance's timeout bounds all of them")
    sp.add_argument("--json", action="store_true", help="machine-readable summary; no progress output")
