"""Float semantics by widening: the real-valued network plus a bounded error on every rounding.

A VNN-LIB 2 query over float32 (float16, float64) values asks about the network executed in
IEEE arithmetic of that type, in whatever order onnxruntime sums (blocked, vectorised, fused).
`widen` gives a real network that over-approximates every such execution: each value computed
by a node that can round becomes `real op(float operands) + e`, with `e` a new input element
bounded by a rigorous bound on that node's rounding error. For every float execution there is
an assignment of the errors within their bounds (the float result minus the real result of the
node on the float operands, node by node) under which the widened network computes exactly the
float values; so `unsat` of the real query over the widened network (errors as extra bounded
inputs) proves the float query `unsat`. A `sat` answer is only a candidate for the float query.

Layout: the Input keeps its name and gets n + E elements (lo/hi: the box, then the error
bounds); its former readers read `<input>_x`, a selection of the first n. An affine node with
errors gets one more term, a 0/1 selection of its error elements (tied to -1: structure, no
parameter); any other node computes its real value as `<name>_r` and `<name>` is the affine
`<name>_r + e`. Every value keeps its name, shape and ONNX name: readers and outputs unchanged.

Bounds (u: unit roundoff, 2^-11 / 2^-24 / 2^-53; η: the smallest positive subnormal, 2^-24 /
2^-149 / 2^-1074; γ_m = m·u / (1 - m·u), which needs m·u < 1):

- Affine row `Σ_j w_j x_j + b`: |err| <= γ_m (Σ_j |w_j| max|x_j| + |b|) + m·η with m = nnz + 8.
  The standard model fl(a op b) = (a op b)(1 + δ) + ε, |δ| <= u, |ε| <= η/2 (ε only for
  products and quotients: a sum of floats that underflows is exact) gives
  |fl(Σ t_i) - Σ t_i| <= γ_{N-1} Σ |t_i| for N terms summed in ANY order or tree (each term
  goes through at most N - 1 additions), fused multiply-adds and accumulation in a wider type
  included; a product adds one rounding and one ε each. The 8 spare roundings cover what the
  frontend folds into one node (Gemm's α/β, a division by a constant computed as a
  reciprocal multiply, BatchNorm's scale computed in float, a parameter that is not a value of
  the type and is rounded to it): this relies on the frontend's guarantee that an affine node
  holds at most one rounding ONNX operation composed with exact moves. A parameter that is
  not a value of the type and lies below its normal range can lose all its bits when rounded:
  each such weight adds η·max|x_j|.
- Exact, no error element: Relu, Argmax, Compare, Select, ToInt, and affine rows that are
  exact in float: one nonzero weight ±2^k with k >= 0 and a zero bias (a move, a negation, a
  doubling), two equal such weights on one element (x + x), or no weight and a bias that is a
  value of the type (a constant). A weight 2^k with k < 0 is *not* exact: gradual underflow
  rounds 2^-149 * 0.5 to 0 in float32.
- Mul: γ_2 max|a·b| + η. Div: γ_3 max|a/b| + η. Integer Pow x^p: γ_{|p|+4} max|x^p| + (|p|+1)·η
  (|p| - 1 products and a reciprocal, each intermediate product possibly subnormal).
- Exp, fractional Pow: 2^-18 max|y| + η; Sigmoid: 2^-18 max|y| + 2^-20. These are
  *assumptions* about onnxruntime's vectorised exp and logistic, reported in `Widened.notes`.
  Measured on onnxruntime 1.32 (x86-64, float32): exp within 2^-22.5 relative (plus η where
  the result is subnormal); the logistic kernel, a rational approximation, within 2^-22.4
  *absolute* but not relative (about 1.8e-7 near x = -16, where sigmoid is 1.2e-7), so
  2^-24 absolute would be unsound and 2^-20 keeps a margin of 5. In float16 the result is
  taken to be computed in float32 and rounded once more (+2^-10 relative; 2^-19 absolute for
  the sigmoid).

The maxima come from sound intervals of the *float* values, propagated node by node through the
widened network (every value's interval includes its error before its readers use it), in
float64 interval arithmetic rounded outward (`nnsmt.bounds`); the sums Σ|w_j| max|x_j| and the
bounds themselves are computed exactly (Fractions), so the bounds are exact rationals.

Not modelled, refused (UnsupportedError): overflow (any value's interval, or an affine row's
Σ|w_j| max|x_j| + |b| + bound, which bounds every partial sum in any order, beyond the type's
largest finite value), a divisor or negative power's base whose interval contains 0, a
fractional power's base that can leave its domain, a negative power whose intermediate power
can underflow, and symbolic parameters.
"""

