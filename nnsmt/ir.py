"""The IR: a flat, typed, topologically ordered graph (a DAG) of Input/Affine/Relu/Sigmoid/Argmax
nodes and a small family of exact elementwise nodes (Mul, Div, Pow, Exp, Compare, Select, ToInt).

Every value is a tensor stored flat (row-major), with its shape recorded (`Graph.shapes`); a
node defines one value once and keeps the ONNX tensor name it came from (`onnx`), so queries
can name hidden values. An affine node may read several values, `y = Σ_k W_k x_k + b`
(residual additions, concatenation, convolution over one input alike). Parameters of an affine
map are concrete (`Const`, dense), concrete and sparse (`Sparse`, e.g. a convolution as a
matrix), or symbolic (`Sym`, one solver variable per element; `SparseSym`, one per parameter
of a sparse matrix, shared by the entries tied to it).

The elementwise nodes say what SMT can say exactly beyond piecewise-linear maps. Each acts on
values of one dimension, element by element, over the reals:

- `Mul(a, b)`: `a * b`.
- `Div(a, b)`: `a / b`, real division. Defined only where `b != 0`: the network's *domain* is
  the set of inputs at which every divisor is nonzero, and every query is asked over that
  domain (the SMT encoding asserts `b != 0`; SMT-LIB's `/` is total but unspecified at 0, so
  leaving it out would let a solver pick any value for `a / 0`). The exact interpreter refuses
  a point outside the domain; onnxruntime gives inf or NaN there.
- `Pow(x, p)`: `x ** p` for a constant rational `p = m/n` (lowest terms, |m| and n at most
  POW_MAX). An integer p >= 0 is a product of p factors (`x ** 0 = 1`, also at 0, as ONNX);
  a negative integer is `1 / x ** -p`, defined where `x != 0`; a fraction (n > 1) is the
  principal root `y >= 0` with `y ** n = x ** m` (m > 0, defined where `x >= 0`) or `y > 0`
  with `y ** n * x ** -m = 1` (m < 0, defined where `x > 0`). Those side conditions are part
  of the network's domain, as for Div.
- `Exp(x)`: `e ** x`.
- `Compare(x, op)`: 1 where `x op 0` holds, else 0, for op in `>`, `>=`, `<`, `<=`, `=`,
  `!=` (a comparison of two values is one of their difference: `a > b` is `Compare(a - b, ">")`
  over an affine difference; booleans are 0/1 reals).
- `Select(c, x)`: `x` where `c != 0`, else 0 (ONNX `Where(c, a, b)` is `b + Select(c, a - b)`).
- `ToInt(x, mode)`: the integer x rounds to, as a real: toward zero ("trunc", ONNX Cast to an
  integer type; the integer type's range is not modelled), down ("floor") or up ("ceil").

A node whose value is not a rational function of rational inputs (`exact_rational`: Sigmoid,
Exp, a fractional Pow) has no exact replay; witnesses through it are replayed with certified
rational enclosures (`nnsmt.interpret.EnclosureDomain`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from fractions import Fraction
from types import MappingProxyType
from typing import Mapping, Union

import numpy as np

from .errors import InputError, InternalError, UnsupportedError

# JSON form: 2.0 adds shapes, ONNX names, sparse weights, multi-input affine nodes; 2.1 the
# elementwise nodes and symbolic sparse parameters (a graph without them is written as 2.0)
IR_VERSION = "2.1"


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.array(a, copy=True)
    a.setflags(write=False)
    return a


def exact_array(values) -> np.ndarray:
    """float64 array when every value is a float64 exactly, else an object array of Fractions.

    Fast on big arrays: float64 input is only checked for NaN/Inf; an object array whose
    elements repeat a few objects (a convolution's kernel entries at every position, `table[idx]`)
    converts each distinct object once; Fractions are not rebuilt, and the float test reads
    their numerator and denominator (a Fraction is kept as a float only if it is one exactly)."""
    a = np.asarray(values)
    if a.dtype != object:
        a = a.astype(np.float64)
        if not np.all(np.isfinite(a)):
            raise InputError("parameter holds NaN or Inf")
        return a
    flat = a.ravel()
    if flat.size >= _DEDUP_MIN:
        ids = np.fromiter(map(id, flat), dtype=np.int64, count=flat.size)
        uniq, first, inverse = np.unique(ids, return_index=True, return_inverse=True)
        if 2 * len(uniq) <= flat.size:  # each distinct object once, then spread by index
            return _exact_objects(flat[first])[inverse.reshape(-1)].reshape(a.shape)
    return _exact_objects(flat).reshape(a.shape)


_DEDUP_MIN = 1024  # object arrays at least this big are checked for repeated elements first


def _exact_objects(flat: np.ndarray) -> np.ndarray:
    """A 1-D object array of numbers as an exact 1-D array (`exact_array`)."""
    if set(map(type, flat)) <= {Fraction}:
        vals = flat.copy()
    else:
        vals = np.empty(flat.size, dtype=object)
        vals[:] = [v if type(v) is Fraction else Fraction(v) for v in flat]
    floats = _float_image(vals)
    return vals if floats is None else floats


def _float_image(vals) -> np.ndarray | None:
    """The float64 array of Fractions `vals` when every one is a float64 exactly, else None.
    p/q (lowest terms) is a float64 iff q = 2**k and either k = 0 and the integer p converts
    exactly, or k > 0, p has at most 53 bits and k <= 1074 (the smallest subnormal)."""
    out = []
    put = out.append
    for v in vals:
        q = v._denominator  # a dyadic test first: it fails fast (e.g. 1/3)
        if q & (q - 1):
            return None
        p = v._numerator
        if q == 1:
            try:
                f = float(p)
            except OverflowError:
                return None  # beyond the float64 range: stays a Fraction
            if int(f) != p:
                return None
            put(f)
        elif p.bit_length() > 53 or q.bit_length() > 1075:
            return None
        else:
            put(p / q)  # exact: the quotient is representable, and int division rounds correctly
    return np.array(out, dtype=np.float64)


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


@dataclass(frozen=True, slots=True, eq=False)
class Sparse:
    """Concrete sparse matrix in CSR form: row i holds `data[indptr[i]:indptr[i+1]]` at the
    columns `indices[indptr[i]:indptr[i+1]]` (sorted, no duplicates, no explicit zeros needed).
    `data` is float64 (exact, as Const) or an object array of Fractions. A convolution on a
    3x32x32 image is a matrix with millions of zeros: every domain works on the nonzeros.

    `tie` (optional, an int per stored entry) says which stored entries are one parameter of
    the source model: the entries with tie j >= 0 are copies of one value, parameter j (a
    convolution's kernel entry, at every position the kernel is applied); -1 marks structure,
    no parameter (a layout move, a skip connection's 1, a pooling average). None: not known,
    every stored entry is a parameter of its own. Only `nnsmt.params.make_symbolic` reads it:
    it decides what ±δ moves, never the matrix's value."""

    shape: tuple[int, int]
    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray
    tie: np.ndarray | None = None

    def __post_init__(self):
        object.__setattr__(self, "shape", (int(self.shape[0]), int(self.shape[1])))
        object.__setattr__(self, "indptr", _frozen(np.asarray(self.indptr, dtype=np.int64)))
        object.__setattr__(self, "indices", _frozen(np.asarray(self.indices, dtype=np.int64)))
        object.__setattr__(self, "data", _frozen(exact_array(self.data)))
        if len(self.indptr) != self.shape[0] + 1 or len(self.indices) != len(self.data) or \
                (len(self.indptr) and self.indptr[-1] != len(self.data)):
            raise InputError(f"sparse matrix of shape {self.shape}: indptr/indices/data do not agree")
        if len(self.indices) and (self.indices.min() < 0 or self.indices.max() >= self.shape[1]):
            raise InputError(f"sparse matrix of shape {self.shape}: a column index is out of range")
        if self.tie is not None:
            tie = _frozen(np.asarray(self.tie, dtype=np.int64).reshape(-1))
            object.__setattr__(self, "tie", tie)
            if len(tie) != len(self.data) or (len(tie) and tie.min() < -1):
                raise InputError(f"sparse matrix of shape {self.shape}: tie must hold one parameter "
                                 f"index >= -1 per stored entry ({len(self.data)})")
            if _untied(tie, self.data):
                raise InputError(f"sparse matrix of shape {self.shape}: entries tied to one "
                                 "parameter hold different values")

    @classmethod
    def selection(cls, rows, cols, shape) -> "Sparse":
        """The 0/1 matrix of `shape` with a 1 at (rows[k], cols[k]) (rows increasing, at most
        one 1 per row): a layout move, so structure (tied to -1), no parameter."""
        indptr = np.zeros(shape[0] + 1, dtype=np.int64)
        np.add.at(indptr, np.asarray(rows, dtype=np.int64) + 1, 1)
        k = len(cols)
        return cls(shape, np.cumsum(indptr), np.asarray(cols, dtype=np.int64), np.ones(k), np.full(k, -1))

    @classmethod
    def from_dense(cls, a) -> "Sparse":
        """The nonzeros of a 2-D array (float64 or Fractions)."""
        a = exact_array(a)
        rows, cols = np.nonzero(a != 0) if a.dtype != object else np.nonzero(
            np.vectorize(lambda v: v != 0, otypes=[bool])(a))
        return cls.from_coo(a.shape, rows, cols, a[rows, cols])

    @classmethod
    def from_coo(cls, shape, rows, cols, vals) -> "Sparse":
        """From (row, column, value) triples; duplicates are summed, exact zeros dropped."""
        rows, cols = np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
        vals = exact_array(np.asarray(vals) if len(rows) else np.zeros(0))
        order = np.lexsort((cols, rows))
        rows, cols, vals = rows[order], cols[order], vals[order]
        if len(rows):
            key = rows * max(int(shape[1]), 1) + cols
            first = np.concatenate(([True], key[1:] != key[:-1]))
            if not first.all():  # sum duplicates (exactly for Fractions)
                starts = np.flatnonzero(first)
                if vals.dtype == object:
                    vals = np.array([sum(vals[a:b], 0) for a, b in
                                     zip(starts, list(starts[1:]) + [len(vals)])], dtype=object)
                else:
                    vals = np.add.reduceat(vals, starts)
                rows, cols = rows[starts], cols[starts]
            keep = np.array([v != 0 for v in vals], dtype=bool)
            rows, cols, vals = rows[keep], cols[keep], vals[keep]
        indptr = np.zeros(int(shape[0]) + 1, dtype=np.int64)
        np.add.at(indptr, rows + 1, 1)
        return cls(shape, np.cumsum(indptr), cols, vals)

    @property
    def nnz(self) -> int:
        return len(self.data)

    @property
    def is_float(self) -> bool:
        return self.data.dtype == np.float64

    def csr(self):
        """scipy.sparse CSR array of the float64 values (exact where `is_float`)."""
        from scipy.sparse import csr_array
        data = self.data if self.is_float else self.data.astype(np.float64)
        return csr_array((data, self.indices, self.indptr), shape=self.shape)

    def row(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """(columns, values) of row i."""
        a, b = self.indptr[i], self.indptr[i + 1]
        return self.indices[a:b], self.data[a:b]

    def take_rows(self, rows) -> "Sparse":
        """The matrix of the given rows, in that order."""
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        starts, ends = self.indptr[rows], self.indptr[rows + 1]
        idx = np.concatenate([np.arange(a, b) for a, b in zip(starts, ends)] + [np.zeros(0, np.int64)])
        indptr = np.concatenate(([0], np.cumsum(ends - starts)))
        return Sparse((len(rows), self.shape[1]), indptr, self.indices[idx], self.data[idx],
                      None if self.tie is None else self.tie[idx])

    def dense(self) -> np.ndarray:
        """The dense matrix (float64, or object Fractions): for small matrices and tests."""
        out = np.zeros(self.shape, dtype=self.data.dtype)
        if out.dtype == object:
            out[:] = Fraction(0)
        rows = np.repeat(np.arange(self.shape[0]), np.diff(self.indptr))
        out[rows, self.indices] = self.data
        return out


def _untied(tie: np.ndarray, data: np.ndarray) -> bool:
    """Whether two stored entries with one tie j >= 0 hold different values (vectorised: the
    value of each tie is taken from one of its entries, then every entry is compared with it;
    object arrays compare only the entries that are not that very object)."""
    sel = tie >= 0
    if not sel.any():
        return False
    t, d = tie[sel], data[sel]
    first = np.empty(int(t.max()) + 1, dtype=np.int64)
    first[t] = np.arange(len(t))  # some entry of each tie (the last one written)
    ref = first[t]
    if d.dtype != object:
        return not np.array_equal(d[ref], d)
    ids = np.fromiter(map(id, d), np.int64, len(d))
    other = np.flatnonzero(ids[ref] != ids)  # entries that are not their tie's very object
    return any(d[ref[k]] != d[k] for k in other)


@dataclass(frozen=True, slots=True, eq=False)
class SparseSym:
    """Symbolic sparse matrix: the stored entries of `pattern` (a `Sparse` with a `tie`) move,
    its zeros stay zero. One solver variable `name_k` per parameter k < `size`: stored entry e
    is variable `pattern.tie[e]`, or the constant `pattern.data[e]` where that is -1
    (structure). Entries that share a variable are one parameter: a convolution's kernel entry
    moves once, wherever it is applied.

    `nominal[k]` is parameter k's value before it was made symbolic (`pattern.data` holds every
    entry's nominal value); `lo`/`hi` box each variable (arrays of `size`, None = unbounded).
    `instantiate(values)` is the concrete `Sparse` for values of the variables.
    """

    name: str
    pattern: Sparse
    nominal: np.ndarray
    lo: np.ndarray | None = None
    hi: np.ndarray | None = None

    def __post_init__(self):
        p = self.pattern
        nom = _frozen(exact_array(np.asarray(self.nominal).reshape(-1)))
        object.__setattr__(self, "nominal", nom)
        for f in ("lo", "hi"):
            v = getattr(self, f)
            if v is not None:
                object.__setattr__(self, f, _frozen(exact_array(np.broadcast_to(np.asarray(v), nom.shape))))
        if p.tie is None or (p.nnz and p.tie.max() >= len(nom)):
            raise InputError(f"symbolic sparse parameter {self.name!r}: every stored entry needs a "
                             f"tie, a variable below {len(nom)} or -1")
        sel = p.tie >= 0
        if sel.any() and not all(a == b for a, b in zip(nom[p.tie[sel]], p.data[sel])):
            raise InputError(f"symbolic sparse parameter {self.name!r}: the nominal values are not "
                             "the pattern's values")

    @property
    def shape(self) -> tuple[int, int]:
        return self.pattern.shape

    @property
    def size(self) -> int:
        """Number of solver variables."""
        return len(self.nominal)

    def var_names(self) -> np.ndarray:
        """Solver variable names `name_k`, an array of `size` str."""
        return np.array([f"{self.name}_{k}" for k in range(self.size)], dtype=object)

    def instantiate(self, values=None) -> Sparse:
        """The concrete matrix for exact `values` of the variables (None: the nominal one)."""
        p = self.pattern
        if values is None:
            return p
        v = exact_array(np.asarray(values).reshape(-1))
        if v.shape != (self.size,):
            raise InputError(f"value for {self.name!r} has {v.size} elements, expected {self.size}")
        sel = p.tie >= 0
        if p.is_float and v.dtype == np.float64:
            data = p.data.copy()
        else:
            data = np.empty(p.nnz, dtype=object)
            data[:] = list(p.data)
        data[sel] = v[p.tie[sel]]
        return Sparse(p.shape, p.indptr, p.indices, data, p.tie)

    def take_rows(self, rows) -> "SparseSym":
        """The rows given, in that order (every variable stays, even one no row uses)."""
        return SparseSym(self.name, self.pattern.take_rows(rows), self.nominal, self.lo, self.hi)


Param = Union[Const, Sparse, Sym, SparseSym]
SYMBOLIC = (Sym, SparseSym)
"""The symbolic parameter kinds (solver variables)."""


@dataclass(frozen=True, slots=True, eq=False)
class Input:
    """A graph input of `dim` reals, optionally boxed by `lo`/`hi` (arrays of length dim).
    `shape` is its tensor shape (None: `(dim,)`); `onnx` the ONNX tensor name, if any."""

    name: str
    dim: int
    lo: np.ndarray | None = None
    hi: np.ndarray | None = None
    shape: tuple[int, ...] | None = None
    onnx: str = ""

    def __post_init__(self):
        for f in ("lo", "hi"):
            v = getattr(self, f)
            if v is not None:
                object.__setattr__(self, f, _frozen(exact_array(np.broadcast_to(v, (self.dim,)))))


@dataclass(frozen=True, slots=True, eq=False)
class Affine:
    """`name = weight @ x + Σ_k W_k @ x_k + bias` over `more` = ((x_k, W_k), ...): weight has
    shape (out, in), each W_k (out, in_k), bias (out,). `shape` is the value's tensor shape
    (None: `(out,)`); `onnx` the ONNX tensor name it came from."""

    name: str
    x: str
    weight: Param
    bias: Param
    more: tuple[tuple[str, Param], ...] = ()
    shape: tuple[int, ...] | None = None
    onnx: str = ""

    def terms(self) -> tuple[tuple[str, Param], ...]:
        """Every (input value, weight) pair, the first one first."""
        return ((self.x, self.weight),) + tuple(self.more)


@dataclass(frozen=True, slots=True, eq=False)
class Relu:
    """`max(x, 0)` elementwise (shape and all)."""

    name: str
    x: str
    onnx: str = ""


@dataclass(frozen=True, slots=True, eq=False)
class Sigmoid:
    """`1 / (1 + exp(-x))` elementwise."""

    name: str
    x: str
    onnx: str = ""


@dataclass(frozen=True, slots=True, eq=False)
class Argmax:
    """Index of the largest element of x (first one on ties, as numpy); a value of dimension 1."""

    name: str
    x: str
    onnx: str = ""


POW_MAX = 64  # largest |numerator| and denominator of a Pow exponent (terms grow with them)
COMPARE_OPS = (">", ">=", "<", "<=", "=", "!=")
ROUNDING = ("trunc", "floor", "ceil")


@dataclass(frozen=True, slots=True, eq=False)
class Mul:
    """`a * b` elementwise (a and b of one dimension; the value keeps a's shape)."""

    name: str
    a: str
    b: str
    onnx: str = ""


@dataclass(frozen=True, slots=True, eq=False)
class Div:
    """`a / b` elementwise, real division; defined where `b != 0` (module docstring)."""

    name: str
    a: str
    b: str
    onnx: str = ""


@dataclass(frozen=True, slots=True, eq=False)
class Pow:
    """`x ** p` elementwise for a constant rational exponent `p` (module docstring: integer
    powers are products, fractional ones principal roots with side conditions)."""

    name: str
    x: str
    p: Fraction
    onnx: str = ""

    def __post_init__(self):
        object.__setattr__(self, "p", Fraction(self.p))


@dataclass(frozen=True, slots=True, eq=False)
class Exp:
    """`e ** x` elementwise."""

    name: str
    x: str
    onnx: str = ""


@dataclass(frozen=True, slots=True, eq=False)
class Compare:
    """1 where `x op 0`, else 0, elementwise; `op` is one of COMPARE_OPS."""

    name: str
    x: str
    op: str
    onnx: str = ""


@dataclass(frozen=True, slots=True, eq=False)
class Select:
    """`x` where `c != 0`, else 0, elementwise (c and x of one dimension)."""

    name: str
    c: str
    x: str
    onnx: str = ""


@dataclass(frozen=True, slots=True, eq=False)
class ToInt:
    """The integer `x` rounds to, as a real, elementwise: `mode` "trunc" (toward zero), "floor"
    or "ceil"."""

    name: str
    x: str
    mode: str = "trunc"
    onnx: str = ""


Node = Union[Input, Affine, Relu, Sigmoid, Argmax, Mul, Div, Pow, Exp, Compare, Select, ToInt]
OPS = {Input: "input", Affine: "affine", Relu: "relu", Sigmoid: "sigmoid", Argmax: "argmax",
       Mul: "mul", Div: "div", Pow: "pow", Exp: "exp", Compare: "compare", Select: "select",
       ToInt: "to_int"}
ELEMENTWISE = (Mul, Div, Pow, Exp, Compare, Select, ToInt)
"""The exact elementwise nodes beyond piecewise-linear maps (IR JSON 2.1)."""


def exact_rational(node: Node) -> bool:
    """Whether `node` maps rational values to rational values, so an exact replay can compute
    it: not a Sigmoid, an Exp or a Pow with a fractional exponent."""
    return not (isinstance(node, (Sigmoid, Exp)) or
                isinstance(node, Pow) and node.p.denominator != 1)


def elementwise_nodes(graph: "Graph") -> list[Node]:
    """The graph's nodes of ELEMENTWISE types, in graph order."""
    return [n for n in graph.nodes if isinstance(n, ELEMENTWISE)]


def operands(node: Node) -> tuple[str, ...]:
    """Names of the values `node` reads (none for an Input)."""
    match node:
        case Input():
            return ()
        case Affine():
            return (node.x,) + tuple(x for x, _ in node.more)
        case Relu() | Sigmoid() | Argmax() | Pow() | Exp() | Compare() | ToInt():
            return (node.x,)
        case Mul() | Div():
            return (node.a, node.b)
        case Select():
            return (node.c, node.x)
    raise InternalError(f"unknown IR node type {type(node).__name__} (node {getattr(node, 'name', node)!r})")


def with_operands(node: Node, f) -> Node:
    """`node` reading value `f(v)` wherever it read value `v` (its own name unchanged)."""
    match node:
        case Input():
            return node
        case Affine():
            return replace(node, x=f(node.x), more=tuple((f(v), w) for v, w in node.more))
        case Mul() | Div():
            return replace(node, a=f(node.a), b=f(node.b))
        case Select():
            return replace(node, c=f(node.c), x=f(node.x))
    return replace(node, x=f(node.x))


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
                case Argmax():
                    d[n.name] = 1
                case Mul() | Div():
                    d[n.name] = d[n.a]
                case _:  # the other elementwise nodes keep their (last) operand's dimension
                    d[n.name] = d[operands(n)[-1]]
        return d

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Tensor shape of every value (assumes a checked graph); elementwise nodes keep their
        input's shape (Mul and Div their first operand's, Select its x's), an argmax is (1,)."""
        out: dict[str, tuple[int, ...]] = {}
        for n in self.nodes:
            match n:
                case Input():
                    out[n.name] = tuple(n.shape) if n.shape else (n.dim,)
                case Affine():
                    out[n.name] = tuple(n.shape) if n.shape else (n.weight.shape[0],)
                case Argmax():
                    out[n.name] = (1,)
                case Mul() | Div():
                    out[n.name] = out[n.a]
                case _:
                    out[n.name] = out[operands(n)[-1]]
        return out

    def onnx_names(self) -> dict[str, str]:
        """ONNX tensor name -> IR value name, for the values that came from one."""
        return {n.onnx: n.name for n in self.nodes if getattr(n, "onnx", "")}

    def params(self) -> list[tuple[str, str, Param]]:
        """(node, "weight"|"bias"|"more<k>", param) for every affine parameter, in graph order."""
        return [(n.name, f, p) for n in self.nodes if isinstance(n, Affine)
                for f, p in [("weight", n.weight), ("bias", n.bias)] +
                [(f"more{k}", w) for k, (_, w) in enumerate(n.more)]]

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
                    if n.shape is not None and int(np.prod(n.shape)) != n.dim:
                        fail(f"input {n.name!r}: shape {tuple(n.shape)} does not hold {n.dim} values")
                    dims[n.name] = n.dim
                case Affine():
                    ws, bs = n.weight.shape, n.bias.shape
                    for x, w in n.terms():
                        if len(w.shape) != 2 or w.shape[1] != dims[x] or w.shape[0] != ws[0]:
                            fail(f"affine {n.name!r}: weight shape {w.shape} does not take {x!r} "
                                 f"of dimension {dims[x]} to {ws[0]} outputs")
                    if bs != (ws[0],):
                        fail(f"affine {n.name!r}: bias shape {bs} does not match weight {ws}")
                    if n.shape is not None and int(np.prod(n.shape)) != ws[0]:
                        fail(f"affine {n.name!r}: shape {tuple(n.shape)} does not hold {ws[0]} values")
                    for p in (n.bias,) + tuple(w for _, w in n.terms()):
                        if isinstance(p, SYMBOLIC):
                            if not _is_ident(p.name) or p.name in syms or p.name in dims:
                                fail(f"symbolic parameter name {p.name!r} is not a fresh identifier")
                            syms.add(p.name)
                    dims[n.name] = ws[0]
                case Relu() | Sigmoid() | Exp():
                    dims[n.name] = dims[n.x]
                case Argmax():
                    dims[n.name] = 1
                    indices.add(n.name)
                case Mul() | Div() | Select():
                    a, b = operands(n)
                    if dims[a] != dims[b]:
                        fail(f"{OPS[type(n)]} {n.name!r}: operands {a!r} and {b!r} have dimensions "
                             f"{dims[a]} and {dims[b]} (elementwise nodes take one dimension)")
                    dims[n.name] = dims[b]
                case Pow():
                    p = n.p
                    if abs(p.numerator) > POW_MAX or p.denominator > POW_MAX:
                        fail(f"pow {n.name!r}: exponent {p} has a numerator or denominator beyond "
                             f"{POW_MAX}")
                    dims[n.name] = dims[n.x]
                case Compare():
                    if n.op not in COMPARE_OPS:
                        fail(f"compare {n.name!r}: op {n.op!r} is not one of {', '.join(COMPARE_OPS)}")
                    dims[n.name] = dims[n.x]
                case ToInt():
                    if n.mode not in ROUNDING:
                        fail(f"to_int {n.name!r}: mode {n.mode!r} is not one of {', '.join(ROUNDING)}")
                    dims[n.name] = dims[n.x]
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
