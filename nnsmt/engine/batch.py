"""Many verification instances (`nnsmt batch`): the instance list, a VNN-COMP result file and a
JSON record per instance written atomically as it completes, resumption from those records, the
summary CSV, and one `nnsmt.engine.driver.drive` over every pending instance."""

from __future__ import annotations

import csv
import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from nnsmt.errors import InputError, NnsmtError
from nnsmt.query import Outcome, first_line

SUMMARY_FIELDS = ["onnx", "vnnlib", "backend", "status", "reason", "time_s", "result_file"]


def atomic_write(path: Path, text: str) -> None:
    """Write `text` to `path` through a temporary file and a rename: never half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def read_instances(path: Path, backends: list[str], default_timeout: float | None) -> list[dict]:
    """The instances of a VNN-COMP instance list (onnx, vnnlib, timeout; no header) or of a CSV
    with a header naming onnx|network, vnnlib|property and optionally timeout, backend.

    Args:
        path: the CSV; the paths in it are relative to its folder.
        backends: every row runs on each of these, unless it names its own backend.
        default_timeout: seconds per instance; when given it overrides the CSV's timeouts.

    Returns:
        One dict per (row, backend): onnx, vnnlib, backend, timeout and folder (the CSV's).

    Raises:
        InputError: an unreadable or empty file, a missing column, a bad timeout (the line named).
    """
    try:
        text = path.read_text()
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror}") from None
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not UTF-8 text (byte {e.start})") from None
    if "\0" in text:
        raise InputError(f"{path}:{text[:text.index(chr(0))].count(chr(10)) + 1}: a NUL byte in the instance list")
    rows = [r for r in csv.reader(text.splitlines()) if r and not r[0].startswith("#")]
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
    """The file-name-safe key of an instance: network stem, property stem and backend."""
    raw = f"{Path(inst['onnx']).stem}__{Path(inst['vnnlib']).stem}__{inst['backend']}"
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", raw)


def _files(inst: dict) -> tuple[str, str]:
    """(model path, property path) of an instance."""
    return str(inst["folder"] / inst["onnx"]), str(inst["folder"] / inst["vnnlib"])


def vnncomp_result(status: str, cex) -> str:
    """VNN-COMP result file text: the verdict line, then the counterexample for sat."""
    text = f"{status}\n"
    if cex is not None:
        text += cex.vnncomp() + "\n"
    return text


def vnncomp_status(o: Outcome) -> str:
    """The VNN-COMP word for an outcome: its status, but "timeout" for an unknown by timeout."""
    if o.status == "unknown" and (o.reason == "timeout" or o.reason.endswith("(timeout)")):
        return "timeout"
    return o.status


@dataclass(frozen=True)
class BatchOptions:
    """How every instance of a batch is verified.

    Attributes:
        backends: each instance runs on every one of these (unless its row names one).
        timeout: seconds per instance (None: the CSV's, or no limit).
        memory_mb: memory cap per solver process.
        jobs: tasks at once (None: one per core).
        executor, ray_address: local processes or Ray.
        engine, split: the verification engine per instance (`nnsmt.engine.verify.VerifyOptions`).
    """

    backends: tuple[str, ...] = ("z3",)
    timeout: float | None = None
    memory_mb: int | None = None
    jobs: int | None = None
    executor: str = "local"
    ray_address: str | None = None
    engine: str = "auto"
    split: int | None = None


class Batch:
    """An instance list with its results folder and summary CSV, resumable: an instance whose
    JSON record exists in the folder is done.

    Attributes:
        instances: every instance (`read_instances`).
        summary: the summary CSV.
        results: the folder of result files and records.
        records: instance key -> its summary row, for the instances done.
    """

    def __init__(self, instances: Path, summary: Path, results: Path | None = None,
                 options: BatchOptions = BatchOptions()):
        from nnsmt.backends import get_backend
        for b in options.backends:
            get_backend(b)  # fail early, naming what is missing
        self.options = options
        # a row given twice is one instance (one record, one result file): run once
        self.instances = list({instance_key(i): i for i in
                               read_instances(Path(instances), list(options.backends), options.timeout)}.values())
        self.summary = Path(summary)
        self.results = Path(results) if results else self.summary.with_name(self.summary.stem + "_results")
        try:
            self.results.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise InputError(f"{self.results}: cannot create the results folder: {e.strerror}") from None
        self.records: dict[str, dict] = {}
        for inst in self.instances:
            rec = self.results / f"{instance_key(inst)}.json"
            if rec.exists():
                self.records[instance_key(inst)] = json.loads(rec.read_text())
        self._loaded: dict[tuple, tuple] = {}

    @property
    def pending(self) -> list[dict]:
        """The instances without a record yet."""
        return [i for i in self.instances if instance_key(i) not in self.records]

    def counts(self) -> dict[str, int]:
        """Status -> how many instances have it, over the records."""
        counts: dict[str, int] = {}
        for r in self.records.values():
            counts[r["status"]] = counts.get(r["status"], 0) + 1
        return counts

    def write_summary(self) -> None:
        """The summary CSV of the records, in instance order (atomically)."""
        rows = [self.records[instance_key(i)] for i in self.instances if instance_key(i) in self.records]
        tmp = self.summary.with_name(self.summary.name + ".tmp")
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, SUMMARY_FIELDS, extrasaction="ignore")
            w.writeheader()
            w.writerows(rows)
        os.replace(tmp, self.summary)

    def finish(self, inst: dict, o: Outcome) -> dict:
        """Write an instance's result file and JSON record, and the summary; its summary row."""
        from .verify import outcome_json
        key = instance_key(inst)
        std = self._loaded.get(_files(inst), (None,) * 5)[3]
        if std is not None:  # VNN-LIB 2: its semantics, and the standard's assignment
            from nnsmt.assignment import format_assignment
            from .standard import assignment, settle
            o = settle(std, o)
        status = vnncomp_status(o)
        result_file = self.results / f"{key}.txt"
        if std is not None and o.status == "sat":
            text = f"{status}\n" + format_assignment(assignment(std, o.witness))
        else:
            text = vnncomp_result(status, o.witness)
        atomic_write(result_file, text)
        rec = {"onnx": inst["onnx"], "vnnlib": inst["vnnlib"], "backend": inst["backend"],
               "status": status, "reason": o.reason, "time_s": round(o.stats.get("total_s", 0.0), 3),
               "result_file": str(result_file)}
        atomic_write(self.results / f"{key}.json", json.dumps(outcome_json(o) | rec))
        self.records[key] = rec
        self.write_summary()
        return rec

    def load(self, inst: dict) -> tuple:
        """(graph, property, replay or None, the VNN-LIB 2 instance or None, float type) of an
        instance, loaded once per file pair. A VNN-LIB 2 query goes the way of `nnsmt verify
        QUERY --network NAME=FILE` (`nnsmt.engine.standard`), its one network the row's model;
        a VNN-LIB 1.0 property the way of `nnsmt verify NET PROP`."""
        from nnsmt.frontends import load_network, ort_evaluator
        from nnsmt.vnnlib import load_vnnlib
        from nnsmt.vnnlib2 import is_vnnlib2
        k = _files(inst)
        if k not in self._loaded:
            net, prop = k
            if is_vnnlib2(prop):
                from .standard import one_network
                s = one_network(prop, net)
                self._loaded[k] = (s.graph, s.prop, s.float_eval, s, s.float_type)
            else:
                g, p = load_network(net), load_vnnlib(prop)
                fe = ort_evaluator(net) if g.meta.get("format") == "onnx" else None
                self._loaded[k] = (g, p, fe, None, "")
        return self._loaded[k]

    def run(self, on_result: Callable[[str, str], None] = lambda key, status: None) -> dict[str, int]:
        """Verify every pending instance on one executor, writing each result as it completes;
        `on_result(key, status)` sees each. An instance that cannot be loaded or planned is an
        error record. Returns `counts()`."""
        from nnsmt.backends.executors import get_executor
        from .driver import drive
        from .verify import VerifyOptions, plan
        opts, pending = self.options, self.pending
        executor = get_executor(opts.executor, opts.jobs or (os.cpu_count() or 1), opts.ray_address) \
            if pending else None
        owner: dict[int, dict] = {}

        def done(inst, o):
            on_result(instance_key(inst), self.finish(inst, o)["status"])

        def runs():
            """Made lazily, when a worker is free: an instance is planned when its turn comes, so
            its timeout counts from then and bounds the whole instance."""
            for inst in pending:
                try:
                    g, p, fe, _, float_type = self.load(inst)
                    r = plan(g, p, VerifyOptions(engine=opts.engine, backend=inst["backend"],
                                                 timeout=inst["timeout"], split=opts.split,
                                                 jobs=executor.jobs, memory_mb=opts.memory_mb), fe, float_type)
                except NnsmtError as e:
                    done(inst, Outcome("error", "verify", inst["backend"], reason=first_line(e)))
                    continue
                owner[id(r)] = inst
                yield r

        for r, o in (drive(runs(), executor, opts.memory_mb) if executor else ()):
            done(owner.pop(id(r)), o)
        self.write_summary()
        return self.counts()