from __future__ import annotations

import functools
import json

from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Sequence

import numpy as np

from .bounds import Interval, IntervalDomain, box_interval, up
from .errors import InputError, UnsupportedError
from .interpret import exact_matvec
from .ir import (SYMBOLIC, Affine, Argmax, Compare, Const, Div, Exp, Graph, Input, Mul, Pow, Relu,
                 Select, Sigmoid, Sparse, ToInt, operands, with_operands)

__all__ = ["Widened", "widen", "FLOAT_TYPES"]


@dataclass(frozen=True)
class _Type:
    u: Fraction  # unit roundoff
    eta: Fraction  # smallest positive subnormal
    max: Fraction  # largest finite value
    min_normal: Fraction
    np: type
    rel_fn: Fraction  # assumed relative accuracy of exp / sigmoid / fractional pow
    abs_sigmoid: Fraction  # assumed absolute accuracy of sigmoid


_F = Fraction
FLOAT_TYPES = {
    "float16": _Type(_F(1, 2**11), _F(1, 2**24), _F(65504), _F(1, 2**14), np.float16,
                     _F(1, 2**18) + _F(1, 2**10), _F(1, 2**19)),
    "float32": _Type(_F(1, 2**24), _F(1, 2**149), _F(2**24 - 1) * 2**104, _F(1, 2**126), np.float32,
                     _F(1, 2**18), _F(1, 2**20)),
    "float64": _Type(_F(1, 2**53), _F(1, 2**1074), _F(2**53 - 1) * 2**971, _F(1, 2**1022), np.float64,
                     _F(1, 2**18), _F(1, 2**20)),
}
"""The float element types `widen` answers for, with their constants."""

SLACK = 8  # spare roundings per affine row (module docstring)


@dataclass(frozen=True)
class Widened:
    """A network widened by rounding-error bounds (`widen`).

    Attributes:
        graph: the widened graph: one Input, named as the original's, of dimension n + E: the
            original input (first n elements) then the E error elements. The Input's lo/hi are
            the input box then the error bounds. Every other value keeps its name, shape and
            ONNX name and holds the float value (real value + its error).
        n: the original input dimension.
        err_lo: lower bounds of the E error elements (exact rationals; err_lo = -err_hi).
        err_hi: upper bounds of the E error elements.
        notes: what the bounds assume, for the user.
        err_for: (value name, element index) that each error element widens.
    """

    graph: Graph
    n: int
    err_lo: tuple[Fraction, ...]
    err_hi: tuple[Fraction, ...]
    notes: tuple[str, ...]
    err_for: tuple[tuple[str, int], ...] = ()


