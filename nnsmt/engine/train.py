"""Trained models out: written in the source's format (ONNX write-back, a state dict) or as
safetensors / exact IR JSON, and replayed in onnxruntime where that is possible."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nnsmt.errors import UnsupportedError
from nnsmt.queries.train import trained_graph


def format_of(path) -> str:
    """The output format an -o path asks for (default onnx)."""
    if path is None:
        return "onnx"
    return {".json": "json", ".safetensors": "safetensors"}.get(Path(path).suffix.lower(), "onnx")


def ort_accuracy(path, problem) -> float:
    """The share of the data points the written ONNX file classifies correctly in onnxruntime."""
    from nnsmt.frontends import ort_evaluator
    from nnsmt.queries.train_io import classify_float
    f = ort_evaluator(path)
    outs = np.array([f(x) for x in problem.data.x])
    return float(np.mean(classify_float(outs, problem)))


def write_trained(problem, params, path, fmt: str | None = None, dtype: str = "auto",
                  progress=lambda *a, **k: None) -> dict:
    """Write the trained model; for ONNX, measure accuracy with onnxruntime on the written file
    and fall back to float64 when float32 rounding broke a point (dtype auto). Returns what was
    written (path, format, dtype, exact, same_graph, accuracy_onnxruntime, note, warning)."""
    fmt = fmt or format_of(path)
    trained = trained_graph(problem, params)
    src_fmt = problem.source.meta.get("format", "")
    info: dict = {"path": str(path), "format": fmt}
    if fmt == "safetensors":
        from nnsmt.queries.train_io import save_safetensors
        info["dtype"] = "float64" if dtype == "float64" else "float32"
        info["exact"] = save_safetensors(trained, path, info["dtype"])
        return info
    if fmt == "json":
        from nnsmt.serialize import save_json
        save_json(trained, path)
        return info | {"exact": True, "dtype": "exact rationals"}
    if src_fmt in ("torch", "safetensors"):
        return _write_state_dict(problem, trained, path, src_fmt)
    if src_fmt != "onnx":
        raise UnsupportedError(f"cannot write an ONNX model for a {src_fmt or 'non-ONNX'} source; "
                               "use --format json or safetensors")
    from nnsmt.frontends.onnx_writeback import write_back
    rep = write_back(trained, problem.source.meta["source"], path, "float64" if dtype == "float64" else "source")
    info.update(same_graph=rep.same_graph, dtype=rep.dtype, exact=rep.exact)
    if rep.reason:
        info["note"] = f"wrote a fresh ONNX graph: {rep.reason}"
    progress("replay", what="onnxruntime replay of the written file")
    acc = info["accuracy_onnxruntime"] = ort_accuracy(path, problem)
    if acc < 1.0 and dtype == "auto":
        info["warning"] = (f"at {rep.dtype} the rounded weights classify only {acc:.1%} of the points "
                           "in onnxruntime; rewrote the model in float64 (a fresh graph, double input)")
        rep = write_back(trained, problem.source.meta["source"], path, "float64")
        info.update(same_graph=False, dtype="float64", exact=rep.exact)
        info["accuracy_onnxruntime"] = ort_accuracy(path, problem)
    return info


def _write_state_dict(problem, trained, path, src_fmt) -> dict:
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
    save_state_dict_like(problem.source, params, problem.source.meta["source"], path,
                         "safetensors" if src_fmt == "safetensors" else "pt")
    return {"path": str(path), "format": src_fmt}
