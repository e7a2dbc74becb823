"""Sound bounds on every IR value over an input box: intervals and linear (back-substitution).

Arithmetic is float64 with *rigorous outward rounding*: every float result is widened by an a
priori bound on its rounding error (Higham's gamma_n = n*u/(1-n*u) for a sum of n products,
doubled, plus n * smallest-subnormal for underflow, then one `nextafter` outward). Exact
Fractions would be simpler to argue but ~100x slower, and these bounds are recomputed for
thousands of sub-boxes when splitting; the widening costs ~1e-13 relative. The bounds feed unsat
proofs (the bounded encoding fixes stable ReLUs; input splitting refutes sub-boxes), so
soundness is the point: for every input x in the box (and every symbolic parameter value in its
box) the exact real value of each node lies in [lo, hi].

Two methods, both domains of the single interpretation loop (`nnsmt.interpret.interpret`):
- `IntervalDomain`: centre/radius style interval arithmetic; symbolic parameters with boxes
  enter through interval products (an unboxed one makes its outputs unbounded).
- `LinearDomain`: the interval domain, tightened at every affine node by DeepPoly/CROWN-style
  back-substitution of linear relaxations down to the input box (ReLU: the triangle's upper
  line, a lower line of slope 0 or 1 chosen by the larger side). It needs a bounded box and
  constant parameters; where either is missing it falls back to intervals for that node.
  `output_spec_bounds(..., alpha_steps=N)` then optimises the ReLU lower slopes of the spec's
  own back-substitution, α-CROWN style (projected gradient ascent, each step's bound rigorous).

The elementwise nodes (`nnsmt.ir`) have interval rules only; back-substitution stops at them
(they are leaves of the walk, bounded by their intervals). Bounds hold on the network's domain
(inputs where every divisor is nonzero and every fractional power's base is in range):
- mul: the four endpoint products (a square: from 0 across 0), each rounded outward;
- div: the reciprocal of the divisor's interval, outward, times the dividend; a divisor
  interval containing 0 makes the quotient unbounded;
- pow: integer powers by repeated outward multiplication of magnitudes (negative ones through
  the reciprocal, unbounded across 0); fractional ones and exp through libm's `pow`/`exp`,
  accurate to a few ulps, widened by 2**-40 relative (as sigmoid's 1e-12): the same standard
  as the sigmoid rule, not a proof about libm;
- compare, select, to_int: decided where the interval decides them, else [0, 1], the hull
  with 0, and the rounded ends (monotone).

Graphs are DAGs: an affine node sums the terms of several inputs (`Affine.terms()`), each
weight dense or `Sparse`. Interval products over a sparse weight touch its nonzeros only (the
rounding-error bound of a row counts that row's nonzeros); a `SparseSym` weight is an interval
sparse matrix over its pattern, each stored entry in its variable's box. Back-substitution walks the nodes in
reverse topological order keeping one coefficient matrix per value: a value reached through
several consumers (a residual connection) gets their coefficients summed, and every value where
the walk stops (an input, a sigmoid, a symbolic layer) is bounded by its own interval.
"""

from __future__ import annotations

import json

from dataclasses import dataclass
from fractions import Fraction
from typing import Mapping, Sequence

import numpy as np

from .errors import UnsupportedError
from .interpret import interpret
from .ir import Affine, Const, Graph, Input, Relu, Sigmoid, Sparse, SparseSym

U = 2.0 ** -53  # unit roundoff of float64
ETA = 2.0 ** -1074  # smallest subnormal: absolute error of an underflowing product
INF = np.inf
METHODS = ("interval", "linear")


@dataclass(frozen=True, slots=True, eq=False)
class Interval:
    """Elementwise bounds lo <= v <= hi of one IR value (float64 arrays; +-inf = unbounded)."""

    lo: np.ndarray
    hi: np.ndarray

    def contains(self, v, slack: float = 0.0) -> bool:
        v = np.asarray(v, dtype=np.float64)
        return bool(np.all(self.lo - slack <= v) and np.all(v <= self.hi + slack))

    def hull(self, other: "Interval") -> "Interval":
        return Interval(np.minimum(self.lo, other.lo), np.maximum(self.hi, other.hi))

    def meet(self, other: "Interval") -> "Interval":
        return Interval(np.maximum(self.lo, other.lo), np.minimum(self.hi, other.hi))


def _gamma(n: int) -> float:
    return 2.0 * n * U / (1.0 - n * U)  # doubled: also covers rounding in computing the bound


def _exact_float(q) -> bool:
    """Cheaply: q is a Fraction that float() converts exactly (a dyadic of <= 53 bits within
    the normal range), e.g. the float-valued bounds the planner keeps as Fractions."""
    if type(q) is not Fraction:
        return False
    d = q.denominator
    return d & (d - 1) == 0 and abs(q.numerator) < (1 << 53) and d.bit_length() < 1000


def down(q) -> float:
    """Largest float64 <= q (q a Fraction, int or float; None -> -inf). With `up`, the one
    outward rounding of exact constants to floats (bounds, domains, dReal's constants)."""
    if q is None:
        return -INF
    f = float(q)
    if _exact_float(q):
        return f
    if not isinstance(q, float) and Fraction(f) > Fraction(q):
        f = float(np.nextafter(f, -INF))
    return f


def up(q) -> float:
    """Smallest float64 >= q (None -> +inf)."""
    if q is None:
        return INF
    f = float(q)
    if _exact_float(q):
        return f
    if not isinstance(q, float) and Fraction(f) < Fraction(q):
        f = float(np.nextafter(f, INF))
    return f


def box_interval(lo: Sequence, hi: Sequence) -> Interval:
    """Outward float64 box from exact bounds (Fractions, floats, or None for unbounded)."""
    return Interval(np.array([down(v) for v in lo], dtype=np.float64),
                    np.array([up(v) for v in hi], dtype=np.float64))


def _fin(a: np.ndarray) -> np.ndarray:
    return np.where(np.isinf(a), 0.0, a)


def _mag(iv: Interval) -> np.ndarray:
    return np.maximum(np.abs(iv.lo), np.abs(iv.hi))


def _param_interval(p) -> Interval:
    """Outward float64 interval of every element of a parameter."""
    if isinstance(p, Const):
        if p.is_float:
            return Interval(p.value, p.value)
        flat = p.value.ravel()
        return Interval(np.array([down(v) for v in flat]).reshape(p.shape),
                        np.array([up(v) for v in flat]).reshape(p.shape))
    shape = (p.size,) if isinstance(p, SparseSym) else p.shape  # a SparseSym: its variables
    lo = np.full(shape, -INF) if p.lo is None else _param_interval(Const(p.lo)).lo
    hi = np.full(shape, INF) if p.hi is None else _param_interval(Const(p.hi)).hi
    return Interval(lo, hi)


def _mm(A: np.ndarray, W: np.ndarray) -> np.ndarray:
    """(..., k, m) @ (m, n) as one BLAS call."""
    return (A.reshape(-1, A.shape[-1]) @ W).reshape(A.shape[:-1] + W.shape[1:])