def widen(graph: Graph, lo: Sequence, hi: Sequence, dtype: str) -> Widened:
    """Widen `graph` so that it over-approximates its IEEE execution in `dtype`.

    Args:
        graph: a checked graph with exactly one Input node (dimension n).
        lo: lower ends of the input box (n Fractions or floats): every input the float
            execution can receive lies in the box.
        hi: upper ends of the input box.
        dtype: "float16", "float32" or "float64".

    Returns:
        The widened network (see `Widened` and the module docstring); meta keeps the graph's
        and adds meta["float_semantics"] = dtype.

    Raises:
        UnsupportedError: another dtype, several inputs, symbolic parameters, a value that can
            overflow, a divisor that can be 0, a power outside its domain.
        InputError: the box does not have n finite elements with lo <= hi.
    """
    t = FLOAT_TYPES.get(dtype)
    if t is None:
        raise UnsupportedError(f"float semantics for {dtype!r}: nnsmt widens only "
                               f"{', '.join(FLOAT_TYPES)}")
    if len(graph.inputs) != 1:
        raise UnsupportedError(f"{graph.source}: float semantics needs exactly one input "
                               f"(has {len(graph.inputs)})")
    inp = graph.inputs[0]
    box_lo, box_hi = _box(inp, lo, hi)
    for name, _, p in graph.params():
        if isinstance(p, SYMBOLIC):
            raise UnsupportedError(f"{graph.source}: float semantics with symbolic parameters "
                                   f"(node {name!r}) is not supported")
    ctx = _Ctx(graph.source, dtype, t)
    dom = IntervalDomain()
    box = box_interval(box_lo, box_hi)
    _check_range(box, ctx, inp.name)
    iv: dict[str, Interval] = {inp.name: box}  # intervals of the float values
    errors: dict[str, tuple[np.ndarray, list[Fraction]]] = {}  # value -> (rows, bounds)
    kinds: set[str] = set()
    for node in graph.nodes:
        if isinstance(node, Input):
            continue
        ops = [iv[v] for v in operands(node)]
        real, bound = _node(dom, node, ops, ctx)
        nz = [i for i, b in enumerate(bound) if b]
        if nz and max(bound) > t.max:  # the error alone leaves the range (and float64)
            raise ctx.overflow(f"value {node.name!r}")
        if nz:
            kinds.add("fracpow" if isinstance(node, Pow) and node.p.denominator != 1 else type(node).__name__)
            errors[node.name] = (np.array(nz, dtype=np.int64), [bound[i] for i in nz])
            b = np.array([up(v) for v in bound])
            real = Interval(np.nextafter(real.lo - b, -np.inf), np.nextafter(real.hi + b, np.inf))
        if not isinstance(node, Argmax):
            _check_range(real, ctx, node.name)
        iv[node.name] = real
    # integers cast back to float are exact only up to 2^p (the frontend's meta
    # "float_exact_within": IR value -> bound)
    for name, bound in json.loads(graph.meta.get("float_exact_within", "{}")).items():
        if name in iv and not np.all(_mag(iv[name]) <= bound):
            raise UnsupportedError(f"{graph.source}: the integer {name!r} cast to float can exceed "
                                   f"{bound} within the input box, where the cast rounds")
    return _build(graph, inp, box_lo, box_hi, errors, dtype, _notes(kinds, dtype))


def _box(inp: Input, lo, hi) -> tuple[list[Fraction], list[Fraction]]:
    lo, hi = list(lo), list(hi)
    if len(lo) != inp.dim or len(hi) != inp.dim:
        raise InputError(f"input box of {len(lo)}/{len(hi)} elements for input {inp.name!r} of "
                         f"dimension {inp.dim}")
    try:
        lo, hi = [_exact(v) for v in lo], [_exact(v) for v in hi]
    except (ValueError, OverflowError, TypeError) as e:
        raise InputError(f"input box for {inp.name!r}: every bound must be finite ({e})") from None
    if any(a > b for a, b in zip(lo, hi)):
        raise InputError(f"input box for {inp.name!r}: a lower bound is above its upper bound")
    return lo, hi


def _exact(v) -> Fraction:
    """A number (int, float, numpy float, Fraction, decimal string) as an exact Fraction."""
    return Fraction(v) if isinstance(v, (int, float, Fraction, str)) else Fraction(float(v))


def _mag(iv: Interval) -> np.ndarray:
    return np.maximum(np.abs(iv.lo), np.abs(iv.hi))


@dataclass(frozen=True)
class _Ctx:
    src: str  # the graph's source, for messages
    dtype: str
    t: _Type

    def overflow(self, what: str) -> UnsupportedError:
        return UnsupportedError(f"{self.src}: values reach ±inf in {self.dtype} within the input "
                                f"box ({what}): no sound float analysis")


