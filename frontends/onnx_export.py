"""Write an IR graph as an ONNX model (Gemm/Add/Relu/Sigmoid/ArgMax), for trained, compressed or
converted networks. An affine node over several inputs is one bias-free Gemm per term, summed
by Adds, then the bias added; a sparse weight is written as a dense initializer when it is
small (`MAX_DENSE` elements), else refused. The elementwise nodes are their ONNX ops: Mul, Div,
Pow (a constant exponent), Exp; a compare is a comparison with 0 cast to the float type, a
select a Where on `c == 0`, a to_int Floor, Ceil or (trunc) a Where of both on `x >= 0`."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from nnsmt.errors import InputError, UnsupportedError
from nnsmt.ir import Compare, Div, Exp, Mul, Pow, Select, ToInt
from nnsmt.ir import Affine, Argmax, Const, Graph, Input, Relu, Sigmoid, Sparse, SparseSym

_DTYPES = {"float32": (np.float32, TensorProto.FLOAT), "float64": (np.float64, TensorProto.DOUBLE)}
MAX_DENSE = 1 << 22  # elements of a sparse weight written densely (32 MiB of float64)


def _value(p, params: Mapping[str, np.ndarray], node: str = "") -> np.ndarray:
    if isinstance(p, SparseSym):  # the matrix for the given values of its variables
        p = p.instantiate(params.get(p.name))
    if isinstance(p, Sparse):
        size = p.shape[0] * p.shape[1]
        if size > MAX_DENSE:
            raise UnsupportedError(f"ONNX export: affine node {node!r} has a sparse weight of shape "
                                   f"{list(p.shape)} ({p.nnz} nonzeros); written densely it would "
                                   f"hold {size} values, more than {MAX_DENSE}: this export writes "
                                   "Gemm nodes only (no Conv)")
        return p.dense().astype(np.float64)
    if isinstance(p, Const):
        return p.floats()
    if p.name in params:
        return Const(np.asarray(params[p.name])).floats()
    if p.nominal is not None:
        return Const(p.nominal).floats()
    raise InputError(f"symbolic parameter {p.name!r} has no value to export (give params or a nominal)")


def _add_init(inits: list, arr: np.ndarray, p, name: str, np_t) -> bool:
    """Append `arr` as an initializer of type np_t; whether it came through exactly. A finite
    value beyond np_t's range is refused (it would be written as inf, which no loader takes)."""
    with np.errstate(over="ignore"):
        cast = arr.astype(np_t)
    big = np.isfinite(arr) & ~np.isfinite(cast)
    if np.any(big):
        v = float(arr[big].flat[0])
        raise UnsupportedError(f"ONNX export: {name} holds {v:.3g}, beyond {np.dtype(np_t).name}'s range "
                               f"(it would become inf); write IR JSON (--to json) or ONNX with --dtype float64")
    inits.append(numpy_helper.from_array(cast, name))
    return bool(np.all(cast.astype(np.float64) == arr)) and \
        (not isinstance(p, (Const, Sparse)) or p.is_float)


