"""The IR: a flat, typed, topologically ordered graph of Input/Affine/Relu/Sigmoid/Argmax nodes.

Every value is a vector; a node defines one value once. Parameters of an affine map are
either concrete (`Const`) or symbolic (`Sym`, one solver variable per element).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from types import MappingProxyType
from typing import Mapping, Union

import numpy as np

from .errors import InputError, InternalError, UnsupportedError

IR_VERSION = "1.0"


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.array(a, copy=True)
    a.setflags(write=False)
    return a


def exact_array(values) -> np.ndarray:
    """float64 array when every value is a float64 exactly, else an object array of Fractions."""
    a = np.asarray(values)
    if a.dtype != object:
        a = a.astype(np.float64)
        if not np.all(np.isfinite(a)):
            raise InputError("parameter holds NaN or Inf")
        return a
    flat = [Fraction(v) for v in a.ravel()]
    try:
        # a float is a dyadic rational: test the denominator first, it fails fast (e.g. 1/3)
        is_float = all(not (v.denominator & (v.denominator - 1)) and float(v) == v for v in flat)
    except OverflowError:
        is_float = False  # a rational beyond the float64 range stays a Fraction
    if is_float:
        return np.array([float(v) for v in flat], dtype=np.float64).reshape(a.shape)
    out = np.empty(a.shape, dtype=object)
    out.ravel()[:] = flat  # ravel of a fresh contiguous array is a view
    return out


def rounded(values, dtype) -> tuple[np.ndarray, bool]:
    """`values` (float64 or exact Fractions) rounded to the float `dtype` (through float64, to
    nearest) and whether every value came through exactly: how parameters are written out."""
    a = np.asarray(values)
    flat = list(a.ravel())
    out = np.array([float(v) for v in flat], dtype=np.float64).astype(dtype).reshape(a.shape)
    return out, all(Fraction(v) == Fraction(float(o)) for v, o in zip(flat, out.ravel()))


@dataclass(frozen=True, slots=True, eq=False)
class Const:
    """Concrete parameter. `value` is read-only float64 (float32 weights are exact in it), or an
    object array of `Fraction` where a folded constant (e.g. division by 3) is not a float."""

    value: np.ndarray

    def __post_init__(self):
        object.__setattr__(self, "value", _frozen(exact_array(self.value)))

    @property
    def shape(self) -> tuple[int, ...]:
        return self.value.shape

    @property
    def is_float(self) -> bool:
        return self.value.dtype == np.float64

    def fractions(self) -> np.ndarray:
        """Object array of exact Fractions (float64 converts exactly)."""
        out = np.empty(self.value.shape, dtype=object)
        out.ravel()[:] = [Fraction(v) for v in self.value.ravel()]
        return out

    def floats(self) -> np.ndarray:
        return self.value.astype(np.float64) if not self.is_float else self.value


@dataclass(frozen=True, slots=True, eq=False)
class Sym:
    """Symbolic parameter: one solver variable `name_i_j` per element.

    `lo`/`hi` box each element (None = unbounded); `nominal` is the value the network had before
    the parameter was made symbolic (for ±δ queries and for replaying).
    """

    name: str
    shape: tuple[int, ...]
    lo: np.ndarray | None = None
    hi: np.ndarray | None = None
    nominal: np.ndarray | None = None

    def __post_init__(self):
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))
        for f in ("lo", "hi", "nominal"):
            v = getattr(self, f)
            if v is not None:
                v = exact_array(np.broadcast_to(np.asarray(v), self.shape))
                object.__setattr__(self, f, _frozen(v))

    def var_names(self) -> np.ndarray:
        """Solver variable names, an array of str with this parameter's shape."""
        idx = np.indices(self.shape).reshape(len(self.shape), -1).T
        names = [self.name + "".join(f"_{i}" for i in ix) for ix in idx]
        return np.array(names, dtype=object).reshape(self.shape)


Param = Union[Const, Sym]


