"""nnsmt train: find weights that classify every data point (checked exactly), write the trained
model, and report its accuracy measured by onnxruntime; or prove that no such weights exist."""

from __future__ import annotations

import sys
import time
from contextlib import nullcontext

from .common import EXIT, add_backend_args, add_command, add_model_args, check_output, nonnegative_int, show
from .options import add_training_args, from_args, load_problem


def run(args) -> int:
    from nnsmt.engine.driver import solver
    from nnsmt.engine.progress import training_status
    from nnsmt.engine.reports import training_lines, training_record
    from nnsmt.engine.train import write_trained
    from nnsmt.queries.train import TrainOptions, train
    t0 = time.perf_counter()
    opts = from_args(TrainOptions, args)
    solve = solver(args.backend)  # fail early, naming what is missing
    if args.output:
        check_output(args.output)
    problem = load_problem(args)
    status, progress = training_status(args.json)
    with status or nullcontext():
        res = train(problem, solve, opts, progress=progress)
        written = write_trained(problem, res.params, args.output, args.format, args.dtype, progress) \
            if res.status == "sat" and args.output else None
    out = training_record(problem, res, backend=args.backend, network=args.model, data=args.data,
                          strategy=args.strategy, total_s=time.perf_counter() - t0, written=written)
    show(args, out, training_lines(out), [f"WARNING: {written['warning']}"] if "warning" in (written or {}) else [])
    if written is not None and written.get("accuracy_onnxruntime", 1.0) < 1.0:
        print("ERROR: the written model does not classify every point in onnxruntime", file=sys.stderr)
        return EXIT["error"]
    if res.status == "error":
        print(res.reason, file=sys.stderr)
    return EXIT[res.status]


def register(sub):
    sp = add_command(
        sub, "train", "find weights that classify every data point (exactly checked) and write the trained model, "
        "or prove that none exist", run, json="result", sat="sat: weights exist (a witness, as for verify): "
        "found, checked exactly on every point, and written with -o", unsat="unsat: no network of this "
        "architecture (with the frozen layers / weight bound given) classifies these points; the unsat core's "
        "points are listed when the solver gives one", unknown="unknown (timeout, or the solver gave up; the "
        "reason is printed)", error="error: the solver failed or its model failed the exact check (never "
        "reported as sat), or the written file does not reach 100% in onnxruntime even at float64")
    add_model_args(sp, "network file (.onnx, .pt, .safetensors, .json, .keras, .h5): its architecture, and the "
                   "values of frozen layers")
    add_training_args(sp, required=True)
    sp.add_argument("-o", "--output", help="trained model to write (.onnx, .json or .safetensors)")
    sp.add_argument("--format", choices=["onnx", "json", "safetensors"], default=None, help="output format "
                    "(default: from the -o extension, else onnx). onnx: a copy of the source with new "
                    "initializers; json: nnsmt IR JSON with exact rational weights; safetensors: <node>.weight / "
                    "<node>.bias tensors")
    add_backend_args(sp)
    sp.add_argument("--encoding", default=None, choices=["auto", "seed", "margin", "homog"], help="auto "
                    "(default: homog where it applies, else margin), seed (the seed paper's, faithful), margin, "
                    "homog (one hidden layer, binary: linear)")
    sp.add_argument("--strategy", default="cegis", choices=["cegis", "direct"], help="cegis (default): solve on a "
                    "growing subset of the points until the exact check passes; direct: every point in one query")
    sp.add_argument("--coarse-bits", type=nonnegative_int, default=10, help="CEGIS first shows the solver the "
                    "points rounded to this many bits (a candidate is still checked on the exact points; 0: off; "
                    "default 10)")
    sp.add_argument("--no-hints", dest="hints", action="store_false", help="do not first try each round with the "
                    "ReLU pattern of a quick gradient-descent fit asserted (by default it is tried; a hint is never "
                    "a result: a hinted model is checked exactly, a hinted unsat only drops it)")
    sp.add_argument("--no-widen", dest="widen", action="store_false", help="solve only the requested width (by "
                    "default narrower hidden layers, 1, 2, 4, ... units, are tried first with part of the time: a "
                    "narrow fit padded with zero units is an exact fit of the requested network)")
    sp.add_argument("--dtype", choices=["auto", "float32", "float64"], default="auto", help="precision of the "
                    "written weights. auto (default): the source's (float32), rewritten as float64 if rounding "
                    "breaks a point in onnxruntime")