def _check_range(iv: Interval, ctx: _Ctx, name: str):
    m = _mag(iv)
    if not np.all(m <= float(ctx.t.max)):  # the maxima are floats: an exact comparison (NaN fails)
        raise ctx.overflow(f"value {name!r}")


_GAMMA: dict[tuple[int, Fraction], Fraction] = {}


def _gamma(m: int, t: _Type) -> Fraction:
    key = (m, t.u)
    g = _GAMMA.get(key)
    if g is None:
        if m * t.u >= 1:
            raise UnsupportedError(f"a sum of {m - SLACK} terms in a float type with unit roundoff "
                                   f"{t.u}: the rounding-error bound gamma_{m} does not exist (m·u >= 1)")
        g = _GAMMA[key] = m * t.u / (1 - m * t.u)
    return g


def _mags(iv: Interval) -> list[Fraction]:
    return [Fraction(float(v)) for v in _mag(iv)]


def _node(dom: IntervalDomain, node, ops: list[Interval], ctx: _Ctx):
    """(interval of the node's real value on the float operands, error bound per element)."""
    t = ctx.t
    match node:
        case Affine():
            return dom.affine(node, *ops), _affine_bounds(node, ops, ctx)
        case Relu():
            return dom.relu(node, *ops), _zeros(ops[0])
        case Argmax():
            return dom.argmax(node, *ops), [Fraction(0)]
        case Compare():
            return dom.compare(node, *ops), _zeros(ops[0])
        case Select():
            return dom.select(node, *ops), _zeros(ops[1])
        case ToInt():
            return dom.to_int(node, *ops), _zeros(ops[0])
        case Mul():
            a, b = ops
            return dom.mul(node, a, b), _relative(_times(_mags(a), _mags(b)), _gamma(2, t), t.eta)
        case Div():
            a, b = ops
            if not _excludes_zero(b):
                raise UnsupportedError(f"{ctx.src}: div {node.name!r}: the divisor's interval "
                                       "contains 0 (the float network can divide by zero)")
            q = [p / m for p, m in zip(_mags(a), _least(b))]
            return dom.div(node, a, b), _relative(q, _gamma(3, t), t.eta)
        case Pow():
            return _pow(dom, node, ops[0], ctx)
        case Exp():
            real = dom.exp(node, *ops)
            return real, _relative(_mags(real), t.rel_fn, t.eta)
        case Sigmoid():
            real = dom.sigmoid(node, *ops)
            return real, _relative(_mags(real), t.rel_fn, t.abs_sigmoid)
    raise UnsupportedError(f"float semantics: no error bound for {type(node).__name__} nodes "
                           f"(node {node.name!r})")


def _excludes_zero(iv: Interval) -> bool:
    return bool(np.all((iv.lo > 0) | (iv.hi < 0)))


def _zeros(iv: Interval) -> list[Fraction]:
    return [Fraction(0)] * iv.lo.shape[-1]


def _relative(mags: list[Fraction], rel: Fraction, absolute: Fraction) -> list[Fraction]:
    """rel * max|y| + absolute per element, for the maxima `mags`."""
    return [rel * m + absolute for m in mags]


def _times(a: list[Fraction], b: list[Fraction]) -> list[Fraction]:
    return [p * q for p, q in zip(a, b)]


def _least(iv: Interval) -> list[Fraction]:
    """min |v| over each element's interval (exact: the interval's ends are floats)."""
    return [Fraction(float(v)) for v in np.where(iv.lo > 0, iv.lo, np.where(iv.hi < 0, -iv.hi, 0.0))]


