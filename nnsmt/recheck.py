"""Independent rigorous linear bounds for checking certificates (`nnsmt.engine.certify`).

A second implementation of CROWN/DeepPoly back-substitution for graphs of `Input`, `Affine`
(dense or sparse float64 weights, float64 bias, several terms) and `Relu` nodes, written apart
from `nnsmt.bounds` so that a certificate's "bounds" leaves are not checked by the code that
produced them. Batched over B regions (a box and ReLU phases each).

What it computes, per region b: every ReLU pre-activation's interval (interval arithmetic
intersected with back-substitution to the input box, then clamped by the region's phases: +1
active keeps lo >= 0, -1 inactive keeps hi <= 0; an empty interval makes the region
infeasible), and the lower bounds of the spec rows `C @ output`. ReLU relaxations: a stable
(or phase-fixed) neuron is exact (identity or 0); a free one has the lower line relu(z) >= a z
(a in [0, 1]: the given alpha, else 1 if u > -l else 0) and the upper line s z + t with
s = u / (u - l) and t >= max(-s l, (1 - s) u) (rounded up): the line lies above relu at l and
at u, so above it on [l, u] (relu is convex) -- whatever rounding did to s.

Rounding (u = 2^-53, eta = 2^-1074 the smallest subnormal). A bound is kept as
`f(v) >= Lam . v + c` over the region, with Lam a float matrix and c a rigorous lower bound on
the constant. Every float operation is accounted for:
- a product Lam @ W of inner size d is within gamma_d |Lam| |W| + d eta of the exact one
  (any summation order, FMA or not; gamma_d = d u / (1 - d u) <= 1.01 d u here); that
  coefficient error is kept per value (`err`, an upper bound >= 0 on |exact coef - Lam|) and
  charged to the constant as `err @ |v|max` once the value is reached (|v|max from its
  interval), i.e. c -= err . |v|max;
- an elementwise product (ReLU slopes) or sum (two paths meeting at a value) is within
  2u |result| + eta of the exact one, charged the same way;
- dot products of the constant (Lam . bias, Lam- . t) subtract gamma_d |Lam| . |bias| + d eta;
- every error bound is itself a float computation over nonnegative numbers: `_ub(x, n)`
  inflates it by (1 + (3n + 7)u) plus 4(n+1) eta: 3(n+1)u and 2(n+1) eta cover the relative
  error gamma_n <= 1.01 n u (as exact <= x / (1 - gamma_n)) of n operations on nonnegative
  operands and their underflow; the extra 4u and doubled eta cover the three roundings of the
  inflation itself (factor, product, sum: each >= (1 - u) times exact, the product's
  underflow within eta / 2);
- a single rounded sum of two floats is bounded by stepping one float outward (np.nextafter):
  round-to-nearest is within half an ulp (subnormals included);
- the final minimum over the box, sum_j Lam_j (lo_j or hi_j), is a dot product: as above.
Infinities and NaN (overflow, inf * 0) only ever loosen a bound: a NaN lower bound becomes -inf.
"""

from __future__ import annotations

import numpy as np

from .bounds import Interval  # the return type only; no bound computation is imported
from .errors import UnsupportedError
from .ir import Affine, Const, Graph, Input, Relu, Sparse

U = 2.0 ** -53
ETA = 2.0 ** -1074
INF = np.inf


def _gamma(n: int) -> float:
    """An upper bound of gamma_n = n u / (1 - n u) (valid while n u < 0.009)."""
    return 1.01 * max(n, 1) * U


