"""The versioned JSON form of the IR ("nnsmt-ir"), bit-exact; schema in docs/ir-json.md."""

from __future__ import annotations

import base64
import json
import math
import re
from fractions import Fraction
from pathlib import Path

import numpy as np

from .errors import InputError
from .ir import (COMPARE_OPS, ELEMENTWISE, IR_VERSION, OPS, ROUNDING, Affine, Argmax, Compare, Const,
                 Div, Exp, Graph, Input, Mul, Pow, Relu, Select, Sigmoid, Sparse, SparseSym, Sym, ToInt)

FORMAT = "nnsmt-ir"
READS = ("1", "2")  # major versions this reader takes: 2.x adds what 1.x never writes


def _arr_to_json(a: np.ndarray | None):
    if a is None:
        return None
    if a.dtype == np.float64:
        data = base64.b64encode(np.ascontiguousarray(a, dtype="<f8").tobytes()).decode("ascii")
        return {"dtype": "float64", "shape": list(a.shape), "data": data}
    return {"dtype": "rational", "shape": list(a.shape),
            "data": [str(Fraction(v)) for v in a.ravel()]}


class _Reader:
    """The IR JSON reader's checks: every complaint is one InputError
    `{source}: {json/path}: {what}`, the same path notation as the JSON Schema's messages
    (`nnsmt import` adds the schema's own checks on top of these)."""

    def __init__(self, source: str):
        self.source = source

    def fail(self, path, msg: str) -> InputError:
        where = "/".join(map(str, path)) or "(top level)"
        return InputError(f"{self.source}: {where}: {msg}")

    def obj(self, v, path, what="an object") -> dict:
        if not isinstance(v, dict):
            raise self.fail(path, f"expected {what}, got {_kind(v)}")
        return v

    def field(self, d: dict, key: str, path, types, what: str):
        if key not in d:
            raise self.fail(path, f"missing field {key!r} ({what})")
        v = d[key]
        if not isinstance(v, types) or isinstance(v, bool) and bool not in _tuple(types):
            raise self.fail((*path, key), f"expected {what}, got {_kind(v)}")
        return v

    def name(self, d: dict, key: str, path) -> str:
        v = self.field(d, key, path, str, "a name")
        if not _IDENT.match(v):
            raise self.fail((*path, key), f"{v[:60]!r} is not an identifier ([A-Za-z_][A-Za-z0-9_]*)")
        return v

    def shape(self, v, path) -> tuple[int, ...]:
        if not isinstance(v, list) or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0
                                              for s in v):
            raise self.fail(path, f"a shape is a list of integers >= 0, got {_kind(v)}")
        return tuple(v)

    def array(self, d, path, shape=None) -> np.ndarray | None:
        """An exact array (or None for null); `shape`, when given, is what it must broadcast to."""
        if d is None:
            return None
        d = self.obj(d, path, 'an array object {"dtype", "shape", "data"} or null')
        dtype = self.field(d, "dtype", path, str, '"float64" or "rational"')
        shp = self.shape(self.field(d, "shape", path, list, "a list of integers"), (*path, "shape"))
        size = math.prod(shp)
        if "data" not in d:
            raise self.fail(path, "missing field 'data'")
        data = d["data"]
        if dtype == "float64":
            if not isinstance(data, str):
                raise self.fail((*path, "data"), f"expected a base64 string, got {_kind(data)}")
            try:
                raw = base64.b64decode(data, validate=True)
            except (ValueError, TypeError) as e:
                raise self.fail((*path, "data"), f"bad array: not base64 ({e})") from None
            if len(raw) != 8 * size:
                raise self.fail((*path, "data"), f"bad array: {len(raw)} bytes for shape "
                                                 f"{list(shp)} ({8 * size} expected)")
            a = np.frombuffer(raw, dtype="<f8").astype(np.float64).reshape(shp)
            if not np.all(np.isfinite(a)):
                k = int(np.flatnonzero(~np.isfinite(a.ravel()))[0])
                raise self.fail((*path, "data"), f"NaN or Inf value (element {k})")
        elif dtype == "rational":
            if not isinstance(data, list):
                raise self.fail((*path, "data"), f"expected a list of rational strings, got {_kind(data)}")
            if len(data) != size:
                raise self.fail((*path, "data"), f"bad array: {len(data)} values for shape {list(shp)}")
            vals = []
            for k, v in enumerate(data):
                try:
                    if not isinstance(v, str) or not _RATIONAL.match(v):
                        raise ValueError
                    q = Fraction(v)
                except (ValueError, ZeroDivisionError):  # the schema's spelling, no n/0
                    raise self.fail((*path, "data", k), f"{_short(v)} is not a rational string "
                                                        '("-3", "1/3")') from None
                if abs(q) > _FLOAT_MAX:  # every value has a float64 neighbour (bounds, export)
                    raise self.fail((*path, "data", k), f"{_short(v)} is beyond the float64 "
                                                        "range (|v| <= 1.8e308)")
                vals.append(q)
            a = np.empty(shp, dtype=object)
            if size:
                a.ravel()[:] = vals
        else:
            raise self.fail((*path, "dtype"), f"unknown dtype {_short(dtype)} (float64, rational)")
        if shape is not None:
            try:
                fits = np.broadcast_shapes(a.shape, tuple(shape)) == tuple(shape)
            except ValueError:
                fits = False
            if not fits:
                raise self.fail((*path, "shape"), f"shape {list(a.shape)} does not fit "
                                                  f"{list(shape)}")
        return a

    def param(self, d, path):
        d = self.obj(d, path, 'a parameter {"kind": "const"|"sparse"|"sym"|"sparse_sym", ...}')
        kind = d.get("kind")
        if kind == "const":
            if d.get("value") is None:
                raise self.fail(path, "missing field 'value' (an array)")
            return Const(self.array(d["value"], (*path, "value")))
        if kind == "sparse":
            return self.sparse(d, path)
        if kind == "sym":
            name = self.name(d, "name", path)
            shape = self.shape(self.field(d, "shape", path, list, "a list of integers"), (*path, "shape"))
            lo, hi, nom = (self.array(d.get(k), (*path, k), shape) for k in ("lo", "hi", "nominal"))
            return Sym(name, shape, lo, hi, nom)
        if kind == "sparse_sym":
            return self.sparse_sym(d, path)
        raise self.fail((*path, "kind"), f"parameter kind must be 'const', 'sparse', 'sym' or "
                                         f"'sparse_sym', got {_short(kind)}")

    def vector(self, d, path, n: int | None, what: str) -> np.ndarray:
        """A 1-D exact array of `n` values (any length when None)."""
        if d is None:
            raise self.fail(path, f"missing field {path[-1]!r} ({what})")
        a = self.array(d, path)
        if a.ndim != 1 or n is not None and len(a) != n:
            want = f"[{n}]" if n is not None else "one dimension"
            raise self.fail((*path, "shape"), f"{what}: shape {list(a.shape)}, expected {want}")
        return a

    def indices(self, d, path, n: int | None, what: str, low: int = 0) -> np.ndarray:
        """A 1-D array of integers >= `low` (stored in an exact array: float64 holds them
        exactly)."""
        a = self.vector(d, path, n, what)
        vals = [Fraction(v) for v in a]
        for k, v in enumerate(vals):
            if v.denominator != 1 or v < low or v >= 2 ** 53:
                raise self.fail((*path, "data", k), f"{what}: {_short(str(v))} is not an integer "
                                                    f"in {low}..2**53-1")
        return np.array([int(v) for v in vals], dtype=np.int64)

    def sparse_sym(self, d, path) -> SparseSym:
        """`{"kind": "sparse_sym", "name", the sparse fields with a "tie", "nominal", "lo",
        "hi"}`: one variable per parameter (2.1)."""
        name = self.name(d, "name", path)
        if d.get("tie") is None:
            raise self.fail(path, "missing field 'tie' (the variable of every stored entry, or -1)")
        S = self.sparse(d, path)
        nom = self.vector(d.get("nominal"), (*path, "nominal"), None, "nominal values of the variables")
        lo, hi = (None if d.get(k) is None else
                  self.vector(d[k], (*path, k), len(nom), f"{k} of the variables") for k in ("lo", "hi"))
        if S.nnz and S.tie.max() >= len(nom):
            k = int(np.flatnonzero(S.tie >= len(nom))[0])
            raise self.fail((*path, "tie", "data", k), f"variable {S.tie[k]} is out of range "
                                                       f"({len(nom)} nominal values)")
        try:
            return SparseSym(name, S, nom, lo, hi)
        except InputError as e:
            raise self.fail(path, str(e)) from None

    def sparse(self, d, path) -> Sparse:
        """`{"kind": "sparse", "shape": [out, in], "indptr", "indices", "data"}` (CSR)."""
        shape = self.shape(self.field(d, "shape", path, list, "a list of integers"), (*path, "shape"))
        if len(shape) != 2:
            raise self.fail((*path, "shape"), f"a sparse matrix has shape [out, in], got {list(shape)}")
        indptr = self.indices(d.get("indptr"), (*path, "indptr"), shape[0] + 1, "row pointers")
        if indptr[0] != 0 or np.any(np.diff(indptr) < 0):
            raise self.fail((*path, "indptr"), "row pointers must start at 0 and never decrease")
        nnz = int(indptr[-1])
        cols = self.indices(d.get("indices"), (*path, "indices"), nnz,
                            f"column indices (indptr ends at {nnz})")
        if nnz and cols.max() >= shape[1]:
            k = int(np.flatnonzero(cols >= shape[1])[0])
            raise self.fail((*path, "indices", "data", k), f"column {cols[k]} is out of range "
                                                           f"(the matrix has {shape[1]} columns)")
        within = np.ones(max(nnz - 1, 0), dtype=bool)  # pairs of neighbours in one row
        ends = indptr[1:-1] - 1
        within[ends[(ends >= 0) & (ends < nnz - 1)]] = False
        bad = np.flatnonzero((np.diff(cols) <= 0) & within)
        if bad.size:
            i = int(np.searchsorted(indptr, bad[0], side="right")) - 1
            raise self.fail((*path, "indices"), f"row {i}: column indices must increase "
                                                "strictly (sorted, no duplicates)")
        data = self.vector(d.get("data"), (*path, "data"), nnz, f"values (indptr ends at {nnz})")
        tie = None if d.get("tie") is None else \
            self.indices(d["tie"], (*path, "tie"), nnz, "ties (one per stored value)", low=-1)
        try:
            return Sparse(shape, indptr, cols, data, tie)
        except InputError as e:  # entries tied to one parameter with different values
            raise self.fail((*path, "tie"), str(e)) from None

    def node(self, nd, path):
        nd = self.obj(nd, path, "a node object")
        op = self.field(nd, "op", path, str, "an op name")
        name = self.name(nd, "name", path)
        onnx = self.field(nd, "onnx", path, str, "an ONNX tensor name") if "onnx" in nd else ""
        shape = nd.get("shape")
        if shape is not None:
            shape = self.shape(shape, (*path, "shape"))
        if op == "input":
            dim = self.field(nd, "dim", path, int, "a positive integer")
            if dim < 1:
                raise self.fail((*path, "dim"), f"expected a positive integer, got {dim}")
            lo, hi = (self.array(nd.get(k), (*path, k), (dim,)) for k in ("lo", "hi"))
            return Input(name, dim, lo, hi, shape=shape, onnx=onnx)
        if op == "affine":
            x = self.name(nd, "x", path)
            more = nd.get("more", [])
            if not isinstance(more, list):
                raise self.fail((*path, "more"), f"expected a list of {{\"x\", \"weight\"}} terms, "
                                                 f"got {_kind(more)}")
            terms = []
            for k, t in enumerate(more):
                t = self.obj(t, (*path, "more", k), 'a term {"x": NAME, "weight": PARAM}')
                terms.append((self.name(t, "x", (*path, "more", k)),
                              self.param(self.field(t, "weight", (*path, "more", k), dict, "a parameter"),
                                         (*path, "more", k, "weight"))))
            return Affine(name, x, self.param(self.field(nd, "weight", path, dict, "a parameter"),
                                              (*path, "weight")),
                          self.param(self.field(nd, "bias", path, dict, "a parameter"), (*path, "bias")),
                          more=tuple(terms), shape=shape, onnx=onnx)
        if op in _UNARY:
            return _UNARY[op](name, self.name(nd, "x", path), onnx=onnx)
        if op in ("mul", "div"):
            return (Mul if op == "mul" else Div)(name, self.name(nd, "a", path),
                                                 self.name(nd, "b", path), onnx=onnx)
        if op == "select":
            return Select(name, self.name(nd, "c", path), self.name(nd, "x", path), onnx=onnx)
        if op == "pow":
            v = self.field(nd, "p", path, str, 'a rational string ("2", "-1/2")')
            if not _RATIONAL.match(v):
                raise self.fail((*path, "p"), f"{_short(v)} is not a rational string (\"2\", \"-1/2\")")
            return Pow(name, self.name(nd, "x", path), Fraction(v), onnx=onnx)
        if op == "compare":
            c = self.field(nd, "cmp", path, str, f"one of {', '.join(COMPARE_OPS)}")
            if c not in COMPARE_OPS:
                raise self.fail((*path, "cmp"), f"{_short(c)} is not one of {', '.join(COMPARE_OPS)}")
            return Compare(name, self.name(nd, "x", path), c, onnx=onnx)
        if op == "to_int":
            m = self.field(nd, "mode", path, str, f"one of {', '.join(ROUNDING)}")
            if m not in ROUNDING:
                raise self.fail((*path, "mode"), f"{_short(m)} is not one of {', '.join(ROUNDING)}")
            return ToInt(name, self.name(nd, "x", path), m, onnx=onnx)
        raise self.fail((*path, "op"), f"unknown op {_short(op)} ({', '.join(OPS.values())})")