def _pow(dom: IntervalDomain, node: Pow, x: Interval, ctx: _Ctx):
    p, t = node.p, ctx.t
    if p.denominator == 1:
        k = abs(int(p))
        if p < 0:
            if not _excludes_zero(x):
                raise UnsupportedError(f"{ctx.src}: pow {node.name!r}: x ** {p} with x's interval "
                                       "containing 0 (the float network can divide by zero)")
            small = [v ** k for v in _least(x)]
            # |x| ** k before the reciprocal must stay normal: an underflowed one has no relative bound
            if any(v < t.min_normal for v in small):
                raise UnsupportedError(f"{ctx.src}: pow {node.name!r}: x ** {k} can underflow before "
                                       "its reciprocal is taken (no sound float analysis)")
            mags = [1 / v for v in small]
        else:
            mags = [v ** k for v in _mags(x)]
        return dom.pow(node, x), _relative(mags, _gamma(k + 4, t), (k + 1) * t.eta)
    if np.any(x.lo < 0) or (p < 0 and np.any(x.lo <= 0)):
        raise UnsupportedError(f"{ctx.src}: pow {node.name!r}: x ** {p} with x's interval leaving "
                               "its domain (the float network can give NaN or inf)")
    real = dom.pow(node, x)
    return real, _relative(_mags(real), t.rel_fn, t.eta)


# ---- affine rows ----

def _coo(w) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, columns, values) of the nonzero entries of a Const or Sparse weight."""
    if isinstance(w, Sparse):
        rows = np.repeat(np.arange(w.shape[0], dtype=np.int64), np.diff(w.indptr))
        cols, vals = w.indices, w.data
    else:
        v = w.value
        nz = v != 0 if v.dtype != object else np.array([a != 0 for a in v.ravel()], dtype=bool).reshape(v.shape)
        rows, cols = (a.astype(np.int64) for a in np.nonzero(nz))
        vals = v[rows, cols]
    keep = np.array([a != 0 for a in vals], dtype=bool) if vals.dtype == object else vals != 0
    return rows[keep], cols[keep], vals[keep]


def _abs(w):
    if isinstance(w, Sparse):
        return Sparse(w.shape, w.indptr, w.indices, np.abs(w.data))
    return Const(np.abs(w.value))


def _join(vals: list[np.ndarray]) -> np.ndarray:
    """One array of float64 values, or of Fractions when any part holds Fractions."""
    if all(v.dtype != object for v in vals):
        return np.concatenate(vals).astype(np.float64) if vals else np.zeros(0)
    out = np.empty(sum(len(v) for v in vals), dtype=object)
    out[:] = [Fraction(a) for v in vals for a in v]
    return out


def _representable(vals: np.ndarray, t: _Type) -> np.ndarray:
    """Whether each value (float64 or Fraction) is a value of the type."""
    if vals.dtype != object:
        with np.errstate(over="ignore"):
            return vals.astype(t.np).astype(np.float64) == vals
    out = []
    for v in vals:
        try:
            out.append(Fraction(float(t.np(float(v)))) == v)
        except OverflowError:
            out.append(False)
    return np.array(out, dtype=bool)


def _pow2(vals: np.ndarray, t: _Type) -> np.ndarray:
    """Whether each value is ±2^k with k >= 0, within the type's range."""
    if vals.dtype != object:
        m, e = np.frexp(np.abs(vals))
        return (m == 0.5) & (e >= 1) & (np.abs(vals) <= float(t.max))
    return np.array([v.denominator == 1 and v != 0 and abs(v.numerator) & (abs(v.numerator) - 1) == 0
                     and abs(v) <= t.max for v in vals], dtype=bool)


