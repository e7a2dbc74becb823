"""VNN-LIB 2 queries: typed tensor variables over one or more networks, parsed by the standard's
own parser (the `vnnlib` package), and lowered onto one IR graph and a VNN-LIB 1.0-style property.

A query declares networks, each with inputs, hidden nodes (by ONNX name) and outputs, and
asserts over their elements (`X[0,3]`). nnsmt gives every declared element a flat global name,
so one `Property` over `X_k` / `Y_k` states the whole query and every engine applies unchanged:

- inputs, in declaration order across networks, are `X_0 .. X_{n-1}` (row-major in each tensor);
- hidden nodes and outputs, network by network (hidden first, then outputs, each in
  declaration order), are `Y_0 .. Y_{m-1}`.

`combine` builds the matching graph: one input of n elements (plus rounding-error elements
under float semantics, `nnsmt.floatsem`), every network a renamed copy reading its slice of it,
and one output of m elements gathering the declared hidden and output values.

Constants keep their lexeme exactly. In a float-typed comparison a constant denotes the value
of that type nearest to it (the standard's element judgement: `0.1` is a float32 element);
the arithmetic of assertions is exact over those values.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from fractions import Fraction
from math import prod
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from .assignment import Decl
from .errors import InputError, UnsupportedError
from .ir import Affine, Const, Graph, Input, Sparse, with_operands
from .terms import Add, And, Cmp, Mul, Not, Num, Or, Var
from .vnnlib import VERSION_HEADER, Property

__all__ = ["Network", "Query2", "parse_query", "load_query", "is_vnnlib2", "from_property",
           "combine", "round_to", "FLOAT_TYPES", "SOUND_TYPES"]

FLOAT_TYPES = ("float64", "float32", "float16")
INT_TYPES = ("int64", "int32", "int16", "int8", "uint64", "uint32", "uint16", "uint8")
SOUND_TYPES = FLOAT_TYPES + INT_TYPES + ("real",)
"""The element types nnsmt answers soundly: exactly over the reals (`real`), or over IEEE
execution of the networks in their float type (`nnsmt.floatsem`); integer values (a Shape, a
Cast to an integer type) are exact integers either way. Inputs must be float or real."""

VERSIONS = ("1.0", "2.1")
"""The lowest and highest VNN-LIB version nnsmt reads (1.0 by its own parser, 2.x by the
standard's)."""

_DTYPES = {"F16": "float16", "F32": "float32", "F64": "float64", "BF16": "bfloat16",
           "F8E4M3FN": "float8e4m3fn", "F8E5M2": "float8e5m2", "F8E4M3FNUZ": "float8e4m3fnuz",
           "F8E5M2FNUZ": "float8e5m2fnuz", "F4E2M1": "float4e2m1", "I8": "int8", "I16": "int16",
           "I32": "int32", "I64": "int64", "U8": "uint8", "U16": "uint16", "U32": "uint32",
           "U64": "uint64", "C64": "complex64", "C128": "complex128", "Bool": "bool",
           "String": "string", "Real": "real"}
_DECL = re.compile(r"\(\s*declare-(?:input|hidden|output)\s+([A-Za-z][A-Za-z0-9_]*)\s+([A-Za-z][A-Za-z0-9_]*)")


@dataclass(frozen=True)
class Network:
    """One `declare-network`: its name, `equal_to`/`isomorphic_to` (the referenced network's
    name or ""), and its declarations (each a `Decl`; hidden ones carry their ONNX name)."""

    name: str
    inputs: tuple[Decl, ...]
    hidden: tuple[Decl, ...] = ()
    outputs: tuple[Decl, ...] = ()
    hidden_onnx: tuple[str, ...] = ()
    equal_to: str = ""
    isomorphic_to: str = ""

    @property
    def decls(self) -> tuple[Decl, ...]:
        """Inputs, hidden nodes, outputs: the assignment order of the standard's CLI."""
        return self.inputs + self.hidden + self.outputs

    @property
    def dtypes(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(d.dtype for d in self.decls))


@dataclass(frozen=True)
class Query2:
    """A VNN-LIB 2 query: networks in declaration order and the property over the global flat
    names (`prop`, a VNN-LIB 1.0 `Property`: X_k inputs, Y_k hidden and outputs).

    `offsets` maps each declared variable to the index of its first element in X (inputs) or Y
    (hidden and outputs)."""

    version: str
    networks: tuple[Network, ...]
    prop: Property
    offsets: Mapping[str, int] = field(default_factory=dict)
    source: str = "<string>"

    @property
    def decls(self) -> tuple[Decl, ...]:
        return tuple(d for n in self.networks for d in n.decls)

    @property
    def inputs(self) -> tuple[Decl, ...]:
        return tuple(d for n in self.networks for d in n.inputs)

    def needs_file(self) -> tuple[str, ...]:
        """Names of the networks the command line must map to a model file (all but
        `equal-to` ones)."""
        return tuple(n.name for n in self.networks if not n.equal_to)

    def dtype(self) -> str:
        """The query's one element type, or "mixed"."""
        ts = {d.dtype for d in self.decls}
        return ts.pop() if len(ts) == 1 else "mixed"

    def theories(self) -> dict[str, str]:
        """The standard's theories this query belongs to (the smallest of each set)."""
        hidden = "H" if any(n.hidden for n in self.networks) else "NH"
        io = "MIO" if any(len(n.inputs) > 1 or len(n.outputs) > 1 for n in self.networks) else "SIO"
        if len(self.networks) == 1:
            net = "SNET"
        elif all(n.equal_to for n in self.networks[1:]):
            net = "MENET"
        elif all(n.equal_to or n.isomorphic_to for n in self.networks[1:]):
            net = "MINET"
        else:
            net = "MNET"
        return {"hidden": hidden, "io": io, "networks": net}


def is_vnnlib2(path) -> bool:
    """Whether the file starts with a `(vnnlib-version <2.x>)` header."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            head = f.read(4096)
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror}") from None
    m = VERSION_HEADER.match(head)
    return bool(m) and int(m.group(1)) >= 2


def load_query(path) -> Query2:
    """Parse a VNN-LIB 2 query file (InputError naming file and line on any error)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror}") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a text file (UTF-8)") from None
    return parse_query(text, str(path))