def _mv(A: np.ndarray, v: np.ndarray) -> np.ndarray:
    """(..., k, m) times (..., m) -> (..., k): a matrix-vector product per batch element."""
    if v.ndim == 1:
        return A @ v
    if A.ndim == 2:
        return v @ A.T
    return np.einsum("...km,...m->...k", A, v)


def lin_lower(A: np.ndarray, box: Interval, c: np.ndarray | None = None) -> np.ndarray:
    """Rigorous lower bound of each row of `A @ x + c` over x in `box` (A, c float64).

    Batched: A (..., k, n) with box arrays (..., n) and c (..., k) broadcast; returns (..., k)."""
    if A.shape[-1] > 64:  # wide and mostly zero (an input with rounding-error elements): its used columns
        used = np.flatnonzero(np.any(A != 0, axis=tuple(range(A.ndim - 1))))
        if len(used) < A.shape[-1] // 2:
            A = A[..., used]
            box = Interval(box.lo[..., used], box.hi[..., used])
    Ap, An = np.maximum(A, 0.0), np.minimum(A, 0.0)
    lo, hi = _fin(box.lo)[..., None], _fin(box.hi)[..., None]
    v = _mv(Ap, lo[..., 0]) + _mv(An, hi[..., 0])
    mag = _mv(np.abs(A), np.maximum(np.abs(lo), np.abs(hi))[..., 0])
    n = 2 * A.shape[-1] + 1
    if c is not None:
        v = v + c
        mag = mag + np.abs(c)
    out = np.nextafter(v - (_gamma(n + 1) * mag + n * ETA), -INF)
    if np.isinf(box.lo).any() or np.isinf(box.hi).any():
        unb = ((Ap > 0) & np.isneginf(box.lo)[..., None, :]).any(-1) | \
            ((An < 0) & np.isposinf(box.hi)[..., None, :]).any(-1)
        out = np.where(unb, -INF, out)
    return out


def lin_upper(A: np.ndarray, box: Interval, c: np.ndarray | None = None) -> np.ndarray:
    """Rigorous upper bound of each row of `A @ x + c` over x in `box`."""
    return -lin_lower(-A, box, None if c is None else -c)


def _interval_product(w: Interval, x: Interval) -> Interval:
    """Interval of W x for interval W (exact when W is a point), outward rounded."""
    if np.array_equal(w.lo, w.hi):  # a constant weight: two matrix products, no elementwise work
        return Interval(lin_lower(w.lo, x, None), lin_upper(w.lo, x, None))
    xl, xh = x.lo[..., None, :], x.hi[..., None, :]
    with np.errstate(invalid="ignore"):
        prods = np.stack([w.lo * xl, w.lo * xh, w.hi * xl, w.hi * xh])
    prods = np.where(np.isnan(prods), 0.0, prods)  # 0 * inf: the zero factor is exact
    plo, phi = prods.min(0), prods.max(0)
    n = w.lo.shape[1] + 1
    mag = np.maximum(np.abs(_fin(plo)), np.abs(_fin(phi))).sum(-1)
    err = _gamma(n + 1) * mag + n * ETA
    with np.errstate(invalid="ignore"):
        lo = np.nextafter(plo.sum(-1) - err, -INF)
        hi = np.nextafter(phi.sum(-1) + err, INF)
    return Interval(np.where(np.isnan(lo), -INF, lo), np.where(np.isnan(hi), INF, hi))


def _csr(S: Sparse, data: np.ndarray):
    from scipy.sparse import csr_array
    return csr_array((data, S.indices, S.indptr), shape=S.shape)


def _csr_mv(M, v: np.ndarray) -> np.ndarray:
    """scipy sparse (k, n) times v (..., n) -> (..., k)."""
    if v.ndim == 1:
        return M @ v
    flat = v.reshape(-1, v.shape[-1])
    return (M @ flat.T).T.reshape(v.shape[:-1] + (M.shape[0],))


def _segments(a: np.ndarray, indptr: np.ndarray) -> np.ndarray:
    """Per-row sums of per-nonzero values a (..., nnz) in CSR order -> (..., rows); 0 for an
    empty row (summed left to right: gamma of the row's count bounds the rounding)."""
    starts = indptr[:-1]
    out = np.zeros(a.shape[:-1] + (len(starts),))
    nonempty = starts < indptr[1:]
    if nonempty.any():
        out[..., nonempty] = np.add.reduceat(a, starts[nonempty], axis=-1)
    return out


def _sparse_lower(S: Sparse, data: np.ndarray, box: Interval) -> np.ndarray:
    """`lin_lower` for a sparse float64 matrix (S's pattern, values `data`): rigorous lower
    bound of each row over the box, one product per nonzero."""
    lo, hi = _fin(box.lo), _fin(box.hi)
    v = _csr_mv(_csr(S, np.maximum(data, 0.0)), lo) + _csr_mv(_csr(S, np.minimum(data, 0.0)), hi)
    mag = _csr_mv(_csr(S, np.abs(data)), np.maximum(np.abs(lo), np.abs(hi)))
    n = 2 * np.diff(S.indptr).astype(np.float64) + 1  # terms summed per row
    out = np.nextafter(v - (_gamma(n + 1) * mag + n * ETA), -INF)
    if np.isinf(box.lo).any() or np.isinf(box.hi).any():
        unb = (_csr_mv(_csr(S, (data > 0).astype(np.float64)), np.isneginf(box.lo).astype(np.float64)) > 0) | \
            (_csr_mv(_csr(S, (data < 0).astype(np.float64)), np.isposinf(box.hi).astype(np.float64)) > 0)
        out = np.where(unb, -INF, out)
    return out


def _sparse_product(S: Sparse, x: Interval) -> Interval:
    """Interval of S x over the nonzeros of S, outward rounded: two CSR products per side for
    float64 values, elementwise interval products for rational ones (outward to floats)."""
    if S.is_float:
        return Interval(_sparse_lower(S, S.data, x), -_sparse_lower(S, -S.data, x))
    return _sparse_interval(S, *_entry_floats(S), x)


def _entry_floats(S: Sparse) -> tuple[np.ndarray, np.ndarray]:
    """Outward float64 bounds of every stored value of S."""
    if S.is_float:
        return S.data.copy(), S.data.copy()
    return (np.array([down(v) for v in S.data], dtype=np.float64),
            np.array([up(v) for v in S.data], dtype=np.float64))


def _sparse_sym_product(P: SparseSym, x: Interval) -> Interval:
    """Interval of W x for every W in a SparseSym's box: each stored entry ranges over its
    variable's box (its constant where tied to -1); the zeros outside the pattern stay zero."""
    S = P.pattern
    wl, wh = _entry_floats(S)
    box = _param_interval(P)
    sel = S.tie >= 0
    wl[sel], wh[sel] = box.lo[S.tie[sel]], box.hi[S.tie[sel]]
    return _sparse_interval(S, wl, wh, x)