_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_RATIONAL = re.compile(r"-?[0-9]+(/0*[1-9][0-9]*)?\Z")  # as the schema, no n/0; digits stop at int()'s limit
_FLOAT_MAX = Fraction(np.finfo(np.float64).max)
_UNARY = {"relu": Relu, "sigmoid": Sigmoid, "argmax": Argmax, "exp": Exp}


def _tuple(t):
    return t if isinstance(t, tuple) else (t,)


def _kind(v) -> str:
    """A JSON value's type and a glimpse of it, for messages."""
    kinds = {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
             int: "a number", float: "a number", type(None): "null"}
    return f"{kinds.get(type(v), type(v).__name__)} {_short(v)}"


def _short(v) -> str:
    r = json.dumps(v) if isinstance(v, (dict, list, str, int, float, bool, type(None))) else repr(v)
    return r if len(r) <= 40 else r[:37] + "..."

def _index_json(a: np.ndarray):
    return _arr_to_json(np.asarray(a, dtype=np.float64))  # integers < 2**53: exact in float64


def _param_to_json(p):
    if isinstance(p, Const):
        return {"kind": "const", "value": _arr_to_json(p.value)}
    if isinstance(p, Sparse):
        d = {"kind": "sparse", "shape": list(p.shape), "indptr": _index_json(p.indptr),
             "indices": _index_json(p.indices), "data": _arr_to_json(p.data)}
        return d if p.tie is None else d | {"tie": _index_json(p.tie)}
    if isinstance(p, SparseSym):
        return {"name": p.name} | _param_to_json(p.pattern) | {
            "kind": "sparse_sym", "nominal": _arr_to_json(p.nominal), "lo": _arr_to_json(p.lo),
            "hi": _arr_to_json(p.hi)}
    return {"kind": "sym", "name": p.name, "shape": list(p.shape), "lo": _arr_to_json(p.lo),
            "hi": _arr_to_json(p.hi), "nominal": _arr_to_json(p.nominal)}