def _parser():
    try:
        import vnnlib
    except ImportError:
        raise UnsupportedError("VNN-LIB 2 queries need the standard's parser: pip install vnnlib") from None
    return vnnlib


def _parse_error(e: Exception, source: str) -> InputError:
    """The parser's exception (a JSON report or a syntax message) as one line."""
    msg = str(e).strip()
    try:
        rep = json.loads(msg)
        errs = rep.get("errors") or []
        if errs:
            e0 = errs[0]
            more = f" (and {len(errs) - 1} more)" if len(errs) > 1 else ""
            sym = e0.get("offendingSymbol") or ""
            sym = f" {sym!r}" if sym and sym not in e0.get("message", "") else ""
            hint = f": {e0['hint']}" if e0.get("hint") else ""
            return InputError(f"{source}:{e0.get('line', '?')}: {e0.get('message', 'error')}{sym}{hint}{more}")
    except (ValueError, AttributeError, TypeError):
        pass
    m = re.search(r"line (\d+)(?:, column (\d+))?", msg)
    line = f":{m.group(1)}" if m else ""
    return InputError(f"{source}{line}: {' '.join(msg.split())}")


def parse_query(text: str, source: str = "<string>") -> Query2:
    """Parse VNN-LIB 2 text into a `Query2` (InputError naming the line on errors)."""
    m = VERSION_HEADER.match(text)
    if not m:
        raise InputError(f"{source}:1: not a VNN-LIB 2 query: it must start with (vnnlib-version <2.x>)")
    version = f"{m.group(1)}.{m.group(2)}"
    if int(m.group(1)) != 2:
        raise UnsupportedError(f"{source}:1: VNN-LIB version {version} (nnsmt reads 1.0 and 2.x)")
    vnnlib = _parser()
    try:
        q = vnnlib.parse_query_string(text)
    except Exception as e:  # the parser raises VNNLibException (and RuntimeError on odd input)
        q = _isomorphic_retry(vnnlib, text, e)
        if q is None:
            raise _parse_error(e, source) from None
    nets = []
    lexemes = dict(_DECL.findall(text))  # the parser knows `real` but not the examples' `Real`
    for n in q.networks:
        def decl(d, kind):
            # the declared type as written (the parser maps `Real`, the standard's own examples'
            # spelling, to Unknown; and isomorphic networks may have been parsed retyped)
            lex = lexemes.get(d.name, "")
            dt = "real" if lex.lower() == "real" else lex
            if dt not in _DTYPES.values():
                dt = _DTYPES.get(str(d.dtype).rsplit(".", 1)[-1], "")
            if dt not in _DTYPES.values():
                raise InputError(f"{source}: {d.name} is declared with an unknown element type "
                                 f"{lex or str(d.dtype)!r}")
            return Decl(d.name, dt, tuple(int(s) for s in d.shape), kind, n.name)
        hidden = tuple(n.hidden)
        nets.append(Network(n.name, tuple(decl(d, "input") for d in n.inputs),
                            tuple(decl(d, "hidden") for d in hidden),
                            tuple(decl(d, "output") for d in n.outputs),
                            tuple((d.onnx_name or "").strip('"') for d in hidden),
                            n.equal_to or "", n.isometric_to or ""))
    nets = tuple(nets)
    seen: set[str] = set()
    for n in nets:  # the standard's scoping: network names are unique (the parser lets it pass)
        if n.name in seen:
            m = [i for i, ln in enumerate(text.splitlines(), 1)
                 if re.search(rf"\(\s*declare-network\s+{re.escape(n.name)}\b", ln)]
            raise InputError(f"{source}:{m[-1] if m else '?'}: network {n.name!r} is declared twice "
                             "(network names must be unique)")
        seen.add(n.name)
    offsets, names = _layout(nets)
    types = {d.name: d.dtype for net in nets for d in net.decls}
    asserts = []
    for a in q.assertions:
        t = _bool(a.expr, names, types, source)
        asserts.append((_line(a.expr), t))
    n_in = sum(d.size for net in nets for d in net.inputs)
    n_out = sum(d.size for net in nets for d in net.hidden + net.outputs)
    prop = Property(n_in, n_out, tuple(asserts), source)
    return Query2(version, nets, prop, offsets, source)


