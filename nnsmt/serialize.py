"""The versioned JSON form of the IR ("nnsmt-ir"), bit-exact; schema in docs/ir-json.md."""

from __future__ import annotations

import base64
import json
from fractions import Fraction
from pathlib import Path

import numpy as np

from .errors import InputError
from .ir import IR_VERSION, Affine, Argmax, Const, Graph, Input, Relu, Sigmoid, Sym

FORMAT = "nnsmt-ir"


def _arr_to_json(a: np.ndarray | None):
    if a is None:
        return None
    if a.dtype == np.float64:
        data = base64.b64encode(np.ascontiguousarray(a, dtype="<f8").tobytes()).decode("ascii")
        return {"dtype": "float64", "shape": list(a.shape), "data": data}
    return {"dtype": "rational", "shape": list(a.shape),
            "data": [str(Fraction(v)) for v in a.ravel()]}


def _arr_from_json(d, where: str) -> np.ndarray | None:
    if d is None:
        return None
    try:
        shape = tuple(int(s) for s in d["shape"])
        size = int(np.prod(shape)) if shape else 1
        if d["dtype"] == "float64":
            raw = base64.b64decode(d["data"], validate=True)
            if len(raw) != 8 * size:
                raise ValueError(f"{len(raw)} bytes for shape {shape}")
            a = np.frombuffer(raw, dtype="<f8").astype(np.float64).reshape(shape)
        elif d["dtype"] == "rational":
            if len(d["data"]) != size:
                raise ValueError(f"{len(d['data'])} values for shape {shape}")
            a = np.empty(shape, dtype=object)
            a.ravel()[:] = [Fraction(s) for s in d["data"]] if size else []
        else:
            raise ValueError(f"unknown dtype {d['dtype']!r}")
    except (KeyError, TypeError, ValueError, ZeroDivisionError) as e:
        raise InputError(f"{where}: bad array: {e}") from None
    if a.dtype == np.float64 and not np.all(np.isfinite(a)):
        raise InputError(f"{where}: NaN or Inf value")
    return a


def _param_to_json(p):
    if isinstance(p, Const):
        return {"kind": "const", "value": _arr_to_json(p.value)}
    return {"kind": "sym", "name": p.name, "shape": list(p.shape), "lo": _arr_to_json(p.lo),
            "hi": _arr_to_json(p.hi), "nominal": _arr_to_json(p.nominal)}


def _param_from_json(d, where):
    kind = d.get("kind") if isinstance(d, dict) else None
    if kind == "const":
        return Const(_arr_from_json(d.get("value"), where))
    if kind == "sym":
        return Sym(d["name"], tuple(d["shape"]), _arr_from_json(d.get("lo"), where),
                   _arr_from_json(d.get("hi"), where), _arr_from_json(d.get("nominal"), where))
    raise InputError(f"{where}: parameter kind must be 'const' or 'sym', got {kind!r}")


def graph_to_json(g: Graph) -> dict:
    nodes = []
    for n in g.nodes:
        match n:
            case Input():
                nodes.append({"op": "input", "name": n.name, "dim": n.dim,
                              "lo": _arr_to_json(n.lo), "hi": _arr_to_json(n.hi)})
            case Affine():
                nodes.append({"op": "affine", "name": n.name, "x": n.x,
                              "weight": _param_to_json(n.weight), "bias": _param_to_json(n.bias)})
            case Relu() | Sigmoid() | Argmax():
                nodes.append({"op": type(n).__name__.lower(), "name": n.name, "x": n.x})
    return {"format": FORMAT, "version": IR_VERSION, "meta": dict(g.meta),
            "outputs": list(g.outputs), "nodes": nodes}


def graph_from_json(d: dict, source: str = "<json>") -> Graph:
    if not isinstance(d, dict) or d.get("format") != FORMAT:
        raise InputError(f"{source}: not an nnsmt IR file (format must be {FORMAT!r})")
    major = str(d.get("version", "")).split(".")[0]
    if major != IR_VERSION.split(".")[0]:
        raise InputError(f"{source}: IR version {d.get('version')!r} is not supported "
                         f"(this nnsmt reads {IR_VERSION.split('.')[0]}.x)")
    nodes = []
    for i, nd in enumerate(d.get("nodes", [])):
        where = f"{source}: node #{i}" + (f" {nd.get('name')!r}" if isinstance(nd, dict) else "")
        try:
            op = nd["op"]
            if op == "input":
                nodes.append(Input(nd["name"], int(nd["dim"]), _arr_from_json(nd.get("lo"), where),
                                   _arr_from_json(nd.get("hi"), where)))
            elif op == "affine":
                nodes.append(Affine(nd["name"], nd["x"], _param_from_json(nd["weight"], where + " weight"),
                                    _param_from_json(nd["bias"], where + " bias")))
            elif op in ("relu", "sigmoid", "argmax"):
                nodes.append({"relu": Relu, "sigmoid": Sigmoid, "argmax": Argmax}[op](nd["name"], nd["x"]))
            else:
                raise InputError(f"{where}: unknown op {op!r} (input, affine, relu, sigmoid, argmax)")
        except (KeyError, TypeError) as e:
            raise InputError(f"{where}: missing or malformed field {e}") from None
    g = Graph(tuple(nodes), tuple(d.get("outputs", [])), {str(k): str(v) for k, v in d.get("meta", {}).items()})
    try:
        return g.check()
    except InputError as e:
        raise InputError(f"{source}: {e}") from None


def save_json(g: Graph, path) -> None:
    Path(path).write_text(json.dumps(graph_to_json(g), indent=1) + "\n")


def load_json(path) -> Graph:
    try:
        d = json.loads(Path(path).read_text())
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: not valid JSON: {e}") from None
    return graph_from_json(d, str(path))