@dataclass(frozen=True, slots=True, eq=False)
class Input:
    """A graph input of `dim` reals, optionally boxed by `lo`/`hi` (arrays of length dim)."""

    name: str
    dim: int
    lo: np.ndarray | None = None
    hi: np.ndarray | None = None

    def __post_init__(self):
        for f in ("lo", "hi"):
            v = getattr(self, f)
            if v is not None:
                object.__setattr__(self, f, _frozen(exact_array(np.broadcast_to(v, (self.dim,)))))


@dataclass(frozen=True, slots=True, eq=False)
class Affine:
    """`name = weight @ x + bias`; weight has shape (out, in), bias (out,)."""

    name: str
    x: str
    weight: Param
    bias: Param


@dataclass(frozen=True, slots=True, eq=False)
class Relu:
    name: str
    x: str


@dataclass(frozen=True, slots=True, eq=False)
class Sigmoid:
    name: str
    x: str


@dataclass(frozen=True, slots=True, eq=False)
class Argmax:
    """Index of the largest element of x (first one on ties, as numpy); a value of dimension 1."""

    name: str
    x: str


Node = Union[Input, Affine, Relu, Sigmoid, Argmax]
OPS = {Input: "input", Affine: "affine", Relu: "relu", Sigmoid: "sigmoid", Argmax: "argmax"}


def operands(node: Node) -> tuple[str, ...]:
    """Names of the values `node` reads (none for an Input)."""
    match node:
        case Input():
            return ()
        case Affine() | Relu() | Sigmoid() | Argmax():
            return (node.x,)
    raise InternalError(f"unknown IR node type {type(node).__name__} (node {getattr(node, 'name', node)!r})")