def _isomorphic_retry(vnnlib, text: str, e: Exception):
    """The parser (vnnlib 1.0.2) demands equal element types of `isomorphic-to` networks,
    which the standard does not (only shapes must match: chapter 3, typing). When that is the
    only complaint, parse a copy with the referenced network's types (the declared types are
    read from the text by `parse_query`)."""
    try:
        errs = json.loads(str(e)).get("errors") or []
    except (ValueError, AttributeError):
        return None
    if not errs or not all(x.get("errorCode") == "TypeMismatch" and "between networks" in
                           x.get("message", "") for x in errs):
        return None
    starts = [m.start() for m in re.finditer(r"\(\s*declare-network\b", text)]
    end = re.search(r"\(\s*assert\b", text)
    bounds = starts + [end.start() if end else len(text)]
    blocks = {}
    for a, b in zip(bounds, bounds[1:]):
        blk = text[a:b]
        name = re.match(r"\(\s*declare-network\s+([A-Za-z][A-Za-z0-9_]*)", blk).group(1)
        iso = re.search(r"\(\s*isomorphic-to\s+([A-Za-z][A-Za-z0-9_]*)\s*\)", blk)
        blocks[name] = (a, b, iso.group(1) if iso else None)
    kinds = r"\(\s*declare-(input|output)\s+[A-Za-z][A-Za-z0-9_]*\s+([A-Za-z][A-Za-z0-9_]*)"
    out, pos = [], 0
    for name, (a, b, ref) in blocks.items():
        if ref is None or ref not in blocks:
            continue
        ra, rb, _ = blocks[ref]
        ref_types = {k: [m.group(2) for m in re.finditer(kinds, text[ra:rb]) if m.group(1) == k]
                     for k in ("input", "output")}
        seen = {"input": 0, "output": 0}

        def swap(m):
            k = m.group(1)
            i = seen[k]
            seen[k] += 1
            ts = ref_types[k]
            return m.group(0)[:m.start(2) - m.start(0)] + (ts[i] if i < len(ts) else m.group(2))
        out.append(text[pos:a])
        out.append(re.sub(kinds, swap, text[a:b]))
        pos = b
    out.append(text[pos:])
    try:
        return vnnlib.parse_query_string("".join(out))
    except Exception:  # noqa: BLE001 - still not parseable: report the first error
        return None