def graph_to_onnx(graph: Graph, params: Mapping[str, np.ndarray] | None = None,
                  dtype: str = "float32", opset: int = 13) -> tuple[onnx.ModelProto, bool]:
    """(model, exact): `exact` is False when some parameter was rounded to `dtype`
    (e.g. a rational weight, or a float64 weight written as float32).

    Every input is a [1, dim] tensor named after its IR input; every graph output keeps its IR
    name (tensors are flat: the IR's shapes are not written).
    """
    params = params or {}
    np_t, onnx_t = _DTYPES[dtype]
    dims = graph.dims()
    nodes, inits, exact = [], [], True
    vinfo = {}
    taken = {n.name for n in graph.nodes} | {f"{n.name}_{s}" for n in graph.nodes for s in "WB"}

    def fresh(base: str) -> str:
        name, k = base, 0
        while name in taken:
            k += 1
            name = f"{base}_{k}"
        taken.add(name)
        return name

    for n in graph.nodes:
        match n:
            case Input():
                vinfo[n.name] = helper.make_tensor_value_info(n.name, onnx_t, [1, n.dim])
            case Affine():
                b = _value(n.bias, params, n.name)
                terms = [(x, w, _value(w, params, n.name)) for x, w in n.terms()]
                wnames = [f"{n.name}_W"] + [fresh(f"{n.name}_W{k}") for k in range(1, len(terms))]
                for (_, p, arr), name in zip(terms, wnames):
                    exact &= _add_init(inits, arr, p, name, np_t)
                exact &= _add_init(inits, b, n.bias, f"{n.name}_B", np_t)
                if len(terms) == 1:
                    nodes.append(helper.make_node("Gemm", [n.x, f"{n.name}_W", f"{n.name}_B"], [n.name],
                                                  name=n.name, transB=1))
                    continue
                # one bias-free Gemm per term, summed in the IR's order, then the bias
                acc = None
                for (x, _, _), wname in zip(terms, wnames):
                    t = fresh(f"{n.name}_term")
                    nodes.append(helper.make_node("Gemm", [x, wname], [t], name=t, transB=1))
                    if acc is not None:
                        s = fresh(f"{n.name}_sum")
                        nodes.append(helper.make_node("Add", [acc, t], [s], name=s))
                        t = s
                    acc = t
                nodes.append(helper.make_node("Add", [acc, f"{n.name}_B"], [n.name], name=n.name))
            case Relu():
                nodes.append(helper.make_node("Relu", [n.x], [n.name], name=n.name))
            case Sigmoid():
                nodes.append(helper.make_node("Sigmoid", [n.x], [n.name], name=n.name))
            case Argmax():
                nodes.append(helper.make_node("ArgMax", [n.x], [n.name], name=n.name, axis=1, keepdims=1))
            case Mul() | Div() | Exp() | Pow() | Compare() | Select() | ToInt():
                exact &= _elementwise(n, nodes, inits, fresh, np_t, onnx_t)
    outs = []
    for o in graph.outputs:
        is_index = isinstance(graph.node(o), Argmax)
        outs.append(helper.make_tensor_value_info(o, TensorProto.INT64 if is_index else onnx_t, [1, dims[o]]))
    g = helper.make_graph(nodes, "nnsmt", [vinfo[n.name] for n in graph.inputs], outs, inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], producer_name="nnsmt")
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m, exact


_COMPARE = {">": "Greater", ">=": "GreaterOrEqual", "<": "Less", "<=": "LessOrEqual", "=": "Equal",
            "!=": "Equal"}


def _elementwise(n, nodes: list, inits: list, fresh, np_t, onnx_t) -> bool:
    """Append the ONNX nodes of an elementwise IR node; whether its constants are exact."""
    def node(op, ins, out=None, **attrs):
        out = out or fresh(f"{n.name}_{op.lower()}")
        nodes.append(helper.make_node(op, ins, [out], name=out, **attrs))
        return out

    def const(v, base):
        name = fresh(f"{n.name}_{base}")
        return name, _add_init(inits, np.array([float(v)]), None, name, np_t) and float(v) == v

    if isinstance(n, (Mul, Div)):
        node(type(n).__name__, [n.a, n.b], n.name)
        return True
    if isinstance(n, Exp):
        node("Exp", [n.x], n.name)
        return True
    if isinstance(n, Pow):
        p, ok = const(n.p, "p")
        node("Pow", [n.x, p], n.name)
        return ok
    zero, _ = const(0, "zero")
    if isinstance(n, Compare):
        b = node(_COMPARE[n.op], [n.x, zero])
        node("Cast", [node("Not", [b]) if n.op == "!=" else b], n.name, to=onnx_t)
    elif isinstance(n, Select):
        node("Where", [node("Equal", [n.c, zero]), zero, n.x], n.name)
    elif n.mode in ("floor", "ceil"):
        node(n.mode.capitalize(), [n.x], n.name)
    else:  # toward zero
        node("Where", [node("GreaterOrEqual", [n.x, zero]), node("Floor", [n.x]),
                       node("Ceil", [n.x])], n.name)
    return True


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