def _ub(x, n: int):
    """Upper bound on the exact value of a nonnegative quantity computed as `x` in float with
    at most n rounded operations on nonnegative operands along any path. No per-element
    nextafter: the factor's extra 4u covers the rounding of the factor, of the product and of
    the sum (each at most a factor 1 - u), the doubled eta term the product's underflow. NaN
    stays NaN (it ends as a -inf bound)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return x * (1.0 + (3.0 * n + 7.0) * U) + 4.0 * (n + 1) * ETA


def _down(x):
    """One float below the round-to-nearest result of a single operation (NaN -> -inf)."""
    x = np.nextafter(x, -INF)
    return np.where(np.isnan(x), -INF, x)


def _up(x):
    x = np.nextafter(x, INF)
    return np.where(np.isnan(x), INF, x)


def _mag(iv: Interval) -> np.ndarray:
    m = np.maximum(np.abs(iv.lo), np.abs(iv.hi))
    return np.where(np.isnan(m), INF, m)


class _Weight:
    """A float64 weight (out, in) as dense array or scipy CSR, with |W|."""

    def __init__(self, w, where: str):
        if isinstance(w, Const) and w.is_float and w.value.ndim == 2:
            self.w = np.asarray(w.value, dtype=np.float64)
            self.abs = np.abs(self.w)
            self.sparse = False
        elif isinstance(w, Sparse) and w.is_float:
            self.w = w.csr()
            self.abs = abs(self.w)
            self.sparse = True
        else:
            raise UnsupportedError(f"{where}: recheck needs float64 weights (Const or Sparse)")
        self.shape = self.w.shape

    def left(self, lam: np.ndarray, absolute: bool = False) -> np.ndarray:
        """lam @ W (or |lam| @ |W|) for lam (..., out) -> (..., in)."""
        w = self.abs if absolute else self.w
        if not self.sparse:
            return lam @ w
        flat = lam.reshape(-1, lam.shape[-1])
        return np.asarray((w.T @ flat.T).T).reshape(lam.shape[:-1] + (self.shape[1],))

    def right(self, x: np.ndarray, absolute: bool = False) -> np.ndarray:
        """W @ x for x (B, in) -> (B, out)."""
        w = self.abs if absolute else self.w
        if not self.sparse:
            return x @ w.T
        return np.asarray((w @ x.T).T)


def _dot_lower(a: np.ndarray, x: np.ndarray) -> np.ndarray:
    """A rigorous lower bound on sum(a * x, -1) (equal shapes, float64)."""
    n = a.shape[-1]
    with np.errstate(over="ignore", invalid="ignore"):
        v = np.sum(a * x, axis=-1)
        err = _ub(_gamma(n) * _ub(np.sum(np.abs(a) * np.abs(x), axis=-1), n) + n * ETA, 2)
        return _down(v - err)


class Prepared:
    """The graph's nodes with their weights read once (checked: Input/Affine/Relu only)."""

    def __init__(self, graph: Graph):
        inp, out = graph.single_io("certificate check")
        self.graph, self.inp, self.out = graph, inp.name, out
        self.dims = graph.dims()
        self.weights: dict[str, list] = {}
        self.bias: dict[str, np.ndarray] = {}
        self.relus: dict[str, Relu] = {}
        for n in graph.nodes:
            if isinstance(n, Input):
                continue
            if isinstance(n, Relu):
                self.relus[n.name] = n
            elif isinstance(n, Affine):
                where = f"{graph.source}: node {n.name}"
                self.weights[n.name] = [(x, _Weight(w, where)) for x, w in n.terms()]
                if not (isinstance(n.bias, Const) and n.bias.is_float):
                    raise UnsupportedError(f"{where}: recheck needs a float64 bias")
                self.bias[n.name] = np.asarray(n.bias.value, dtype=np.float64).reshape(-1)
            else:
                raise UnsupportedError(f"{graph.source}: node {n.name} ({type(n).__name__}): recheck "
                                       "handles Input, Affine and Relu nodes only")


def recheck(graph, lo, hi, C, phases=None, alphas=None, betas=None, prior=None, tighten=None):
    """Rigorous lower bounds of `C @ output` over B regions.

    Args:
        graph: an Input/Affine/Relu `Graph` (or a `Prepared` one), one input, one output.
        lo, hi: float64 (B, n): each region's input box (rounded outward by the caller).
        C: float64 (R, n_out) spec rows.
        phases: ReLU value name -> int8 (B, m): +1 active, -1 inactive, 0 free.
        alphas: ReLU value name -> float (B, R, m): lower-line slopes for the spec rows (NaN:
            the default; others clipped to [0, 1]).
        betas: ReLU value name -> float (B, R, m): multipliers of the phase constraints
            (NaN or <= 0: none; used only on phase-fixed neurons). A fixed neuron's
            pre-activation z satisfies sign * z >= 0 on the region, so adding
            -beta * sign * z (beta >= 0) to the form can only lower it there: sound for any
            beta.
        prior: value name -> Interval (B, d) known to hold on a region containing each one
            (a certificate's `Tighten` node above it): met into that ReLU input's bounds.
        tighten: ReLU input name -> {ReLU value name -> float (B, 2 d, m)}: slopes for the
            back-substitution of that value's own bounds (row i its lower bound of neuron i,
            d + i the upper one; NaN: the default).

    Returns:
        (lower (B, R), infeasible (B,) bool, bounds): bounds maps every value name to its
        `Interval` (B, d) over the region (a ReLU's pre-activation clamped by its phases).
        An infeasible region's lower bounds are +inf.
    """
    p = graph if isinstance(graph, Prepared) else Prepared(graph)
    lo = np.asarray(lo, dtype=np.float64)
    hi = np.asarray(hi, dtype=np.float64)
    B = lo.shape[0]
    phases = phases or {}
    alphas = alphas or {}
    betas = betas or {}
    C = np.asarray(C, dtype=np.float64).reshape(-1, p.dims[p.out])
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        bounds, relax, infeasible = _forward(p, lo, hi, phases, prior or {}, tighten or {})
        if len(C):
            lam = np.broadcast_to(C, (B,) + C.shape).copy()
            lower = _backsub(p, p.out, lam, bounds, relax, alphas, betas, phases)
            ia = _dot_lower(np.broadcast_to(C, (B,) + C.shape),
                            np.where(C >= 0, bounds[p.out].lo[:, None, :], bounds[p.out].hi[:, None, :]))
            lower = np.fmax(lower, ia)
            lower = np.where(np.isnan(lower), -INF, lower)
        else:
            lower = np.zeros((B, 0))
        lower = np.where(infeasible[:, None], INF, lower)
    return lower, infeasible, bounds