def _affine_bounds(node: Affine, ops: list[Interval], ctx: _Ctx) -> list[Fraction]:
    """Error bound of every row of an affine node whose term inputs have intervals `ops`."""
    t = ctx.t
    d = node.weight.shape[0]
    bias = node.bias.fractions()
    if any(abs(b) > t.max for b in bias):
        raise UnsupportedError(f"{ctx.src}: affine {node.name!r} has a bias beyond the largest "
                               f"finite {ctx.dtype}")
    mags = [_mags(x) for x in ops]
    S = np.empty(d, dtype=object)  # S_i = Σ_j |w_ij| max|x_j| + |b_i|, exactly
    S[:] = [abs(b) for b in bias]
    rows, cols, vals, elem = [], [], [], []
    ids: dict[str, int] = {}  # two terms reading one value read the same elements
    for (v, w), m in zip(node.terms(), mags):
        mv = np.empty(len(m), dtype=object)
        mv[:] = m
        S = S + exact_matvec(_abs(w), mv)
        r, c, val = _coo(w)
        if val.size and max(abs(Fraction(a)) for a in val) > t.max:
            raise UnsupportedError(f"{ctx.src}: affine {node.name!r} has a weight beyond the largest "
                                   f"finite {ctx.dtype}")
        rows.append(r)
        cols.append(c)
        vals.append(val)
        elem.append(np.full(len(r), ids.setdefault(v, len(ids)), dtype=np.int64))
    R, C, K, V = np.concatenate(rows), np.concatenate(cols), np.concatenate(elem), _join(vals)
    count = np.bincount(R, minlength=d)
    exact = _exact_rows(R, C, K, V, count, bias, t)
    # weights that are not values of the type and lie below its normal range: + η max|x_j|
    extra = [Fraction(0)] * d
    tiny = np.flatnonzero([abs(a) < t.min_normal for a in V] if V.dtype == object
                          else np.abs(V) < float(t.min_normal))
    for e in tiny[~_representable(V[tiny], t)]:
        extra[R[e]] += t.eta * mags[K[e]][C[e]]
    out = []
    for i in range(d):
        m = int(count[i]) + SLACK
        b = Fraction(0) if exact[i] else _gamma(m, t) * S[i] + m * t.eta + extra[i]
        if S[i] + b > t.max:  # bounds every partial sum, in any order
            raise ctx.overflow(f"a partial sum of affine {node.name!r}, row {i}")
        out.append(b)
    return out


def _exact_rows(R, C, K, V, count, bias, t: _Type) -> np.ndarray:
    """Rows computed exactly in float (module docstring): a constant that is a value of the
    type, one weight ±2^k (k >= 0) and no bias, or two equal such weights on one element."""
    d = len(count)
    b = np.empty(d, dtype=object)
    b[:] = list(bias)
    zero_bias = np.array([v == 0 for v in b], dtype=bool)
    exact = (count == 0) & _representable(b, t)
    order = np.lexsort((C, K, R))
    R, C, K, V = R[order], C[order], K[order], V[order]
    start = np.concatenate(([0], np.cumsum(count)[:-1])).astype(np.int64)
    one = np.flatnonzero((count == 1) & zero_bias)
    if one.size:
        exact[one] = _pow2(V[start[one]], t)
    two = np.flatnonzero((count == 2) & zero_bias)
    if two.size:
        i, j = start[two], start[two] + 1
        same = (K[i] == K[j]) & (C[i] == C[j]) & np.array([V[a] == V[c] for a, c in zip(i, j)], dtype=bool)
        exact[two] = same & _pow2(V[i], t)
    return exact


# ---- the widened graph ----

def _fresh(base: str, used: set[str]) -> str:
    name, k = base, 1
    while name in used:
        name, k = f"{base}_{k}", k + 1
    used.add(name)
    return name