def _sparse_interval(S: Sparse, wl: np.ndarray, wh: np.ndarray, x: Interval) -> Interval:
    """Interval of W x over S's pattern for stored values in [wl, wh] (floats), outward."""
    xl, xh = x.lo[..., S.indices], x.hi[..., S.indices]
    with np.errstate(invalid="ignore"):
        prods = np.stack([wl * xl, wl * xh, wh * xl, wh * xh])
    prods = np.where(np.isnan(prods), 0.0, prods)  # 0 * inf: the zero factor is exact
    plo, phi = prods.min(0), prods.max(0)
    n = np.diff(S.indptr).astype(np.float64) + 1
    mag = _segments(np.maximum(np.abs(_fin(plo)), np.abs(_fin(phi))), S.indptr)
    err = _gamma(n + 1) * mag + n * ETA
    with np.errstate(invalid="ignore"):
        lo = np.nextafter(_segments(plo, S.indptr) - err, -INF)
        hi = np.nextafter(_segments(phi, S.indptr) + err, INF)
    return Interval(np.where(np.isnan(lo), -INF, lo), np.where(np.isnan(hi), INF, hi))


def _add_outward(a: Interval, b: Interval) -> Interval:
    """a + b, one rounding outward each side (NaN from inf - inf: unbounded)."""
    with np.errstate(invalid="ignore"):
        lo = np.nextafter(a.lo + b.lo, -INF)
        hi = np.nextafter(a.hi + b.hi, INF)
    return Interval(np.where(np.isnan(lo), -INF, lo), np.where(np.isnan(hi), INF, hi))


def _interval_affine(w: Interval, x: Interval, b: Interval) -> Interval:
    """Interval of W x + b for interval W (exact when W is a point), outward rounded."""
    return _add_outward(_interval_product(w, x), b)


def affine_interval(node: Affine, xs: Sequence[Interval]) -> Interval:
    """Interval of `Σ_k W_k x_k + b` over the intervals `xs` of the node's term inputs (in
    `node.terms()` order), outward rounded; sparse weights over their nonzeros only."""
    acc = None
    for (_, w), x in zip(node.terms(), xs):
        t = _sparse_product(w, x) if isinstance(w, Sparse) else _sparse_sym_product(w, x) \
            if isinstance(w, SparseSym) else _interval_product(_param_interval(w), x)
        acc = t if acc is None else _add_outward(acc, t)
    return _add_outward(acc, _param_interval(node.bias))


class IntervalDomain:
    """Interval arithmetic. An input's value is an `Interval`, or None for the node's own box
    (`Input.lo`/`hi`, unbounded where absent). Records every value's interval in `self.bounds`."""

    def __init__(self, phases: Mapping[str, np.ndarray] | None = None):
        self.bounds: dict[str, Interval] = {}
        # ReLU value -> int8 phases (batch + (m,)): -1 inactive (pre-activation <= 0 asserted
        # by the sub-problem), +1 active (>= 0), 0 free; see `propagate_bounds`
        self.phases = phases or {}

    def _keep(self, name, iv):
        self.bounds[name] = iv
        return iv

    def input(self, node: Input, value):
        if value is None:
            lo = [None] * node.dim if node.lo is None else list(node.lo)
            hi = [None] * node.dim if node.hi is None else list(node.hi)
            value = box_interval(lo, hi)
        return self._keep(node.name, value)

    def affine(self, node: Affine, x: Interval, *more: Interval):
        return self._keep(node.name, affine_interval(node, (x,) + more))

    def relu(self, node: Relu, x: Interval):
        x = self._phased(node, x)
        return self._keep(node.name, Interval(np.maximum(x.lo, 0.0), np.maximum(x.hi, 0.0)))

    def _phased(self, node: Relu, x: Interval) -> Interval:
        """The pre-activation interval clamped by the node's phases (active: lo >= 0, inactive:
        hi <= 0), recorded as the pre-activation's bounds; lo > hi marks an empty sub-problem."""
        ph = self.phases.get(node.name)
        if ph is None:
            return x
        ph = np.asarray(ph)
        x = Interval(np.where(ph > 0, np.maximum(x.lo, 0.0), x.lo),
                     np.where(ph < 0, np.minimum(x.hi, 0.0), x.hi))
        self.bounds[node.x] = x if node.x not in self.bounds else self.bounds[node.x].meet(x)
        return self.bounds[node.x]

    def sigmoid(self, node: Sigmoid, x: Interval):
        # monotone; the float formula is accurate to a few ulps, widen by 1e-12 absolute
        with np.errstate(over="ignore"):
            lo = 0.5 * (1.0 + np.tanh(0.5 * x.lo)) - 1e-12
            hi = 0.5 * (1.0 + np.tanh(0.5 * x.hi)) + 1e-12
        return self._keep(node.name, Interval(np.clip(lo, 0.0, 1.0), np.clip(hi, 0.0, 1.0)))

    def argmax(self, node, x: Interval):
        shape = x.lo.shape[:-1] + (1,)
        return self._keep(node.name, Interval(np.zeros(shape), np.full(shape, float(x.lo.shape[-1] - 1))))

    def mul(self, node, a: Interval, b: Interval):
        return self._keep(node.name, _square(a) if node.a == node.b else _times(a, b))

    def div(self, node, a: Interval, b: Interval):
        zero = (b.lo <= 0) & (b.hi >= 0)
        with np.errstate(divide="ignore"):
            r = Interval(np.nextafter(1.0 / np.where(zero, 1.0, b.hi), -INF),
                         np.nextafter(1.0 / np.where(zero, 1.0, b.lo), INF))
        q = _times(a, r)
        return self._keep(node.name, Interval(np.where(zero, -INF, q.lo), np.where(zero, INF, q.hi)))

    def pow(self, node, x: Interval):
        p = node.p
        if p.denominator == 1:
            k = int(p)
            if k >= 0:
                return self._keep(node.name, _int_power(x, k))
            q = _int_power(x, -k)
            zero = (x.lo <= 0) & (x.hi >= 0)
            with np.errstate(divide="ignore"):
                r = Interval(np.nextafter(1.0 / np.where(zero, 1.0, q.hi), -INF),
                             np.nextafter(1.0 / np.where(zero, 1.0, q.lo), INF))
            lo = np.where(zero, 0.0 if k % 2 == 0 else -INF, r.lo)  # even: 1/x^k > 0
            return self._keep(node.name, Interval(lo, np.where(zero, INF, r.hi)))
        # fractional: defined for x >= 0 (p > 0) or x > 0 (p < 0); monotone there
        lo, hi = np.maximum(x.lo, 0.0), np.maximum(x.hi, 0.0)
        f = float(p)
        with np.errstate(divide="ignore", over="ignore"):
            a, b = (np.power(lo, f), np.power(hi, f)) if f > 0 else (np.power(hi, f), np.power(lo, f))
        if f < 0:  # no point of the box in the domain: any bound holds
            empty = x.hi <= 0
            a, b = np.where(empty, 0.0, a), np.where(empty, INF, b)
        return self._keep(node.name, Interval(_wide_down(a), _wide_up(b)))

    def exp(self, node, x: Interval):
        with np.errstate(over="ignore"):
            return self._keep(node.name, Interval(_wide_down(np.exp(x.lo)), _wide_up(np.exp(x.hi))))

    def compare(self, node, x: Interval):
        yes, no = _COMPARE[node.op](x.lo, x.hi)
        return self._keep(node.name, Interval(np.where(yes, 1.0, 0.0), np.where(no, 0.0, 1.0)))

    def select(self, node, c: Interval, x: Interval):
        on, off = _COMPARE["!="](c.lo, c.hi)
        lo = np.where(on, x.lo, np.where(off, 0.0, np.minimum(x.lo, 0.0)))
        hi = np.where(on, x.hi, np.where(off, 0.0, np.maximum(x.hi, 0.0)))
        return self._keep(node.name, Interval(lo, hi))

    def to_int(self, node, x: Interval):  # monotone and exact on floats (inf stays inf)
        f = {"trunc": np.trunc, "floor": np.floor, "ceil": np.ceil}[node.mode]
        return self._keep(node.name, Interval(f(x.lo), f(x.hi)))