def _layout(nets) -> tuple[dict[str, int], dict[str, tuple[str, int, tuple[int, ...]]]]:
    offsets: dict[str, int] = {}
    names: dict[str, tuple[str, int, tuple[int, ...]]] = {}
    x = y = 0
    for net in nets:
        for d in net.inputs:
            offsets[d.name], names[d.name] = x, ("X", x, d.shape)
            x += d.size
    for net in nets:
        for d in net.hidden + net.outputs:
            offsets[d.name], names[d.name] = y, ("Y", y, d.shape)
            y += d.size
    return offsets, names


def _line(node) -> int:
    line = getattr(node, "line", None)
    if isinstance(line, int) and line > 0:
        return line
    for c in node.children():
        found = _line(c)
        if found:
            return found
    return 0


_CMP = {"LessEqual": "<=", "LessThan": "<", "GreaterEqual": ">=", "GreaterThan": ">", "Equal": "="}


def _bool(e, names, types, source):
    kind = type(e).__name__
    if kind == "And":
        return And(tuple(_bool(a, names, types, source) for a in e.args))
    if kind == "Or":
        return Or(tuple(_bool(a, names, types, source) for a in e.args))
    if kind in _CMP or kind == "NotEqual":
        dtype = _expr_type(e.lhs, types) or _expr_type(e.rhs, types) or "real"
        lhs, rhs = _arith(e.lhs, names, dtype, source), _arith(e.rhs, names, dtype, source)
        if kind == "NotEqual":
            return Not(Cmp("=", lhs, rhs))
        return Cmp(_CMP[kind], lhs, rhs)
    raise UnsupportedError(f"{source}:{_line(e)}: unsupported boolean expression {kind}")


def _expr_type(e, types):
    if type(e).__name__ == "Var":
        return types.get(e.name)
    for c in e.children():
        t = _expr_type(c, types)
        if t:
            return t
    return None


def _arith(e, names, dtype, source):
    kind = type(e).__name__
    if kind == "Var":
        base, off, shape = names[e.name]
        idx = list(e.indices)
        if len(idx) != len(shape) or any(not 0 <= i < s for i, s in zip(idx, shape)):
            raise InputError(f"{source}:{_line(e)}: index {idx} does not fit {e.name}'s shape {list(shape)}")
        flat = int(np.ravel_multi_index(idx, shape)) if shape else 0
        return Var(f"{base}_{off + flat}")
    if kind in ("Float", "Int", "IntExpr", "Literal"):
        lex = getattr(e, "lexeme", "") or str(e)
        try:
            v = Fraction(lex)
        except ValueError:
            raise InputError(f"{source}:{_line(e)}: {lex!r} is not a number") from None
        try:
            return Num(round_to(v, dtype))
        except InputError as err:
            raise InputError(f"{source}:{_line(e)}: {err}") from None
    if kind == "Negate":
        return Mul((Num(-1), _arith(e.expr, names, dtype, source)))
    if kind == "Plus":
        return Add(tuple(_arith(a, names, dtype, source) for a in e.args))
    if kind == "Minus":
        head = _arith(e.head, names, dtype, source)
        rest = [Mul((Num(-1), _arith(a, names, dtype, source))) for a in e.rest]
        return Add((head, *rest))
    if kind == "Multiply":
        return Mul(tuple(_arith(a, names, dtype, source) for a in e.args))
    raise UnsupportedError(f"{source}:{_line(e)}: unsupported arithmetic expression {kind}")