def _build(graph: Graph, inp: Input, box_lo, box_hi, errors, dtype: str, notes) -> Widened:
    n = inp.dim
    E = sum(len(rows) for rows, _ in errors.values())
    width = n + E
    meta = dict(graph.meta)
    meta["float_semantics"] = dtype
    err_hi = tuple(b for _, bounds in errors.values() for b in bounds)
    err_lo = tuple(-b for b in err_hi)
    err_for = tuple((name, int(i)) for name, (rows, _) in errors.items() for i in rows)
    new_inp = Input(inp.name, width, np.array(box_lo + list(err_lo), dtype=object),
                    np.array(box_hi + list(err_hi), dtype=object),
                    inp.shape if E == 0 else None, inp.onnx)
    if E == 0:
        nodes = [new_inp if nd is inp else nd for nd in graph.nodes]
        return Widened(graph.replace(nodes=nodes, meta=meta).check(), n, (), (), notes, ())
    used = {nd.name for nd in graph.nodes}
    xsel = _fresh(f"{inp.name}_x", used)
    shapes = graph.shapes()
    dims = graph.dims()
    nodes: list = []
    noise: list[str] = []
    local: list = []  # [affine node, its error value, rows, first error element]: `local_bounds`
    off = n
    for nd in graph.nodes:
        if nd is inp:
            nodes += [new_inp, Affine(xsel, inp.name, Sparse.selection(range(n), range(n), (n, width)),
                                      Const(np.zeros(n)), shape=inp.shape)]
            continue
        if inp.name in operands(nd):
            nd = with_operands(nd, lambda v: xsel if v == inp.name else v)
        if nd.name not in errors:
            nodes.append(nd)
            continue
        rows, _ = errors[nd.name]
        d, k = dims[nd.name], len(rows)
        # the node's errors are a value of their own (a selection of the input's error
        # elements): bounds take it as an independent interval term (meta "noise") instead of
        # carrying every error element through every back-substitution
        ename = _fresh(f"{nd.name}_e", used)
        nodes.append(Affine(ename, inp.name, Sparse.selection(range(k), range(off, off + k), (k, width)),
                            Const(np.zeros(k))))
        noise.append(ename)
        sel = Sparse.selection(rows, range(k), (d, k))
        off += k
        if isinstance(nd, Affine):  # the error is one more term of the same node
            nodes.append(replace(nd, more=tuple(nd.more) + ((ename, sel),)))
            local.append([nd.name, ename, [int(r) for r in rows], off - k])
            continue
        real = _fresh(f"{nd.name}_r", used)
        nodes.append(replace(nd, name=real, onnx=""))
        nodes.append(Affine(nd.name, real, Sparse.selection(range(d), range(d), (d, d)), Const(np.zeros(d)),
                            more=((ename, sel),), shape=shapes[nd.name], onnx=nd.onnx))
    outputs = tuple(xsel if o == inp.name else o for o in graph.outputs)
    meta["noise"] = json.dumps(noise)
    meta["float_errors"] = json.dumps(local)
    # the original input, for bounds: a leaf whose columns are the input's first n
    meta["input_view"] = json.dumps({xsel: list(range(n))})
    g = Graph(tuple(nodes), outputs, meta).check()
    return Widened(g, n, err_lo, err_hi, notes, err_for)


def local_bounds(graph: Graph, bounds) -> list[tuple[int, np.ndarray]]:
    """Error bounds of the affine rows of a widened graph (meta "float_errors"), recomputed
    from value bounds `bounds` (value name -> Interval, batched (..., d)) sound over a smaller
    region than the one `widen` was given: the same bound as `widen`'s, in float64 rounded up.

    Sound when `bounds` hold the float values over that region, i.e. they were computed with
    error elements boxed by bounds that were sound there (`widen`'s, or earlier local ones):
    every error then lies within both, so the smaller of the two is a bound again.

    Returns:
        (first error element, upper bounds (..., k)) per affine node: the bound of error
        element first + j is [..., j] (its lower bound is minus that).
    """
    out = []
    for first, terms, bias, m, S_scale, g, floor, eta in _local_spec(graph):
        S = bias
        extra = 0.0
        for v, W, small in terms:
            M = np.maximum(np.abs(bounds[v].lo), np.abs(bounds[v].hi))
            M2 = M.reshape(-1, M.shape[-1])
            S = S + np.asarray((W @ M2.T).T).reshape(M.shape[:-1] + (len(bias),))  # (..., k) >= 0
            extra = extra + np.asarray((small @ M2.T).T).reshape(M.shape[:-1] + (len(bias),))
        b = g * (S * S_scale) + floor + eta * extra * (1 + 2.0 ** -50)
        out.append((first, np.nextafter(b, np.inf)))
    return out


