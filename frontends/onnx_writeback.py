"""Write trained weights back into a copy of the source ONNX model: same graph, new initializers.

Each IR `Affine` of `load_onnx` comes from a run of ONNX ops; the common shapes -- a `Gemm` with
constant B and C (alpha = beta = 1), or a `MatMul` by a constant followed by an `Add` of a
constant -- are written in place, in order. The copy is then loaded again and its affine
parameters compared with the intended ones (at the initializers' precision); if anything does
not match (folded BatchNorm/Sub/Div, shared initializers, other layouts) a fresh ONNX graph is
written instead with `onnx_export.save_onnx`, and the report says so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import helper, numpy_helper

from nnsmt.errors import InputError
from nnsmt.ir import Affine, Const, Graph, rounded


@dataclass(frozen=True)
class WriteReport:
    """How the trained model was written: `same_graph` (initializers replaced) or a fresh graph
    (`reason` says why); `dtype`; `exact` is False when a value was rounded to that dtype."""

    path: str
    same_graph: bool
    dtype: str
    exact: bool
    reason: str = ""


def _layer_sites(model: onnx.ModelProto):
    """[(weight init name, layout, bias init name)] per dense layer, in graph order, or None
    when a layer has another shape. layout: "out_in" (Gemm transB=1) or "in_out"."""
    g = model.graph
    inits = {t.name for t in g.initializer}
    users: dict[str, list] = {}
    for n in g.node:
        for x in n.input:
            users.setdefault(x, []).append(n)
    sites = []
    for n in g.node:
        if n.op_type == "Gemm":
            attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute}
            if attrs.get("transA", 0) or attrs.get("alpha", 1.0) != 1.0 or attrs.get("beta", 1.0) != 1.0:
                return None
            if len(n.input) < 3 or n.input[1] not in inits or n.input[2] not in inits:
                return None
            sites.append((n.input[1], "out_in" if attrs.get("transB", 0) else "in_out", n.input[2]))
        elif n.op_type == "MatMul":
            if n.input[1] not in inits:
                return None
            nxt = users.get(n.output[0], [])
            if len(nxt) != 1 or nxt[0].op_type != "Add":
                return None
            other = [x for x in nxt[0].input if x != n.output[0]]
            if len(other) != 1 or other[0] not in inits:
                return None
            sites.append((n.input[1], "in_out", other[0]))
    return sites


def write_back(trained: Graph, src_path, out_path, dtype: str = "source") -> WriteReport:
    """Write `trained` (the source graph with trained Const parameters) to `out_path`.

    Args:
        trained: same nodes as `load_onnx(src_path)`, new parameter values.
        dtype: "source" keeps each initializer's type; "float64" writes a fresh float64 graph.
    """
    from .onnx_export import save_onnx
    from .onnx_frontend import load_onnx
    affines = [n for n in trained.nodes if isinstance(n, Affine)]
    if dtype == "float64":
        exact = save_onnx(trained, out_path, dtype="float64")
        return WriteReport(str(out_path), False, "float64", exact, "float64 requested: a fresh graph")
    try:
        model = onnx.load(str(src_path))
    except Exception as e:  # noqa: BLE001 -- the file was loadable a moment ago
        raise InputError(f"{src_path}: cannot re-read the source model: {e}") from None
    sites = _layer_sites(model)
    reason = ""
    if sites is None or len(sites) != len(affines):
        reason = "the source's layers are not one Gemm or MatMul+Add per affine layer"
    else:
        inits = {t.name: t for t in model.graph.initializer}
        exact = True
        written = set()
        for (wname, layout, bname), node in zip(sites, affines):
            if wname in written or bname in written:
                reason = "an initializer is shared between layers"
                break
            w = node.weight.value if isinstance(node.weight, Const) else None
            b = node.bias.value if isinstance(node.bias, Const) else None
            old_w, old_b = numpy_helper.to_array(inits[wname]), numpy_helper.to_array(inits[bname])
            w = w if layout == "out_in" else w.T
            if old_w.shape != w.shape or old_b.size != b.size:
                reason = f"initializer {wname!r} or {bname!r} has another shape than the IR layer"
                break
            for name, val, old in ((wname, w, old_w), (bname, b.reshape(old_b.shape), old_b)):
                if old.dtype.kind != "f":
                    reason = f"initializer {name!r} is not a float tensor"
                    break
                cast, ex = rounded(val, old.dtype)
                exact &= ex
                inits[name].CopyFrom(numpy_helper.from_array(cast, name))
                written.add(name)
            if reason:
                break
        if not reason:
            onnx.save(model, str(out_path))
            check = load_onnx(out_path)
            got = [n for n in check.nodes if isinstance(n, Affine)]
            want = [_rounded(n, sites[i], inits) for i, n in enumerate(affines)]
            if len(got) == len(want) and all(
                    np.array_equal(g.weight.floats(), w) and np.array_equal(g.bias.floats(), b)
                    for g, (w, b) in zip(got, want)):
                dt = str(numpy_helper.to_array(inits[sites[0][0]]).dtype)
                return WriteReport(str(out_path), True, dt, exact)
            reason = "re-loading the written copy did not give the trained layers (folded ops)"
    exact = save_onnx(trained, out_path, dtype="float32")
    return WriteReport(str(out_path), False, "float32", exact, reason)


def _rounded(node, site, inits):
    wname, layout, bname = site
    w = numpy_helper.to_array(inits[wname]).astype(np.float64)
    b = numpy_helper.to_array(inits[bname]).astype(np.float64).ravel()
    return (w if layout == "out_in" else w.T), b
