"""nnsmt train: find weights that classify every data point (checked exactly), write the trained
model, and report its accuracy measured by onnxruntime; or prove that no such weights exist."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from .common import add_backend_args, add_command, add_model_args, load_model, model_options

TRAIN_EXIT_CODES = """exit codes:
  0   trained: every point classified correctly (checked exactly), model written
  10  unsat: no network of this architecture (with the frozen layers / weight bound given)
      classifies these points; the unsat core's points are listed when the solver gives one
  20  unknown (timeout, or the solver gave up; the reason is printed)
  2   bad input or usage: unreadable model or data file, sizes or labels that do not fit
  3   error: the solver failed or its model failed the exact check (never reported as trained),
      or the written file does not reach 100% in onnxruntime even at float64
"""
EXIT = {"sat": 0, "unsat": 10, "unknown": 20, "error": 3}

FREE_HELP = """layers that become solver variables; the others keep their values from the model
(fine-tuning / repair). LAYERS: 'all' (default), 'last', 'first', an affine layer name as
`nnsmt inspect` prints it (a1, a2, ...), its 1-based index among the affine layers (2), or a
comma-separated list (a1,a3)"""


def _progress(args):
    """A rich status line on stderr (only on a terminal and without --json), else a no-op."""
    if args.json or not (sys.stdout.isatty() and sys.stderr.isatty()):
        return None, (lambda *a, **k: None)
    try:
        from rich.console import Console
    except ImportError:
        return None, (lambda *a, **k: None)
    console = Console(stderr=True)
    status = console.status("loading", spinner="dots")
    t0 = time.perf_counter()

    def show(event, **k):
        el = f"[{time.perf_counter() - t0:6.1f} s]"
        if event == "hints":
            status.update(f"{el} float fit for phase hints")
        elif event == "narrow":
            status.update(f"{el} narrow first: hidden width {k['width']} (of {k['full']})")
        elif event == "encode":
            status.update(f"{el} round {k['round']}: encoding {k['points']}/{k['total']} points")
        elif event == "solve":
            status.update(f"{el} round {k['round']}: solving {k['points']}/{k['total']} points "
                          f"({k.get('coarse', 0)} coarse stand-ins, {k['logic']})")
        elif event == "check":
            status.update(f"{el} round {k['round']}: exact check of every point")
        elif event in ("write", "replay"):
            status.update(f"{el} {k.get('what', event)}")
    return status, show


def load_problem(args):
    """The model (`args.model`, its loader options) and the data (`args.data`) as a TrainProblem
    with `--free` / `--weight-bound` applied: what train, compile --mode train and diff --mode
    train all solve."""
    from nnsmt.data import load_csv
    from nnsmt.errors import InputError
    from nnsmt.queries.train import make_problem
    if args.data is None:
        raise InputError("--mode train needs --data DATA.csv")
    g = load_model(args.model, **model_options(args))
    k = g.dims()[g.outputs[0]]
    data = load_csv(args.data, n_features=g.inputs[0].dim, n_classes=2 if k == 1 else k)
    return make_problem(g, data, free=args.free, weight_bound=args.weight_bound)


def run(args) -> int:
    from nnsmt.backends import get_backend
    from nnsmt.queries.train import train, trained_graph
    t0 = time.perf_counter()
    get_backend(args.backend)  # fail early, naming what is missing
    problem = load_problem(args)
    data = problem.data
    fmt = args.format or _format_of(args.output)
    status, show = _progress(args)
    if status is not None:
        status.start()
    try:
        res = train(problem, backend=args.backend, encoding=args.encoding, strategy=args.strategy,
                    timeout=args.timeout, coarse_bits=args.coarse_bits, hints=not args.no_hints,
                    widen=not args.no_widen, progress=show)
        out = {"status": res.status, "reason": res.reason, "backend": args.backend,
               "network": args.model, "data": args.data, "architecture": problem.arch(),
               "weights": problem.n_weights(), "free_weights": problem.n_free(),
               "free_layers": list(problem.free), "points": data.n, "encoding": res.encoding,
               "strategy": args.strategy, "rounds": res.rounds, "points_seen_by_solver": res.used,
               "notes": list(res.notes),
               "time": {"total_s": 0.0, **{k2: round(v, 4) for k2, v in res.stats.items()}}}
        written = None
        if res.status == "sat":
            out["exact_accuracy"] = 1.0
            if args.output:
                show("write", what=f"writing {args.output}")
                written = _write(problem, trained_graph(problem, res.params), args, fmt, show)
                out["output"] = written
    finally:
        if status is not None:
            status.stop()
    out["time"]["total_s"] = round(time.perf_counter() - t0, 4)
    if res.status == "unsat":
        out["proved"] = res.statement
        out["core"] = [{"row": i, "where": data.where(i)} for i in res.core]
    status_code = res.status
    if written is not None and written.get("accuracy_onnxruntime", 1.0) < 1.0:
        status_code = "error"
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        _print(out, res, data, problem)
    return EXIT[status_code]


def _format_of(path) -> str:
    if path is None:
        return "onnx"
    ext = Path(path).suffix.lower()
    return {".json": "json", ".safetensors": "safetensors"}.get(ext, "onnx")


def _ort_accuracy(path, problem) -> float:
    from nnsmt.frontends import ort_evaluator
    from nnsmt.queries.train_io import classify_float
    f = ort_evaluator(path)
    outs = np.array([f(x) for x in problem.data.x])
    return float(np.mean(classify_float(outs, problem)))


def _write(problem, trained, args, fmt, show) -> dict:
    """Write the trained model; for ONNX, measure accuracy with onnxruntime on the written file
    and fall back to float64 when float32 rounding broke a point."""
    src_fmt = problem.source.meta.get("format", "")
    info: dict = {"path": args.output, "format": fmt}
    if fmt == "safetensors":
        from nnsmt.queries.train_io import save_safetensors
        info["exact"] = save_safetensors(trained, args.output, "float64" if args.dtype == "float64" else "float32")
        info["dtype"] = "float64" if args.dtype == "float64" else "float32"
        return info
    if fmt == "json":
        from nnsmt.serialize import save_json
        save_json(trained, args.output)
        info.update(exact=True, dtype="exact rationals")
        return info
    if src_fmt in ("torch", "safetensors"):
        return _write_state_dict(problem, trained, args, src_fmt)
    if src_fmt != "onnx":
        from nnsmt.errors import UnsupportedError
        raise UnsupportedError(f"cannot write an ONNX model for a {src_fmt or 'non-ONNX'} source; "
                               "use --format json or safetensors")
    from nnsmt.frontends.onnx_writeback import write_back
    rep = write_back(trained, problem.source.meta["source"], args.output,
                     "float64" if args.dtype == "float64" else "source")
    info.update(same_graph=rep.same_graph, dtype=rep.dtype, exact=rep.exact)
    if rep.reason:
        info["note"] = f"wrote a fresh ONNX graph: {rep.reason}"
    show("replay", what="onnxruntime replay of the written file")
    acc = _ort_accuracy(args.output, problem)
    info["accuracy_onnxruntime"] = acc
    if acc < 1.0 and args.dtype == "auto":
        info["warning"] = (f"at {rep.dtype} the rounded weights classify only {acc:.1%} of the points "
                           "in onnxruntime; rewrote the model in float64 (a fresh graph, double input)")
        rep = write_back(trained, problem.source.meta["source"], args.output, "float64")
        info.update(same_graph=False, dtype="float64", exact=rep.exact)
        info["accuracy_onnxruntime"] = _ort_accuracy(args.output, problem)
    return info


def _write_state_dict(problem, trained, args, src_fmt) -> dict:
    from nnsmt.errors import UnsupportedError
    try:
        from nnsmt.frontends.torch_frontend import save_state_dict_like
    except ImportError:
        raise UnsupportedError(f"writing a trained {src_fmt} model needs the PyTorch frontend "
                               "(nnsmt.frontends.torch_frontend.save_state_dict_like), which is "
                               "not installed; use --format json or safetensors") from None
    params = {}
    for n in problem.graph.nodes:
        if hasattr(n, "weight") and n.name in problem.free:
            params[n.weight.name] = trained.node(n.name).weight.value
            params[n.bias.name] = trained.node(n.name).bias.value
    save_state_dict_like(problem.source, params, problem.source.meta["source"], args.output,
                         "safetensors" if src_fmt == "safetensors" else "pt")
    return {"path": args.output, "format": src_fmt}


def _print(out, res, data, problem):
    st = out["status"]
    seen = f"solver saw {out['points_seen_by_solver']} of {data.n} points in {out['rounds']} round(s)"
    if st == "sat":
        print(f"sat: trained {out['architecture']} ({out['free_weights']} of {out['weights']} weights "
              f"free) classifies all {data.n} points correctly (checked exactly; encoding "
              f"{out['encoding']}, {seen})")
        for note in out["notes"]:
            if "widened" in note:
                print(f"note: {note}")
        w = out.get("output")
        if w:
            how = "same graph, new initializers" if w.get("same_graph") else "fresh graph"
            if w["format"] != "onnx":
                how = w["format"]
            rounded = "" if w.get("exact", True) else ", rounded from the exact rationals"
            print(f"wrote {w['path']} ({how}; {w.get('dtype', '')}{rounded})")
            if "note" in w:
                print(f"note: {w['note']}")
            if "warning" in w:
                print(f"WARNING: {w['warning']}", file=sys.stderr)
            if "accuracy_onnxruntime" in w:
                acc = w["accuracy_onnxruntime"]
                print(f"onnxruntime accuracy on {w['path']}: {round(acc * data.n)}/{data.n} ({acc:.1%})")
                if acc < 1.0:
                    print("ERROR: the written model does not classify every point in onnxruntime",
                          file=sys.stderr)
        else:
            print("(no -o given: nothing written)")
    elif st == "unsat":
        print(f"unsat: {out['proved']} ({seen})")
        if out["core"]:
            print(f"unsat core: {len(out['core'])} points: " + ", ".join(c["where"] for c in out["core"]))
    elif st == "unknown":
        print(f"unknown ({out['reason']}) ({seen})")
    else:
        print("error")
        print(out["reason"], file=sys.stderr)


def register(sub):
    sp = add_command(sub, "train", "find weights that classify every data point (exactly checked) "
                     "and write the trained model, or prove that none exist", run)
    sp.epilog = TRAIN_EXIT_CODES
    sp.add_argument("model", help="network file (.onnx, .pt, .safetensors, .json, .keras, .h5): its "
                    "architecture, and the values of frozen layers")
    add_model_args(sp)
    sp.add_argument("--data", required=True,
                    help="CSV, one point a line: features..., label (integer class 0..k-1, last); "
                         "optional header line of column names")
    sp.add_argument("-o", "--output", help="trained model to write (.onnx, .json or .safetensors)")
    sp.add_argument("--format", choices=["onnx", "json", "safetensors"], default=None,
                    help="output format (default: from the -o extension, else onnx). onnx: a copy of "
                         "the source with new initializers; json: nnsmt IR JSON with exact rational "
                         "weights; safetensors: <node>.weight / <node>.bias tensors")
    sp.add_argument("--free", default=None, metavar="LAYERS", help=FREE_HELP)
    sp.add_argument("--weight-bound", type=float, default=None, metavar="B",
                    help="box every free weight and bias in [-B, B] (an unsat then proves only that)")
    add_backend_args(sp)
    sp.add_argument("--encoding", default=None,
                    help="auto (default: homog where it applies, else margin), seed (the seed "
                         "paper's, faithful), margin, homog (one hidden layer, binary: linear)")
    sp.add_argument("--strategy", default="cegis", choices=["cegis", "direct"],
                    help="cegis (default): solve on a growing subset of the points until the exact "
                         "check passes; direct: every point in one query")
    sp.add_argument("--coarse-bits", type=int, default=10,
                    help="CEGIS first shows the solver the points rounded to this many bits (a "
                         "candidate is still checked on the exact points; 0: off; default 10)")
    sp.add_argument("--no-hints", action="store_true",
                    help="do not first try each round with the ReLU pattern of a quick "
                         "gradient-descent fit asserted (by default it is tried; a hint is never a "
                         "result: a hinted model is checked exactly, a hinted unsat only drops it)")
    sp.add_argument("--no-widen", action="store_true",
                    help="solve only the requested width (by default narrower hidden layers, 1, 2, "
                         "4, ... units, are tried first with part of the time: a narrow fit padded "
                         "with zero units is an exact fit of the requested network)")
    sp.add_argument("--dtype", choices=["auto", "float32", "float64"], default="auto",
                    help="precision of the written weights. auto (default): the source's (float32), "
                         "rewritten as float64 if rounding breaks a point in onnxruntime")
    sp.add_argument("--json", action="store_true", help="machine-readable result")