@functools.lru_cache(maxsize=8)
def _local_spec(graph: Graph) -> tuple:
    """What `local_bounds` needs of each affine node of meta "float_errors", per graph (the
    planner asks for every batch of boxes): (first error element, [(operand, |W| rows, the
    weights below the normal range as 0/1)], |bias|, m, the float64 sum's rounding factor,
    γ_m rounded up, m·η, η)."""
    spec = json.loads(graph.meta.get("float_errors", "[]"))
    by = {nd.name: nd for nd in graph.nodes}
    out = []
    for name, ename, rows, first, *dtype in spec:
        t = FLOAT_TYPES[dtype[0] if dtype else graph.meta["float_semantics"]]
        u, eta, tiny = float(t.u), float(t.eta), float(t.min_normal)
        node = by[name]
        rows = np.asarray(rows, dtype=np.int64)
        bias = np.abs(np.asarray([float(abs(b)) for b in node.bias.fractions()]))[rows]
        count = np.zeros(len(rows))
        terms = []
        for v, w in node.terms():
            if v == ename:
                continue
            W = _abs_rows(w, rows)  # (k, n), scipy CSR
            count += np.diff(W.indptr)
            small = W.copy()
            small.data = ((small.data > 0) & (small.data < tiny)).astype(np.float64)
            terms.append((v, W, small))
        m = count + SLACK
        # float64 sums of nonnegative terms: relative error <= (terms + 2) 2^-53, rounded up
        S_scale = 1 + 4 * (count.max() + 2) * 2.0 ** -53
        g = m * u / (1 - m * u) * (1 + 2.0 ** -50)
        out.append((first, terms, bias, m, S_scale, g, m * eta, eta))
    return tuple(out)


def tighten(lo, hi, local) -> tuple[list, list]:
    """Bounds `lo`/`hi` (a box over inputs and error elements) with each error element boxed by
    the smaller of its bound and its local one ((first element, upper bounds) pairs of
    `local_bounds`, for one box). The error elements' bounds become floats (exact values)."""
    lo, hi = list(lo), list(hi)
    for first, b in local:
        k = len(b)
        new = np.minimum(np.array([up(v) for v in hi[first:first + k]]), b)
        hi[first:first + k] = new.tolist()
        lo[first:first + k] = (-new).tolist()
    return lo, hi


def _abs_rows(w, rows):
    """|rows `rows`| of a Const or Sparse weight, as a scipy CSR matrix of float64."""
    from scipy import sparse
    m = w.csr()[rows] if hasattr(w, "csr") else sparse.csr_array(np.asarray(w.value, dtype=np.float64)[rows])
    m = sparse.csr_array(m)
    m.data = np.abs(m.data)
    m.eliminate_zeros()
    return m


def _notes(kinds: set[str], dtype: str) -> tuple[str, ...]:
    notes = [f"{dtype} execution in any summation order (blocked, vectorised, fused): each affine "
             f"row's rounding error is bounded by gamma_m·(Σ|w||x| + |b|) + m·η with m = nnz + "
             f"{SLACK}, assuming each affine node holds at most one rounding ONNX operation "
             "(the frontend's guarantee)",
             "overflow is not modelled: the analysis proved that no value reaches ±inf within "
             "the input box"]
    fn = "2^-18" + (" + 2^-10 (rounding to float16)" if dtype == "float16" else "")
    if "Exp" in kinds:
        notes.append(f"assumed: onnxruntime's exp is accurate to {fn} relative plus η absolute")
    if "fracpow" in kinds:
        notes.append(f"assumed: onnxruntime's pow with a fractional exponent is accurate to {fn} "
                     "relative plus η absolute")
    if "Sigmoid" in kinds:
        notes.append(f"assumed: onnxruntime's sigmoid is accurate to {fn} relative plus "
                     f"{'2^-19' if dtype == 'float16' else '2^-20'} absolute (onnxruntime 1.32's "
                     "logistic kernel was measured within 2^-22.4 absolute, not relative)")
    return tuple(notes)