# (certainly holds, certainly fails) of `v op 0` for v in [lo, hi], elementwise
_COMPARE = {
    ">": lambda lo, hi: (lo > 0, hi <= 0), ">=": lambda lo, hi: (lo >= 0, hi < 0),
    "<": lambda lo, hi: (hi < 0, lo >= 0), "<=": lambda lo, hi: (hi <= 0, lo > 0),
    "=": lambda lo, hi: ((lo == 0) & (hi == 0), (lo > 0) | (hi < 0)),
    "!=": lambda lo, hi: ((lo > 0) | (hi < 0), (lo == 0) & (hi == 0)),
}
WIDEN = 2.0 ** -40  # relative widening of libm's exp and pow (accurate to a few ulps)


def _wide_down(v: np.ndarray) -> np.ndarray:
    """A lower bound of a value libm computed as v >= 0 (NaN: 0)."""
    v = np.where(np.isnan(v), 0.0, v)
    return np.maximum(np.nextafter(v - np.abs(v) * WIDEN, -INF), 0.0)


def _wide_up(v: np.ndarray) -> np.ndarray:
    """An upper bound of a value libm computed as v >= 0 (NaN: unbounded)."""
    v = np.where(np.isnan(v), INF, v)
    with np.errstate(over="ignore"):
        return np.nextafter(v + np.abs(v) * WIDEN + ETA, INF)


def _times(a: Interval, b: Interval) -> Interval:
    """Elementwise interval product, each endpoint product rounded outward (0 * inf: 0, the
    zero factor is exact)."""
    with np.errstate(invalid="ignore", over="ignore"):
        prods = np.stack([a.lo * b.lo, a.lo * b.hi, a.hi * b.lo, a.hi * b.hi])
    prods = np.where(np.isnan(prods), 0.0, prods)
    return Interval(np.nextafter(prods.min(0), -INF), np.nextafter(prods.max(0), INF))


def _mag_power(m: np.ndarray, k: int, up: bool) -> np.ndarray:
    """An upper (up) or lower bound of m ** k for m >= 0 and k >= 1, one outward rounding per
    multiplication."""
    out = m
    with np.errstate(over="ignore"):
        for _ in range(k - 1):
            out = np.nextafter(out * m, INF if up else -INF)
    return out if up else np.maximum(out, 0.0)


def _int_power(x: Interval, k: int) -> Interval:
    """Interval of x ** k for an integer k >= 0, outward."""
    if k == 0:
        return Interval(np.ones_like(x.lo), np.ones_like(x.hi))
    if k == 1:
        return x
    al, ah = np.abs(x.lo), np.abs(x.hi)
    if k % 2:  # odd: increasing, sign kept
        lo = np.where(x.lo >= 0, _mag_power(al, k, False), -_mag_power(al, k, True))
        hi = np.where(x.hi >= 0, _mag_power(ah, k, True), -_mag_power(ah, k, False))
        return Interval(lo, hi)
    small = np.where(x.lo >= 0, al, np.where(x.hi <= 0, ah, 0.0))  # least |x| on the interval
    big = np.maximum(al, ah)
    return Interval(_mag_power(small, k, False), _mag_power(big, k, True))


def _square(x: Interval) -> Interval:
    return _int_power(x, 2)


def relu_relaxation(l: np.ndarray, u: np.ndarray):
    """Sound linear relaxation of relu(y) for y in [l, u] (finite):
    `alpha * y <= relu(y) <= s * y + t`. Stable neurons get the exact line."""
    active, inactive = l >= 0, u <= 0
    unstable = ~(active | inactive)
    alpha = np.where(active, 1.0, np.where(unstable & (u > -l), 1.0, 0.0))  # any alpha in [0,1] is sound
    with np.errstate(invalid="ignore", divide="ignore"):
        s = np.where(unstable, u / (u - l), np.where(active, 1.0, 0.0))
        # the line must lie above (l, 0) and (u, u); relu is convex so the endpoints suffice
        t = np.maximum(-s * l, u - s * u)
        t = t + _gamma(4) * (np.abs(s * l) + np.abs(u) + np.abs(s * u)) + 4 * ETA
    t = np.where(unstable, np.nextafter(t, INF), 0.0)
    return alpha, s, t


def _float_weight(p) -> bool:
    return isinstance(p, (Const, Sparse)) and p.is_float


def _mm_param(A: np.ndarray, W) -> np.ndarray:
    """(..., k, m) @ W (m, n), W dense or Sparse (one product per nonzero and row of A)."""
    if isinstance(W, Sparse):
        flat = A.reshape(-1, A.shape[-1])
        return (flat @ W.csr()).reshape(A.shape[:-1] + (W.shape[1],))
    return _mm(A, W.value)


def _abs_mv(W, v: np.ndarray) -> np.ndarray:
    """|W| v for W dense or Sparse and v (..., n)."""
    if isinstance(W, Sparse):
        return _csr_mv(_csr(W, np.abs(W.data)), v)
    return _mv(np.abs(W.value), v)


BACKSUB_FLOATS = 1 << 22  # coefficient entries one back-substitution pass may hold at once