def _extras(n) -> dict:
    """The optional 2.x fields a node has: its tensor shape and ONNX name."""
    out = {}
    if getattr(n, "shape", None) is not None:
        out["shape"] = [int(s) for s in n.shape]
    if n.onnx:
        out["onnx"] = n.onnx
    return out


def graph_to_json(g: Graph) -> dict:
    nodes = []
    for n in g.nodes:
        match n:
            case Input():
                nodes.append({"op": "input", "name": n.name, "dim": n.dim,
                              "lo": _arr_to_json(n.lo), "hi": _arr_to_json(n.hi)} | _extras(n))
            case Affine():
                d = {"op": "affine", "name": n.name, "x": n.x,
                     "weight": _param_to_json(n.weight), "bias": _param_to_json(n.bias)}
                if n.more:
                    d["more"] = [{"x": x, "weight": _param_to_json(w)} for x, w in n.more]
                nodes.append(d | _extras(n))
            case Relu() | Sigmoid() | Argmax() | Exp():
                nodes.append({"op": OPS[type(n)], "name": n.name, "x": n.x} | _extras(n))
            case Mul() | Div():
                nodes.append({"op": OPS[type(n)], "name": n.name, "a": n.a, "b": n.b} | _extras(n))
            case Pow():
                nodes.append({"op": "pow", "name": n.name, "x": n.x, "p": str(n.p)} | _extras(n))
            case Compare():
                nodes.append({"op": "compare", "name": n.name, "x": n.x, "cmp": n.op} | _extras(n))
            case Select():
                nodes.append({"op": "select", "name": n.name, "c": n.c, "x": n.x} | _extras(n))
            case ToInt():
                nodes.append({"op": "to_int", "name": n.name, "x": n.x, "mode": n.mode} | _extras(n))
    # the lowest version that holds the graph: files without 2.1 ops stay readable as 2.0
    version = IR_VERSION if any(isinstance(n, ELEMENTWISE) for n in g.nodes) or \
        any(isinstance(p, SparseSym) for _, _, p in g.params()) else "2.0"
    return {"format": FORMAT, "version": version, "meta": dict(g.meta),
            "outputs": list(g.outputs), "nodes": nodes}