def round_to(v: Fraction, dtype: str) -> Fraction:
    """`v` as the nearest value of `dtype` (ties to even), exactly; `real` and integer types
    keep it. Beyond the largest finite value: InputError (the constant is ±inf there)."""
    if dtype not in FLOAT_TYPES:
        return v
    ft = np.dtype(dtype).type
    top = Fraction(float(np.finfo(ft).max))
    # beyond the largest finite value by half an ulp or more, IEEE rounding gives inf
    half_ulp = (top - Fraction(float(np.nextafter(ft(top), ft(0))))) / 2
    if abs(v) >= top + half_ulp:
        raise InputError(f"constant {v} is beyond the largest finite {dtype}")
    with np.errstate(over="ignore"):
        a = ft(float(v))  # within an ulp or so; fixed exactly below
        cands = [c for c in (a, np.nextafter(a, ft(np.inf)), np.nextafter(a, ft(-np.inf)))
                 if np.isfinite(c)]
    best = min(cands, key=lambda c: (abs(Fraction(float(c)) - v),
                                     int(np.frombuffer(np.array(c).tobytes(), np.uint8)[0]) & 1))
    return Fraction(float(best))


def from_property(prop: Property, network: str, in_shape, out_shape, dtype: str = "real") -> Query2:
    """A VNN-LIB 1.0 property as a one-network VNN-LIB 2 query (X_i and Y_j keep their names,
    which are the flat names already). VNN-LIB 1.0 declares its variables Real: `real`."""
    n_in, n_out = prop.n_inputs, prop.n_outputs
    in_shape = tuple(d or 1 for d in (in_shape or (n_in,)))
    out_shape = tuple(d or 1 for d in (out_shape or (n_out,)))
    ish = tuple(in_shape) if prod(in_shape) == n_in else (n_in,)
    osh = tuple(out_shape) if prod(out_shape) == n_out else (n_out,)
    net = Network(network, (Decl("X", dtype, ish, "input", network),), (),
                  (Decl("Y", dtype, osh, "output", network),))
    return Query2("1.0", (net,), prop, {"X": 0, "Y": 0}, prop.source)


# -- lowering ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Part:
    """One network's graph, ready to combine: a single input (`graph.inputs[0]`, whose first
    `n` elements are the declared inputs and the rest rounding errors bounded by
    `err_lo`/`err_hi`) and outputs = the declared hidden values then the declared outputs."""

    graph: Graph
    n: int
    err_lo: tuple[Fraction, ...] = ()
    err_hi: tuple[Fraction, ...] = ()


def single_input(g: Graph, values: Sequence[str]) -> Graph:
    """`g` with its inputs read from one new input `x` (their concatenation, in graph order)
    and `values` as its outputs."""
    ins = g.inputs
    n = sum(i.dim for i in ins)
    names = {nd.name for nd in g.nodes}
    x = "x"
    while x in names:
        x += "_"
    nodes: list = [Input(x, n)]
    off = 0
    for nd in g.nodes:
        if isinstance(nd, Input):
            sel = Sparse.selection(range(nd.dim), range(off, off + nd.dim), (nd.dim, n))
            nodes.append(Affine(nd.name, x, sel, Const(np.zeros(nd.dim)), shape=nd.shape, onnx=nd.onnx))
            off += nd.dim
        else:
            nodes.append(nd)
    return Graph(nodes, tuple(values), g.meta).check()


