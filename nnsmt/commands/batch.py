"""nnsmt batch: many verification instances, in a local pool or on Ray; resumable.

Results are written as they complete, each atomically: one VNN-COMP result file per instance
(the verdict, and for sat the counterexample), a JSON record beside it, and the summary CSV.
An instance whose record exists is skipped, so an interrupted run loses nothing finished.
With --split, an instance's sub-queries are tasks like any other, so one hard instance spreads
over all workers; a validated counterexample cancels its instance's other sub-queries.
"""

from __future__ import annotations

import csv
import math
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
                timeout = None
            if timeout is None or not math.isfinite(timeout) or timeout <= 0:
                raise InputError(f"{path}:{i}: timeout {r[t_col].strip()!r} is not a positive number of seconds")
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
    from nnsmt.backends.executors import get_executor
    from nnsmt.engine.driver import drive
    from nnsmt.engine.verify import VerifyOptions, outcome_json, plan
    from nnsmt.frontends import load_network, ort_evaluator
    from nnsmt.vnnlib import load_vnnlib

    src = Path(args.instances)
    backends = [b.strip() for b in args.backend.split(",") if b.strip()]
    for b in backends:
        get_backend(b)  # fail early, naming what is missing
    insts = read_instances(src, backends, args.timeout)
    summary = Path(args.output)
    outdir = Path(args.results_dir) if args.results_dir else summary.with_name(summary.stem + "_results")
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"{outdir}: cannot create the results folder: {e.strerror}") from None
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
        """(graph, property, onnxruntime replay) of an instance, loaded once per file pair."""
        net, prop = inst["folder"] / inst["onnx"], inst["folder"] / inst["vnnlib"]
        k = (str(net), str(prop))
        if k not in loaded:
            g, p = load_network(net), load_vnnlib(prop)
            loaded[k] = (g, p, ort_evaluator(str(net)) if g.meta.get("format") == "onnx" else None)
        return loaded[k]

    def write_summary():
        rows = [records[instance_key(i)] for i in insts if instance_key(i) in records]
        with open(summary.with_name(summary.name + ".tmp"), "w", newline="") as f:
            w = csv.DictWriter(f, SUMMARY_FIELDS, extrasaction="ignore")
            w.writeheader()
            w.writerows(rows)
        os.replace(summary.with_name(summary.name + ".tmp"), summary)

    def finish(key, inst, o):
        status = o.status
        if status == "unknown" and (o.reason == "timeout" or o.reason.endswith("(timeout)")):
            status = "timeout"  # the VNN-COMP word
        result_file = outdir / f"{key}.txt"
        _atomic_write(result_file, vnncomp_result(status, o.witness))
        rec = {"onnx": inst["onnx"], "vnnlib": inst["vnnlib"], "backend": inst["backend"],
               "status": status, "reason": o.reason, "time_s": round(o.stats.get("total_s", 0.0), 3),
               "result_file": str(result_file)}
        _atomic_write(outdir / f"{key}.json", json.dumps(outcome_json(o) | rec))
        records[key] = rec
        write_summary()
        progress.update(key, status)

    progress = Progress(len(insts), len(records), args.json)
    jobs = args.jobs or (os.cpu_count() or 1)
    executor = get_executor(args.executor, jobs, args.ray_address) if pending else None
    owner: dict[int, tuple] = {}

    def runs():
        """Made lazily, when a worker is free: an instance is planned when its turn comes, so
        its timeout counts from then and bounds the whole instance."""
        for inst in pending:
            key = instance_key(inst)
            try:
                g, p, fe = load(inst)
                opts = VerifyOptions(engine=args.engine, backend=inst["backend"], timeout=inst["timeout"],
                                     split=args.split, jobs=executor.jobs, memory_mb=args.memory)
                r = plan(g, p, opts, fe)
            except NnsmtError as e:
                from nnsmt.query import Outcome
                finish(key, inst, Outcome("error", "verify", inst["backend"], reason=str(e).splitlines()[0]))
                continue
            owner[id(r)] = (key, inst)
            yield r

    try:
        for r, o in (drive(runs(), executor, args.memory) if executor else ()):
            key, inst = owner.pop(id(r))
            finish(key, inst, o)
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
    sp.add_argument("--engine", default="auto", choices=["auto", "plain", "bounded", "split"],
                    help="verification engine per instance (default auto, as nnsmt verify)")
    sp.add_argument("--split", type=int, default=None, metavar="N",
                    help="the split engine's most sub-queries per instance (as verify --split), spread "
                    "over the workers; the instance's timeout bounds all of them")
    sp.add_argument("--json", action="store_true", help="machine-readable summary; no progress output")