def graph_from_json(d: dict, source: str = "<json>") -> Graph:
    """The graph of an IR JSON document (`json.loads` of an nnsmt-ir file).

    Raises:
        InputError: one line `{source}: {json/path}: {what is wrong}` for anything that is not a
            valid nnsmt-ir document (wrong types, unknown ops, bad arrays, NaN/Inf, shapes), or
            `{source}: invalid IR graph: ...` for the graph's invariants (names defined once and
            before use, dimensions).
    """
    r = _Reader(source)
    if not isinstance(d, dict) or d.get("format") != FORMAT:
        raise InputError(f"{source}: not an nnsmt IR file (a JSON object with "
                         f"\"format\": {FORMAT!r})")
    version = d.get("version")
    if not isinstance(version, str) or version.split(".")[0] not in READS:
        raise r.fail(("version",), f"IR version {_short(version)} is not supported "
                                   f"(this nnsmt reads {' and '.join(v + '.x' for v in READS)})")
    nodes = r.field(d, "nodes", (), list, "a list of nodes")
    if not nodes:
        raise r.fail(("nodes",), "no nodes")
    outputs = r.field(d, "outputs", (), list, "a list of value names")
    for k, o in enumerate(outputs):
        if not isinstance(o, str):
            raise r.fail(("outputs", k), f"expected a value name, got {_kind(o)}")
    meta = d.get("meta", {})
    if not isinstance(meta, dict):
        raise r.fail(("meta",), f"expected an object of strings, got {_kind(meta)}")
    parsed = [r.node(nd, ("nodes", i)) for i, nd in enumerate(nodes)]
    g = Graph(tuple(parsed), tuple(outputs), {str(k): str(v) for k, v in meta.items()})
    try:
        return g.check()
    except InputError as e:
        raise InputError(f"{source}: {e}") from None