class LinearDomain(IntervalDomain):
    """Intervals tightened by back-substitution at every affine node (see module docstring)."""

    def __init__(self, graph: Graph, skip: frozenset[str] = frozenset(),
                 phases: Mapping[str, np.ndarray] | None = None):
        super().__init__(phases)
        self.by_name = {n.name: n for n in graph.nodes}
        self.order = {n.name: i for i, n in enumerate(graph.nodes)}
        self.nodes = graph.nodes
        self.relax: dict[str, tuple] = {}  # relu value -> (alpha, s, t) over its input bounds
        self.skip = skip  # values left at interval bounds (e.g. outputs when only a spec matters)
        self.prior: dict[str, Interval] = {}  # value -> bounds known on a region containing this one
        self.feeds_relu = frozenset(n.x for n in graph.nodes if isinstance(n, Relu))
        self.tighten_steps = 0  # α steps on the bounds of ReLU inputs (`_tighten`), 0: none
        # ReLU input -> (its rows in the [eye; -eye] layout, per ReLU before it the float32
        # slopes of those rows, (rows, m)): what `_tighten` used, for a certificate
        self.tightened: dict[str, tuple[np.ndarray, dict[str, np.ndarray]]] = {}
        self.width = max(graph.dims().values())
        # independent interval terms (float rounding errors, `nnsmt.floatsem`): bounded where
        # they enter instead of substituted down to the input
        self.noise = frozenset(json.loads(graph.meta.get("noise", "[]")))
        # values that are the input's columns `views[v]` (the declared inputs beside rounding
        # errors): back-substitution stops there, at their width instead of the input's
        self.views = {k: np.asarray(v, dtype=np.int64)
                      for k, v in json.loads(graph.meta.get("input_view", "{}")).items()}

    def affine(self, node: Affine, x: Interval, *more: Interval):
        iv = super().affine(node, x, *more)
        ins = [v for v, _ in node.terms()]
        # an affine map of distinct input boxes: the interval is already its exact range
        direct = all(isinstance(self.by_name[v], Input) for v in ins) and len(set(ins)) == len(ins)
        if node.name not in self.skip and not direct and node.name not in self.noise \
                and all(isinstance(w, (Const, Sparse)) for _, w in node.terms()) \
                and isinstance(node.bias, Const) and np.all(np.isfinite(iv.lo)) \
                and np.all(np.isfinite(iv.hi)) and iv.lo.size:
            m = iv.lo.shape[-1]
            batch = int(np.prod(iv.lo.shape[:-1]))
            # only the neurons a prior leaves open: one it shows stable stays stable on this
            # (smaller) region and its relaxation is exact whatever its bounds (in bab on
            # MNIST-FC these rows were most of the time). Its looser interval can loosen a later
            # bound where intervals beat back-substitution (14 of 200 random 3x6 networks):
            # bab still gained 1.5x sub-problems a second
            rows = np.arange(m)
            pr = self.prior.get(node.name) if node.name in self.feeds_relu else None
            if pr is not None:
                open_ = (pr.lo < 0) & (pr.hi > 0)
                rows = np.flatnonzero(np.any(open_.reshape(-1, m), axis=0))
            # rows are independent: a wide layer goes in chunks of rows to bound the memory
            step = max(1, BACKSUB_FLOATS // (2 * batch * self.width))
            lo, hi = iv.lo.copy(), iv.hi.copy()
            for a in range(0, len(rows), step):
                r = rows[a:a + step]
                k = len(r)
                low, _ = self.backsub(node.name, np.vstack([np.eye(m)[r], -np.eye(m)[r]]))
                lo[..., r] = np.maximum(iv.lo[..., r], low[..., :k])
                hi[..., r] = np.minimum(iv.hi[..., r], -low[..., k:])
            iv = Interval(lo, hi)
            self.bounds[node.name] = iv
        if node.name in self.prior:
            iv = iv.meet(self.prior[node.name])
            self.bounds[node.name] = iv
        if self.tighten_steps and self.relax and node.name in self.feeds_relu and node.name not in self.skip \
                and np.all(np.isfinite(iv.lo)) and np.all(np.isfinite(iv.hi)):
            iv = self._tighten(node.name, iv)
        return iv

    def _tighten(self, name: str, iv: Interval) -> Interval:
        """α-CROWN on an intermediate layer: the bounds of ReLU input `name`'s unstable neurons
        (unstable in any batch element) optimised over the slopes of the ReLUs before it, a row
        per bound. Each row is then recomputed with its best slopes rounded to float32, the form
        a certificate stores them in (so its checker can repeat the computation), and kept where
        that beats the plain bound. Unbatched use is the intended one (a branch-and-bound root)."""
        open_ = (iv.lo < 0) & (iv.hi > 0)
        idx = np.flatnonzero(np.any(open_.reshape(-1, open_.shape[-1]), axis=0))
        if not len(idx):
            return iv
        m, k = iv.lo.shape[-1], len(idx)
        C = np.vstack([np.eye(m)[idx], -np.eye(m)[idx]])
        record: dict = {}
        plain, _ = self.backsub(name, C, record=record)
        zeros = np.zeros(plain.shape + (1,))
        kept: dict = {}
        _optimize_alphas(self, name, C, plain, zeros, record, self.tighten_steps, 0.2,
                         lambda leaf, A: zeros, kept)
        slopes = {n: kept[n].astype(np.float32) for n in self.relax if n in kept}
        low, _ = self.backsub(name, C, {n: s.astype(np.float64) for n, s in slopes.items()})
        better = low > plain  # NaN compares False
        low = np.where(better, low, -INF)
        lo, hi = iv.lo.copy(), iv.hi.copy()
        lo[..., idx] = np.maximum(lo[..., idx], low[..., :k])
        hi[..., idx] = np.minimum(hi[..., idx], -low[..., k:])
        iv = Interval(lo, hi)
        self.bounds[name] = iv
        used = np.flatnonzero(np.any(better.reshape(-1, 2 * k), axis=0))
        rows = np.concatenate([idx, m + idx])[used]
        self.tightened[name] = (rows, {n: s[..., used, :] for n, s in slopes.items()})
        return iv

    def relu(self, node: Relu, x: Interval):
        x = self._phased(node, x)
        if np.all(np.isfinite(x.lo)) and np.all(np.isfinite(x.hi)):
            with np.errstate(invalid="ignore", divide="ignore"):  # an empty sub-problem's lo > hi
                self.relax[node.name] = relu_relaxation(x.lo, x.hi)
        return super().relu(node, x)

    def _substitutable(self, node) -> bool:
        if isinstance(node, Affine):
            return all(_float_weight(w) for _, w in node.terms()) and isinstance(node.bias, Const) \
                and node.bias.is_float and all(np.all(np.isfinite(self.bounds[v].lo)) and
                                               np.all(np.isfinite(self.bounds[v].hi))
                                               for v, _ in node.terms())
        return isinstance(node, Relu) and node.name in self.relax

    def backsub(self, target: str, C: np.ndarray, alphas: Mapping[str, np.ndarray] | None = None,
                record: dict[str, np.ndarray] | None = None,
                betas: Mapping[str, np.ndarray] | None = None
                ) -> tuple[np.ndarray, tuple[str | None, np.ndarray, np.ndarray]]:
        """Rigorous lower bounds of `C @ value(target)`, and the final linear form
        (leaf value name, A, c) with C @ target >= A @ leaf + c - err, used for scoring splits;
        when the walk ends at several values (a DAG) the leaf is None and A is None.

        `alphas` (optional): ReLU value -> lower-line slopes per spec row, shape batch + (k, m),
        every entry in [0, 1] (`relu(y) >= a * y` for every y then: sound for any neuron),
        replacing the relaxation's own slopes. `record` (optional, filled): every value the walk
        reached -> its summed coefficient matrix (for the gradient in `_optimize_alphas`).
        `betas` (optional): ReLU value -> multipliers of its phase constraints, shape like
        `alphas`, every entry >= 0 (β-CROWN): a neuron the phases fix (active: pre >= 0,
        inactive: pre <= 0) adds -β * sign * pre to the form. Over the inputs that satisfy the
        phases that term is <= 0, so the bound stays sound for any β >= 0; it lets the split
        constraints reach the layers below, which the clamped interval alone does not.

        Invariant: C @ target >= Σ_v A_v @ value(v) + c - err for the exact reals, over the
        values v with pending coefficients A_v, where err collects a bound on every rounding
        error made so far. Nodes are taken in reverse topological order, so every consumer
        of a value has added its coefficients before the value itself is substituted."""
        batch = self.bounds[target].lo.shape[:-1]
        k = np.shape(C)[0]
        c = np.zeros(batch + (k,))
        err = np.zeros(batch + (k,))
        pending: dict[str, np.ndarray] = {target: np.array(C, dtype=np.float64)}
        leaves: list[tuple[str, np.ndarray]] = []

        def add(v: str, A2: np.ndarray):
            nonlocal err
            old = pending.get(v)
            if old is None:
                pending[v] = A2
                return
            new = old + A2  # one rounding per entry, applied to value(v)
            err = err + _gamma(1) * _mv(np.abs(new), _mag(self.bounds[v]))
            pending[v] = new

        noise = np.zeros(batch + (k,))
        for node in reversed(self.nodes[:self.order[target] + 1]):
            A = pending.pop(node.name, None)
            if A is None:
                continue
            if record is not None:
                record[node.name] = A
            if node.name in self.views and node.name != target:
                leaves.append((node.name, A))
                continue
            if node.name in self.noise and node.name != target:
                with np.errstate(invalid="ignore"):
                    noise = np.nextafter(noise + lin_lower(A, self.bounds[node.name]), -INF)
                continue
            if not self._substitutable(node):
                leaves.append((node.name, A))
            elif isinstance(node, Affine):
                b = node.bias.value
                m = b.shape[0]
                cb = A @ b
                c2 = c + cb
                # |fl(A W_k) - A W_k| |y_k| <= gamma_m |A| (|W_k| |y_k|); same for A b; plus c
                wy = np.abs(b)
                for v, W in node.terms():
                    wy = _abs_mv(W, _mag(self.bounds[v])) + wy
                err = err + _gamma(m + 2) * (_mv(np.abs(A), wy) + np.abs(c2)) \
                    + (m + 2) * sum(W.shape[1] for _, W in node.terms()) * ETA
                c = c2
                for v, W in node.terms():
                    if v in self.noise:  # |A| |W| max|e|: the error term's least value, at once
                        with np.errstate(invalid="ignore"):
                            term = _mv(np.abs(A), _abs_mv(W, _mag(self.bounds[v])))
                            noise = np.nextafter(noise - term * (1 + _gamma(A.shape[-1] + 2)), -INF)
                        continue
                    add(v, _mm_param(A, W))
            else:  # a ReLU with its relaxation
                y = self.bounds[node.x]
                alpha, s, t = self.relax[node.name]
                neg = A < 0
                An = np.minimum(A, 0.0)
                al = alphas[node.name] if alphas is not None and node.name in alphas else alpha[..., None, :]
                A2 = np.where(neg, A * s[..., None, :], A * al)
                cc = _mv(An, t)  # A < 0 times the upper line's intercept
                c2 = c + cc
                n = A.shape[-1]
                err = err + _gamma(n + 2) * (_mv(-An, np.abs(t)) + np.abs(c2)) \
                    + _gamma(1) * _mv(np.abs(A2), _mag(y)) + (n + 2) * ETA
                if betas is not None and node.name in betas:
                    # one more rounding, relative to the difference (the product's is charged
                    # above relative to the product: the two may cancel)
                    sign = np.asarray(self.phases[node.name], dtype=np.float64)[..., None, :]
                    A2 = A2 - betas[node.name] * sign
                    err = err + _gamma(1) * _mv(np.abs(A2), _mag(y))
                c = c2
                add(node.x, A2)
        if len(leaves) > 1:  # a value whose coefficients all cancelled adds nothing
            leaves = [lf for lf in leaves if np.any(lf[1])] or leaves[:1]
        name, A = leaves[0]
        total = lin_lower(A, self.bounds[name], c)
        if self.noise:
            with np.errstate(invalid="ignore"):
                total = np.nextafter(total + noise, -INF)
        for v, Av in leaves[1:]:
            with np.errstate(invalid="ignore"):
                total = np.nextafter(total + lin_lower(Av, self.bounds[v]), -INF)
            total = np.where(np.isnan(total), -INF, total)
        lower = np.nextafter(total - err * (1 + 1e-6), -INF)
        if len(leaves) > 1:
            return lower, (None, None, c)
        return lower, (name, A, c)


def propagate_bounds(graph: Graph, box: Interval | Mapping[str, Interval] | None = None,
                     method: str = "linear", phases: Mapping[str, np.ndarray] | None = None,
                     prior: Mapping[str, Interval] | None = None) -> dict[str, Interval]:
    """Sound bounds of every value of `graph`.

    Args:
        graph: a checked graph.
        box: the input box (an `Interval`, for a single-input graph) or a mapping input name ->
            Interval; None uses each Input node's own lo/hi.
        method: "interval" or "linear" (intervals tightened by back-substitution).
        phases: optional ReLU node name -> int8 array (batch + (m,), or (m,)) of a
            sub-problem's ReLU phases (branch and bound, `nnsmt.queries.bab`): +1 active (the
            sub-problem asserts the pre-activation >= 0), -1 inactive (<= 0), 0 free. Each
            ReLU's input interval is clamped accordingly (and recorded so) before its
            relaxation, which makes a fixed neuron an exact line. The bounds then hold for the
            inputs of the box that satisfy the phases; where none does, some value may get
            lo > hi: that batch element is infeasible (see `infeasible`).
        prior: optional value name -> Interval known to hold on a region containing this one
            (e.g. `tightened_bounds` of a branch-and-bound root): met into the linear bounds of
            those (affine) values as they are computed, so later values gain from them too.

    Returns:
        value name -> Interval (float64, outward rounded).
    """
    dom = _domain(graph, box, method, phases=phases, prior=prior)
    return dom.bounds


def tightened_bounds(graph: Graph, box: Interval, steps: int
                     ) -> tuple[dict[str, Interval], dict[str, tuple[np.ndarray, dict[str, np.ndarray]]]]:
    """`propagate_bounds` (linear) with the bounds of every ReLU input's unstable neurons
    optimised by `steps` α-CROWN steps over the slopes of the ReLUs before it (each bound a row
    of its own; plain back-substitution optimises none of them). Costs a spec bound's ascent per
    layer, so it pays once per region (a branch-and-bound root), whose sub-problems take the
    result as `prior`.

    Returns:
        (bounds, slopes): slopes maps each tightened ReLU input (m neurons) to (rows, per ReLU
        before it the float32 slopes (len(rows), its neurons)), rows numbering the bounds as
        [lower of neuron i: i; upper: m + i]; recomputing those rows with those slopes (the
        others with plain ones) gives the bounds again. What a certificate's `Tighten` node
        records.
    """
    dom = _domain(graph, box, "linear", tighten=steps)
    return dom.bounds, dom.tightened


def infeasible(bounds: Mapping[str, Interval]) -> np.ndarray | bool:
    """Per batch element: some value's bounds are empty (lo > hi), so no input of the box
    satisfies the phases the bounds were computed under (always False without phases)."""
    out = False
    for iv in bounds.values():
        if iv.lo.ndim:
            out = out | np.any(iv.lo > iv.hi, axis=-1)
    return out


def _domain(graph, box, method, skip=frozenset(), phases=None, prior=None, tighten=0):
    if method not in METHODS:
        raise UnsupportedError(f"unknown bound method {method!r}; choose from {', '.join(METHODS)}")
    dom = IntervalDomain(phases) if method == "interval" else LinearDomain(graph, skip, phases)
    if method != "interval":
        dom.prior = dict(prior or {})
        dom.tighten_steps = tighten
    if isinstance(box, Interval):
        if len(graph.inputs) != 1:
            raise UnsupportedError(f"{graph.source}: one input box for {len(graph.inputs)} inputs "
                                   "(give a mapping input name -> Interval)")
        box = {graph.inputs[0].name: box}
    inputs = {n.name: (box or {}).get(n.name) for n in graph.inputs}
    interpret(graph, dom, inputs)
    return dom


def output_spec_bounds(graph: Graph, box: Interval, C: np.ndarray, method: str = "linear",
                       alpha_steps: int = 0, alpha_lr: float = 0.2,
                       phases: Mapping[str, np.ndarray] | None = None,
                       alphas_out: dict | None = None, beta_lr: float = 0.0,
                       alphas_init: Mapping[str, np.ndarray] | None = None,
                       prior: Mapping[str, Interval] | None = None):
    """Lower bounds of `C @ output` over the box (rows of C are specs, e.g. Y_0 - Y_1), plus
    each spec's coefficients on the input (zeros when back-substitution stopped early) and
    the bounds of every value. Tighter than bounding the outputs separately. Batched: box
    arrays (B, n) give (B, k) bounds and (B, k, n) coefficients.

    `alpha_steps` > 0 (method "linear"): then that many steps of projected gradient ascent
    (Adam, step `alpha_lr`) on the lower-line slopes of the unstable ReLUs, α-CROWN style, one
    slope per neuron, spec row and batch element (each row's best lines differ, and the
    rows, like the batch elements, are independent problems); every step's bound is the same
    rigorous back-substitution, and each row keeps the best bound seen (a max of sound bounds)
    and that step's coefficients, so the result is never below the plain one. The slopes of
    the intermediate layers' bounds stay the plain ones (only the spec's bound is optimised).

    `phases` (optional): a sub-problem's ReLU phases, as in `propagate_bounds`; a batch
    element whose phases no input of its box satisfies (`infeasible`) gets +inf bounds.
    `beta_lr` > 0 (with phases and alpha_steps): the same ascent also optimises one
    multiplier per fixed neuron and spec row (β-CROWN; see `LinearDomain.backsub`), at that
    step size, starting from 0.
    `alphas_init` (optional): where the ascent starts, in the layout of `alphas_out` (slopes by
    ReLU name, multipliers by "__beta__" + name), NaN for the default; e.g. a branch-and-bound
    parent's optimised values for its children (warm start). Any start is sound.

    `alphas_out` (optional, filled when slopes were optimised): ReLU value -> the slopes of
    each row's best bound, batch + (k, m), "__free__" + name -> which of them were free
    (unstable), and with `beta_lr` "__beta__" + name -> that bound's multipliers (0 on free
    neurons); what an unsat certificate records as hints for its checker.

    `prior` (optional): bounds known on a region containing this one, as in `propagate_bounds`."""
    inp, out = graph.single_io("output spec bounds")
    dom = _domain(graph, box, method, frozenset([out]), phases, prior)
    iv = dom.bounds[out]
    C = np.asarray(C, dtype=np.float64)
    naive = lin_lower(C, iv)
    zeros = np.zeros(box.lo.shape[:-1] + (len(C), inp.dim))
    if method == "interval":
        return _empty_inf(naive, dom.bounds, phases), zeros, dom.bounds

    def coefficients(leaf, A):
        if leaf == inp.name:
            return np.broadcast_to(A, zeros.shape)
        if leaf in dom.views:  # the input's columns, the rest (rounding errors) at 0
            coeff = zeros.copy()
            coeff[..., dom.views[leaf]] = A
            return coeff
        return zeros

    record: dict[str, np.ndarray] | None = {} if alpha_steps > 0 and dom.relax else None
    lower, (leaf, A, _) = dom.backsub(out, C, record=record)
    coeff = coefficients(leaf, A)
    if record is not None:
        lower, coeff = _optimize_alphas(dom, out, C, lower, coeff, record, alpha_steps, alpha_lr,
                                        coefficients, alphas_out, beta_lr, alphas_init)
    return _empty_inf(np.maximum(lower, naive), dom.bounds, phases), coeff, dom.bounds


def _empty_inf(lower: np.ndarray, bounds, phases) -> np.ndarray:
    """+inf bounds for the batch elements the phases make infeasible (nothing to bound)."""
    if not phases:
        return lower
    bad = infeasible(bounds)
    if not np.any(bad):
        return lower
    return np.where(np.broadcast_to(np.asarray(bad)[..., None], lower.shape), INF, lower)


def _optimize_alphas(dom: LinearDomain, out: str, C: np.ndarray, lower: np.ndarray,
                     coeff: np.ndarray, record: dict, steps: int, lr: float, coefficients,
                     alphas_out: dict | None = None, beta_lr: float = 0.0, init=None):
    """Projected Adam ascent on per-row lower slopes (see `output_spec_bounds`). The gradient
    is closed form: with the lines fixed, back-substitution's bound is the value of the
    relaxed (linear) network at the input vertex minimising it, so d bound / d alpha_j =
    (the coefficient ReLU j's output receives, where positive) * (its input's value at that
    minimiser), one forward pass per step (`_relaxed_point`). The gradient only steers; the
    bounds come from `backsub` alone, so its float64 arithmetic needs no rounding care."""
    k = len(C)
    batch = lower.shape[:-1]
    alphas, free = {}, {}
    for name, (alpha, _, _) in dom.relax.items():
        y = dom.bounds[dom.by_name[name].x]
        alphas[name] = np.array(np.broadcast_to(alpha[..., None, :], batch + (k, alpha.shape[-1])))
        free[name] = np.broadcast_to(((y.lo < 0) & (y.hi > 0))[..., None, :], alphas[name].shape)
        a0 = None if init is None else init.get(name)
        if a0 is not None:
            a0 = np.broadcast_to(np.asarray(a0, dtype=np.float64), alphas[name].shape)
            alphas[name] = np.where(free[name] & np.isfinite(a0), np.clip(np.nan_to_num(a0), 0.0, 1.0), alphas[name])
    # β: per fixed neuron and row, d bound / d β_j = -sign_j * pre_j at the same minimiser
    betas, signs = {}, {}
    if beta_lr > 0:
        for name in alphas:
            ph = dom.phases.get(name)
            if ph is not None and np.any(ph):
                signs[name] = np.asarray(ph, dtype=np.float64)[..., None, :]
                betas[name] = np.zeros_like(alphas[name])
                b0 = None if init is None else init.get("__beta__" + name)
                if b0 is not None:
                    b0 = np.nan_to_num(np.broadcast_to(np.asarray(b0, dtype=np.float64), betas[name].shape),
                                       nan=0.0, posinf=0.0, neginf=0.0)
                    betas[name] = np.where(signs[name] != 0, np.maximum(b0, 0.0), 0.0)
    m1 = {n: np.zeros_like(a) for n, a in alphas.items()}
    m2 = {n: np.zeros_like(a) for n, a in alphas.items()}
    mb1 = {n: np.zeros_like(a) for n, a in betas.items()}
    mb2 = {n: np.zeros_like(a) for n, a in betas.items()}
    best = np.where(np.isnan(lower), -INF, lower)
    # the slopes of `best` so far: the relaxation's own (a warm start is not evaluated yet)
    kept = None if alphas_out is None else {
        n: np.array(np.broadcast_to(dom.relax[n][0][..., None, :], a.shape)) for n, a in alphas.items()}
    for step in range(1, steps + 1):
        vals = _relaxed_point(dom, out, record, alphas)
        for name, a in alphas.items():
            A = record.get(name)
            if A is None:
                continue
            z = vals[dom.by_name[name].x]
            g = np.nan_to_num(np.where((A > 0) & free[name], A * z, 0.0), posinf=0.0, neginf=0.0)
            # a gradient at rounding level has no sign to trust (Adam would step it fully)
            g = np.where(np.abs(g) > 1e-10 * np.abs(g).max(-1, keepdims=True), g, 0.0)
            alphas[name] = np.where(free[name], np.clip(a + lr * _adam(m1, m2, name, g, step), 0.0, 1.0), a)
        for name, b in betas.items():
            z = vals.get(dom.by_name[name].x)
            if z is None:
                continue
            g = np.nan_to_num(-signs[name] * z, posinf=0.0, neginf=0.0)
            betas[name] = np.where(signs[name] != 0, np.maximum(b + beta_lr * _adam(mb1, mb2, name, g, step), 0.0), 0.0)
        record.clear()
        low, (leaf, A, _) = dom.backsub(out, C, alphas, record, betas or None)
        better = low > best  # NaN compares False
        if better.any():
            best = np.where(better, low, best)
            coeff = np.where(better[..., None], coefficients(leaf, A), coeff)
            if kept is not None:
                for n, a in alphas.items():
                    kept[n] = np.where(better[..., None], a, kept[n])
                for n, b in betas.items():
                    kb = kept.setdefault("__beta__" + n, np.zeros_like(b))
                    kept["__beta__" + n] = np.where(better[..., None], b, kb)
    if kept is not None:
        alphas_out.update(kept)
        alphas_out.update({"__free__" + n: f for n, f in free.items()})
    return best, coeff


def _adam(m1: dict, m2: dict, name: str, g: np.ndarray, step: int, b1: float = 0.9, b2: float = 0.999):
    """Adam's bias-corrected step direction for parameter `name` (its moments updated in place)."""
    m1[name] = b1 * m1[name] + (1 - b1) * g
    m2[name] = b2 * m2[name] + (1 - b2) * g * g
    return m1[name] / (1 - b1 ** step) / (np.sqrt(m2[name] / (1 - b2 ** step)) + 1e-12)


def _relaxed_point(dom: LinearDomain, out: str, record: Mapping[str, np.ndarray],
                   alphas: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per spec row, every value of the relaxed network (each ReLU replaced by the line
    `backsub` used for that row: the upper one where its coefficient is negative, else the
    lower one) at the point of the walk's leaves minimising the row's final linear form: the
    minimiser of that bound. Plain float64, shapes batch + (k, width); a heuristic input."""
    vals: dict[str, np.ndarray] = {}
    for node in dom.nodes[:dom.order[out] + 1]:
        A = record.get(node.name)
        if A is None:
            continue
        iv = dom.bounds[node.name]
        leaf = node.name != out and (node.name in dom.views or node.name in dom.noise) \
            or not dom._substitutable(node)
        if leaf:
            vals[node.name] = np.where(A > 0, _fin(iv.lo)[..., None, :], _fin(iv.hi)[..., None, :])
        elif isinstance(node, Affine):
            z = node.bias.value
            for v, W in node.terms():
                x = vals.get(v)
                if x is None:  # an error term bounded where it entered: its midpoint
                    b = dom.bounds[v]
                    x = (0.5 * (_fin(b.lo) + _fin(b.hi)))[..., None, :]
                z = z + (_csr_mv(W.csr(), x) if isinstance(W, Sparse) else _mm(x, W.value.T))
            vals[node.name] = z
        else:
            alpha, s, t = dom.relax[node.name]
            z = vals[node.x]
            al = alphas.get(node.name, alpha[..., None, :])
            vals[node.name] = np.where(A < 0, s[..., None, :] * z + t[..., None, :], al * z)
    return vals


def relu_states(graph: Graph, bounds: Mapping[str, Interval]) -> dict[str, np.ndarray]:
    """Per ReLU node, each neuron's state by bounds: +1 stably active (pre-activation >= 0 on
    the box), -1 stably inactive (<= 0), 0 undecided."""
    out = {}
    for n in graph.nodes:
        if isinstance(n, Relu):
            iv = bounds[n.x]
            out[n.name] = np.where(iv.hi <= 0, -1, np.where(iv.lo >= 0, 1, 0)).astype(np.int8)
    return out


def count_states(states: Mapping[str, np.ndarray]) -> dict[str, int]:
    """{"active": .., "inactive": .., "unstable": .., "total": ..} over all ReLU neurons."""
    allv = np.concatenate(list(states.values())) if states else np.zeros(0)
    return {"active": int((allv == 1).sum()), "inactive": int((allv == -1).sum()),
            "unstable": int((allv == 0).sum()), "total": int(allv.size)}