def _forward(p: Prepared, lo, hi, phases, prior, tighten):
    """Every value's interval; ReLU relaxations (by ReLU name); infeasibility."""
    B = lo.shape[0]
    bounds: dict[str, Interval] = {p.inp: Interval(lo, hi)}
    relax: dict[str, tuple] = {}
    infeasible = np.zeros(B, dtype=bool) | np.any(lo > hi, axis=-1) | np.any(np.isnan(lo) | np.isnan(hi), axis=-1)
    need_crown = {n.x for n in p.relus.values()}
    for n in p.graph.nodes:
        if isinstance(n, Input):
            continue
        if isinstance(n, Affine):
            iv = _affine_interval(p, n.name, bounds)
            if n.name in need_crown:
                d = p.dims[n.name]
                eye = np.eye(d)
                lam = np.broadcast_to(np.concatenate([eye, -eye]), (B, 2 * d, d)).copy()
                cr = _backsub(p, n.name, lam, bounds, relax, tighten.get(n.name, {}))
                iv = Interval(np.fmax(iv.lo, cr[:, :d]), np.fmin(iv.hi, -cr[:, d:]))
                if n.name in prior:
                    iv = Interval(np.fmax(iv.lo, prior[n.name].lo), np.fmin(iv.hi, prior[n.name].hi))
            bounds[n.name] = Interval(np.where(np.isnan(iv.lo), -INF, iv.lo), np.where(np.isnan(iv.hi), INF, iv.hi))
            continue
        # Relu: clamp the pre-activation by the phases, relax
        z = bounds[n.x]
        ph = phases.get(n.name)
        l, u = z.lo, z.hi
        if ph is not None:
            ph = np.asarray(ph).reshape(l.shape)
            l = np.where(ph > 0, np.maximum(l, 0.0), l)
            u = np.where(ph < 0, np.minimum(u, 0.0), u)
        infeasible |= np.any(l > u, axis=-1)
        bounds[n.x] = Interval(l, u)  # the region's pre-activation (phases included)
        bounds[n.name] = Interval(np.maximum(l, 0.0), np.maximum(u, 0.0))
        relax[n.name] = _relaxation(l, u)
    return bounds, relax, infeasible


def _relaxation(l, u):
    """(active, inactive, free, default lower slope, upper slope s, upper intercept t), each
    (B, m): active/inactive are exact (relu = z / relu = 0 on the region)."""
    active = l >= 0
    inactive = (u <= 0) & ~active
    free = ~active & ~inactive
    s = np.where(u == INF, 1.0, np.where(l == -INF, 0.0, u / (u - l)))
    s = np.where(np.isnan(s), 1.0, np.clip(s, 0.0, 1.0))
    t1 = np.where(s == 0, 0.0, _up(-s * l))  # relu(l) = 0 <= s l + t
    one_minus = _up(1.0 - s)
    t2 = np.where(one_minus == 0, 0.0, _up(one_minus * np.maximum(u, 0.0)))  # u <= s u + t
    t = np.fmax(np.maximum(t1, t2), 0.0)
    t = np.where(np.isnan(t1) | np.isnan(t2), INF, t)
    default = np.where(u > -l, 1.0, 0.0)
    s = np.where(active, 1.0, np.where(inactive, 0.0, s))
    t = np.where(free, t, 0.0)
    return active, inactive, free, default, s, t


def _affine_interval(p: Prepared, name: str, bounds) -> Interval:
    """Interval arithmetic through one affine node, rounded outward."""
    b = p.bias[name]
    lo_parts, hi_parts = [], []
    for x, w in p.weights[name]:
        xl, xh = bounds[x].lo, bounds[x].hi
        mid = (xl + xh) / 2  # any point: W x = W mid + W (x - mid)
        rad = _up(np.maximum(_up(xh - mid), _up(mid - xl)))  # >= |x - mid| over the interval
        rad = np.where(np.isnan(rad), INF, rad)
        c = w.right(mid)
        k = w.shape[1]
        r = w.right(rad, absolute=True)  # |W| rad
        err = _gamma(k) * _ub(w.right(np.abs(mid), absolute=True), k) + k * ETA
        lo_parts.append(c)
        hi_parts.append(_ub(r, k) + _ub(err, 2))
    center = sum(lo_parts) + b
    spread = sum(hi_parts)
    n_terms = len(lo_parts) + 1
    # the sum of the centers (n_terms floats) is within gamma |.| of exact
    cerr = _ub(_gamma(n_terms) * _ub(sum(np.abs(c) for c in lo_parts) + np.abs(b), n_terms) + n_terms * ETA, 2)
    width = _ub(spread + cerr, n_terms + 1)
    lo_v, hi_v = _down(center - width), _up(center + width)
    return Interval(np.where(np.isnan(lo_v), -INF, lo_v), np.where(np.isnan(hi_v), INF, hi_v))


