"""Compression out: the smaller network written as ONNX and exact IR JSON, and an onnxruntime
spot check of the written file against the source."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_compressed(graph, output, ir=None) -> tuple[bool, Path]:
    """Write `graph` as ONNX to `output` and as exact IR JSON to `ir` (default: `output` with
    .json); returns (whether the ONNX weights are exact, the IR path)."""
    from nnsmt.frontends.onnx_export import save_onnx
    from nnsmt.serialize import save_json
    exact = save_onnx(graph, Path(output))
    ir_path = Path(ir) if ir else Path(output).with_suffix(".json")
    save_json(graph, ir_path)
    return exact, ir_path


def spot_check(src_onnx, out_onnx, dom, n: int = 200, seed: int = 0) -> float:
    """Max |difference| of the two ONNX files under onnxruntime at `n` random domain points
    (NaN when some output is not finite there: the float32 run overflows, so it tells nothing)."""
    from nnsmt.frontends import ort_evaluator
    f, g = ort_evaluator(src_onnx), ort_evaluator(out_onnx)
    rng = np.random.default_rng(seed)
    worst = 0.0
    for _ in range(n):
        lo, hi = dom.boxes[int(rng.integers(len(dom.boxes)))]
        lo_f, hi_f = np.array([float(v) for v in lo]), np.array([float(v) for v in hi])
        x = (lo_f + (hi_f - lo_f) * rng.random(len(lo_f))).astype(np.float32)
        d = float(np.max(np.abs(np.asarray(f(x), dtype=np.float64) - np.asarray(g(x), dtype=np.float64))))
        if not np.isfinite(d):
            return float("nan")
        worst = max(worst, d)
    return worst