def combine(query: Query2, parts: Sequence[Part]) -> tuple[Graph, Property]:
    """One graph and property for the whole query: `parts[k]` is network k's graph (see Part).

    The graph's input holds the declared inputs (X_0..X_{n-1}) then every part's error
    elements; its output `y` the hidden and output values (Y_0..). The property is the query's,
    over n + E inputs, with each error element boxed, and `split_dims = n` so input splitting
    bisects declared inputs only."""
    n_in = query.prop.n_inputs
    n_err = sum(len(p.err_lo) for p in parts)
    width = n_in + n_err
    nodes: list = [Input("x", width)]
    picks: dict[str, tuple[list, list, int]] = {}  # value -> (rows of y, its elements, its dim)
    n_out = query.prop.n_outputs
    off = err_off = y_off = 0
    # float semantics' hints to the bounds, renamed (`nnsmt.floatsem`): the error values
    # (noise), each network's declared inputs as columns of x (input_view), and the affine
    # rows whose errors are recomputed per sub-box, with global error elements (float_errors)
    noise: list[str] = []
    views: dict[str, list[int]] = {}
    local: list = []
    # declared hidden and outputs are Y in network order (hidden first): as `_layout`
    for k, (net, p) in enumerate(zip(query.networks, parts)):
        g, pre = p.graph, f"n{k}_"
        inp = g.inputs[0]
        e_k = inp.dim - p.n
        cols = list(range(off, off + p.n)) + list(range(n_in + err_off, n_in + err_off + e_k))
        nodes.append(Affine(pre + inp.name, "x", Sparse.selection(range(len(cols)), cols, (len(cols), width)),
                            Const(np.zeros(inp.dim))))
        for nd in g.nodes:
            if nd is not inp:
                nodes.append(replace(with_operands(nd, lambda s: pre + s), name=pre + nd.name))
        dims = g.dims()
        for v in g.outputs:
            rows, elems, _ = picks.setdefault(pre + v, ([], [], dims[v]))
            rows += range(y_off, y_off + dims[v])
            elems += range(dims[v])
            y_off += dims[v]
        noise += [pre + v for v in json.loads(g.meta.get("noise", "[]"))]
        views |= {pre + v: [off + c for c in c_] for v, c_ in json.loads(g.meta.get("input_view", "{}")).items()}
        local += [[pre + name, pre + ename, rows, n_in + err_off + first - p.n, g.meta["float_semantics"]]
                  for name, ename, rows, first in json.loads(g.meta.get("float_errors", "[]"))]
        off += p.n
        err_off += e_k
    if y_off != n_out:
        raise InputError(f"{query.source}: the networks give {y_off} hidden and output elements, "
                         f"the query declares {n_out}")
    items = []
    for v, (rows, elems, d) in picks.items():  # a value declared twice is picked twice
        order = np.argsort(rows, kind="stable")
        items.append((v, Sparse.selection(np.asarray(rows)[order], np.asarray(elems)[order], (n_out, d))))
    nodes.append(Affine("y", items[0][0], items[0][1], Const(np.zeros(n_out)), more=tuple(items[1:])))
    meta = {"source": ", ".join(dict.fromkeys(p.graph.source for p in parts)), "query": query.source}
    for key, val in (("noise", noise), ("input_view", views), ("float_errors", local)):
        if val:
            meta[key] = json.dumps(val)
    if any(p.graph.meta.get("dropped_softmax") == "true" for p in parts):
        if len(parts) > 1 or any(net.hidden for net in query.networks):
            raise UnsupportedError(f"{query.source}: a network ends in a softmax, which nnsmt "
                                   "drops (keeping its argmax): only for one network without hidden nodes")
        meta["dropped_softmax"] = "true"
    graph = Graph(nodes, ("y",), meta).check()
    asserts = list(query.prop.asserts)
    elo = [v for p in parts for v in p.err_lo]
    ehi = [v for p in parts for v in p.err_hi]
    bounds = []
    for j, (lo, hi) in enumerate(zip(elo, ehi)):
        x = Var(f"X_{n_in + j}")
        bounds += [Cmp(">=", x, Num(lo)), Cmp("<=", x, Num(hi))]
    if bounds:
        asserts.append((0, And(tuple(bounds))))
    prop = Property(width, n_out, tuple(asserts), query.source, split_dims=n_in)
    return graph, prop