def network_from_json(d: dict, path) -> Graph:
    """`graph_from_json` for an IR file loaded as a network: that file is its source (messages
    name it) and its format "ir-json", so no float replay or write-back reaches for the model it
    was exported from (gone, or different after an edit); that model stays in meta as
    `exported_from`."""
    g = graph_from_json(d, str(path))
    meta = {k: v for k, v in g.meta.items() if k not in ("source", "format")}
    if "source" in g.meta:
        meta |= {"exported_from": g.meta["source"], "exported_format": g.meta.get("format", "")}
    return g.replace(meta=meta | {"source": str(path), "format": "ir-json"})


def save_json(g: Graph, path) -> None:
    """Write the IR JSON form; an unwritable path is an InputError naming it."""
    text = json.dumps(graph_to_json(g), indent=1) + "\n"
    try:
        Path(path).write_text(text)
    except OSError as e:
        raise InputError(f"{path}: cannot write: {e.strerror or e}") from None


def read_json(path) -> object:
    """`json.loads` of a file; unreadable files and invalid JSON are one-line InputErrors."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror or e}") from None
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not valid JSON: not UTF-8 text (byte {e.start})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: not valid JSON: {e.msg} (line {e.lineno}, column {e.colno})") from None
    except RecursionError:
        raise InputError(f"{path}: not valid JSON: nested too deeply") from None


def load_json(path) -> Graph:
    """The graph of an IR JSON file (see `graph_from_json`)."""
    return graph_from_json(read_json(path), str(path))


def schema() -> dict:
    """The JSON Schema of the IR JSON form, shipped with the package."""
    from importlib.resources import files
    return json.loads(files("nnsmt").joinpath("schema/ir.schema.json").read_text())


def validate_schema(doc, source: str) -> bool:
    """Check `doc` against the shipped JSON Schema; False if jsonschema is not installed.

    Raises:
        InputError: one line naming the file and the JSON path of the first violation.
    """
    try:
        import jsonschema
    except ImportError:
        return False
    errors = sorted(jsonschema.Draft202012Validator(schema()).iter_errors(doc),
                    key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))))
    if errors:
        e = jsonschema.exceptions.best_match(errors)
        where = "/".join(map(str, e.absolute_path)) or "(top level)"
        msg = " ".join(e.message.split())
        raise InputError(f"{source}: {where}: {msg[:300]} (JSON Schema nnsmt-ir)")
    return True