def _sanitize(lam, c):
    """Rows with a non-finite coefficient: coefficient 0 and constant -inf (a trivial bound)."""
    bad = ~np.all(np.isfinite(lam), axis=-1)
    if bad.any():
        lam = np.where(bad[..., None], 0.0, lam)
        c = np.where(bad, -INF, c)
    return lam, np.where(np.isnan(c), -INF, c)


def _backsub(p: Prepared, start: str, lam: np.ndarray, bounds, relax, alphas, betas=None,
             phases=None) -> np.ndarray:
    """Lower bound of lam . value(start) over each region (B, R), back-substituted to the input.
    `betas` (with the `phases` they apply to): the spec's back-substitution only; the
    intermediate bounds use none."""
    B, R = lam.shape[:2]
    coef: dict[str, np.ndarray] = {start: lam}
    err: dict[str, np.ndarray] = {start: np.zeros_like(lam)}
    c = np.zeros((B, R))
    order = [n for n in p.graph.nodes]
    pos = {n.name: i for i, n in enumerate(order)}
    for n in reversed(order[:pos[start] + 1]):
        if n.name not in coef or isinstance(n, Input):
            continue
        lam = coef.pop(n.name)
        e = err.pop(n.name)
        # the coefficient error of this value, charged through its magnitude (none at the start)
        if n.name != start:
            c = _down(c - _ub(np.einsum("brd,bd->br", e, _mag(bounds[n.name])), lam.shape[-1]))
        lam, c = _sanitize(lam, c)
        if isinstance(n, Affine):
            d = lam.shape[-1]
            c = _down(c + _dot_lower(lam, np.broadcast_to(p.bias[n.name], lam.shape)))
            for x, w in p.weights[n.name]:
                m = w.left(lam)
                me = _ub(_gamma(d) * _ub(w.left(np.abs(lam), absolute=True), d) + d * ETA, 2)
                _accumulate(coef, err, x, m, me)
        else:  # Relu
            active, inactive, free, default, s, t = relax[n.name]
            a = np.broadcast_to(default[:, None, :], lam.shape)
            given = alphas.get(n.name)
            if given is not None:
                given = np.asarray(given, dtype=np.float64)
                a = np.where(np.isnan(given), a, np.clip(given, 0.0, 1.0))
            a = np.where(active[:, None, :], 1.0, np.where(inactive[:, None, :], 0.0, a))
            neg = lam < 0
            new = np.where(neg, lam * s[:, None, :], lam * a)
            ne = _ub(2 * U * np.abs(new), 1) + ETA
            given = betas.get(n.name) if betas else None
            ph = phases.get(n.name) if phases else None
            if given is not None and ph is not None:
                b = np.nan_to_num(np.asarray(given, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
                sign = np.asarray(ph, dtype=np.float64)[:, None, :]
                b = np.where(sign != 0, np.maximum(b, 0.0), 0.0)
                new = new - b * sign  # b * sign is exact; the subtraction rounds once more
                ne = _ub(ne + _ub(2 * U * np.abs(new), 1) + ETA, 2)
            tt = np.broadcast_to(t[:, None, :], lam.shape)
            c = _down(c + _dot_lower(np.where(neg, lam, 0.0), np.where(neg, tt, 0.0)))
            _accumulate(coef, err, n.x, new, ne)
    lam = coef.pop(p.inp, None)
    if lam is None:
        return c
    e = err.pop(p.inp)
    ib = bounds[p.inp]
    c = _down(c - _ub(np.einsum("brd,bd->br", e, _mag(ib)), lam.shape[-1]))
    lam, c = _sanitize(lam, c)
    sel = np.where(lam >= 0, ib.lo[:, None, :], ib.hi[:, None, :])
    out = _down(c + _dot_lower(lam, sel))
    return np.where(np.isnan(out), -INF, out)


def _accumulate(coef, err, x, m, me):
    if x not in coef:
        coef[x], err[x] = m, me
        return
    s = coef[x] + m
    coef[x] = s
    err[x] = _ub(err[x] + me + 2 * U * np.abs(s) + ETA, 3)
