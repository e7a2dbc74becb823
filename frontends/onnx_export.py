"""Write an IR graph as an ONNX model (Gemm/Relu/Sigmoid/ArgMax), for trained, compressed or
converted networks."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from nnsmt.errors import InputError, UnsupportedError
from nnsmt.ir import Affine, Argmax, Const, Graph, Input, Relu, Sigmoid, Sym

_DTYPES = {"float32": (np.float32, TensorProto.FLOAT), "float64": (np.float64, TensorProto.DOUBLE)}


def _value(p, params: Mapping[str, np.ndarray]) -> np.ndarray:
    if isinstance(p, Const):
        return p.floats()
    if p.name in params:
        return Const(np.asarray(params[p.name])).floats()
    if p.nominal is not None:
        return Const(p.nominal).floats()
    raise InputError(f"symbolic parameter {p.name!r} has no value to export (give params or a nominal)")


def graph_to_onnx(graph: Graph, params: Mapping[str, np.ndarray] | None = None,
                  dtype: str = "float32", opset: int = 13) -> tuple[onnx.ModelProto, bool]:
    """(model, exact): `exact` is False when some parameter was rounded to `dtype`
    (e.g. a rational weight, or a float64 weight written as float32).

    The input is a [1, dim] tensor named after the IR input; every graph output keeps its IR name.
    """
    params = params or {}
    np_t, onnx_t = _DTYPES[dtype]
    if len(graph.inputs) != 1:
        raise UnsupportedError("ONNX export needs exactly one input")
    dims = graph.dims()
    nodes, inits, exact = [], [], True
    vinfo = {}
    for n in graph.nodes:
        match n:
            case Input():
                vinfo[n.name] = helper.make_tensor_value_info(n.name, onnx_t, [1, n.dim])
            case Affine():
                w, b = _value(n.weight, params), _value(n.bias, params)
                for arr, suffix in ((w, "W"), (b, "B")):
                    cast = arr.astype(np_t)
                    exact &= bool(np.all(cast.astype(np.float64) == arr)) and all(
                        not isinstance(p, Const) or p.is_float for p in (n.weight, n.bias))
                    inits.append(numpy_helper.from_array(cast, f"{n.name}_{suffix}"))
                nodes.append(helper.make_node("Gemm", [n.x, f"{n.name}_W", f"{n.name}_B"], [n.name],
                                              name=n.name, transB=1))
            case Relu():
                nodes.append(helper.make_node("Relu", [n.x], [n.name], name=n.name))
            case Sigmoid():
                nodes.append(helper.make_node("Sigmoid", [n.x], [n.name], name=n.name))
            case Argmax():
                nodes.append(helper.make_node("ArgMax", [n.x], [n.name], name=n.name, axis=1, keepdims=1))
    outs = []
    for o in graph.outputs:
        is_index = isinstance(graph.node(o), Argmax)
        outs.append(helper.make_tensor_value_info(o, TensorProto.INT64 if is_index else onnx_t, [1, dims[o]]))
    g = helper.make_graph(nodes, "nnsmt", [vinfo[graph.inputs[0].name]], outs, inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], producer_name="nnsmt")
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m, exact


def save_onnx(graph: Graph, path, params=None, dtype: str = "float32") -> bool:
    """Write `graph` to `path`; returns whether every parameter was written exactly.

    Raises:
        InputError: the file cannot be written (a directory, a missing folder, ...)."""
    m, exact = graph_to_onnx(graph, params, dtype)
    try:
        onnx.save(m, Path(path))
    except OSError as e:
        raise InputError(f"{path}: cannot write: {e.strerror or e}") from None
    return exact