@dataclass(frozen=True, slots=True, eq=False)
class Graph:
    """Nodes in topological order and the names of the output values.

    `meta` holds provenance and semantics notes, e.g. {"source": "net.onnx",
    "dropped_softmax": "true"} (a final softmax was removed: outputs are logits, same argmax).
    """

    nodes: tuple[Node, ...]
    outputs: tuple[str, ...]
    meta: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "nodes", tuple(self.nodes))
        object.__setattr__(self, "outputs", tuple(self.outputs))
        object.__setattr__(self, "meta", MappingProxyType(dict(self.meta)))

    @property
    def inputs(self) -> tuple[Input, ...]:
        return tuple(n for n in self.nodes if isinstance(n, Input))

    @property
    def source(self) -> str:
        """Where the graph came from (meta["source"]), for messages."""
        return self.meta.get("source", "network")

    def node(self, name: str) -> Node:
        """The node defining value `name`; InputError when there is none."""
        for n in self.nodes:
            if n.name == name:
                return n
        raise InputError(f"{self.source}: no value named {name!r} "
                         f"(values: {', '.join(n.name for n in self.nodes)})")

    def single_io(self, what: str) -> tuple[Input, str]:
        """The only input node and the only output name.

        Args:
            what: what needs them, for the message (e.g. "robustness").

        Raises:
            UnsupportedError: the graph has several inputs or outputs; the message names the
                source and `what`.
        """
        if len(self.inputs) != 1 or len(self.outputs) != 1:
            raise UnsupportedError(f"{self.source}: {what} needs exactly one input and one output "
                                   f"(has {len(self.inputs)} and {len(self.outputs)})")
        return self.inputs[0], self.outputs[0]

    def users(self) -> dict[str, list[Node]]:
        """Value name -> the nodes that read it, in graph order (outputs are not counted)."""
        out: dict[str, list[Node]] = {n.name: [] for n in self.nodes}
        for n in self.nodes:
            for v in operands(n):
                out.setdefault(v, []).append(n)
        return out

    def slice(self, outputs) -> "Graph":
        """The cone of influence of the values `outputs`: the nodes they depend on (themselves
        included), in graph order, with `outputs` as the outputs. A checked Graph.

        Raises:
            InputError: a name in `outputs` is not a value of the graph.
        """
        outputs = (outputs,) if isinstance(outputs, str) else tuple(outputs)
        defined = {n.name for n in self.nodes}
        for o in outputs:
            if o not in defined:
                self.node(o)  # raises, naming the values
        need, keep = set(outputs), []
        for n in reversed(self.nodes):
            if n.name in need:
                keep.append(n)
                need.update(operands(n))
        return Graph(tuple(reversed(keep)), outputs, self.meta).check()

    def dims(self) -> dict[str, int]:
        """Dimension of every value (assumes a checked graph)."""
        d: dict[str, int] = {}
        for n in self.nodes:
            match n:
                case Input():
                    d[n.name] = n.dim
                case Affine():
                    d[n.name] = n.weight.shape[0]
                case Relu() | Sigmoid():
                    d[n.name] = d[n.x]
                case Argmax():
                    d[n.name] = 1
        return d

    def params(self) -> list[tuple[str, str, Param]]:
        """(node, "weight"|"bias", param) for every affine parameter, in graph order."""
        return [(n.name, f, getattr(n, f)) for n in self.nodes if isinstance(n, Affine)
                for f in ("weight", "bias")]

    def replace(self, nodes=None, outputs=None, meta=None) -> "Graph":
        return Graph(self.nodes if nodes is None else nodes,
                     self.outputs if outputs is None else outputs,
                     self.meta if meta is None else meta)

    def check(self) -> "Graph":
        """Raise InputError unless names are unique identifiers, every value is defined before
        use, and dimensions agree. Returns self so it can be chained."""
        dims: dict[str, int] = {}
        indices: set[str] = set()  # argmax values: an index, not a vector
        syms: set[str] = set()

        def fail(msg):
            raise InputError(f"invalid IR graph: {msg}")

        if not self.nodes:
            fail("no nodes")
        for n in self.nodes:
            if type(n) not in OPS:
                fail(f"unknown node type {type(n).__name__}")
            if not _is_ident(n.name):
                fail(f"node name {n.name!r} is not an identifier ([A-Za-z_][A-Za-z0-9_]*)")
            if n.name in dims:
                fail(f"value {n.name!r} defined twice")
            for x in operands(n):
                if x not in dims:
                    fail(f"node {n.name!r} uses {x!r} before it is defined")
                if x in indices:
                    fail(f"node {n.name!r} uses the index {x!r} of an argmax as a vector")
            match n:
                case Input():
                    if not (isinstance(n.dim, int) and n.dim > 0):
                        fail(f"input {n.name!r} has dimension {n.dim!r}")
                    if n.lo is not None and n.hi is not None and np.any(n.lo > n.hi):
                        fail(f"input {n.name!r} has a lower bound above its upper bound")
                    dims[n.name] = n.dim
                case Affine():
                    ws, bs = n.weight.shape, n.bias.shape
                    if len(ws) != 2 or ws[1] != dims[n.x]:
                        fail(f"affine {n.name!r}: weight shape {ws} does not take {n.x!r} "
                             f"of dimension {dims[n.x]}")
                    if bs != (ws[0],):
                        fail(f"affine {n.name!r}: bias shape {bs} does not match weight {ws}")
                    for p in (n.weight, n.bias):
                        if isinstance(p, Sym):
                            if not _is_ident(p.name) or p.name in syms or p.name in dims:
                                fail(f"symbolic parameter name {p.name!r} is not a fresh identifier")
                            syms.add(p.name)
                    dims[n.name] = ws[0]
                case Relu() | Sigmoid():
                    dims[n.name] = dims[n.x]
                case Argmax():
                    dims[n.name] = 1
                    indices.add(n.name)
        clash = syms & set(dims)
        if clash:
            fail(f"symbolic parameter names clash with values: {sorted(clash)}")
        if not self.outputs:
            fail("no outputs")
        for o in self.outputs:
            if o not in dims:
                fail(f"output {o!r} is not defined")
        if not self.inputs:
            fail("no inputs")
        return self


def _is_ident(s) -> bool:
    return isinstance(s, str) and s.isascii() and (s[:1].isalpha() or s[:1] == "_") and \
        s.replace("_", "a").isalnum()
