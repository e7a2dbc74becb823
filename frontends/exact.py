"""Exact arithmetic on "exact arrays" (float64, or object arrays of Fractions) and the pending
one-input affine map `_Map` that folds a chain of layers exactly; shared by every frontend so one
network gives bit-identical IR from every source."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from nnsmt.ir import exact_array

# Two dense maps with no activation between them are folded exactly (Python ints/Fractions) only
# while out*mid*in stays below this; larger pairs are emitted as two consecutive Affine nodes,
# which is just as exact and much cheaper than a big rational matrix product.
DENSE_FOLD_LIMIT = 200_000

# ---- exact arithmetic on "exact arrays": float64, or object arrays of Fractions/ints ----
# Fast paths stay in float64 and check exactness vectorised (error-free transformations); only
# inexact elements go rational, through Python ints (Fraction arithmetic is ~20x slower).

def _pairs(a) -> list:
    """(numerator, denominator) of every element, exactly."""
    if a.dtype != object:
        return [v.as_integer_ratio() for v in a.ravel().tolist()]
    return [(v.numerator, v.denominator) for v in a.ravel()]


def _canon(a) -> np.ndarray:
    """An object array of rationals as an exact array: float64 if every value is one."""
    if any(v.denominator & (v.denominator - 1) for v in a.ravel()):
        return a  # a non-dyadic value is no float: skip exact_array's per-element float test
    return exact_array(a)


def _rational(a, b, add) -> np.ndarray:
    out = np.empty(a.shape, dtype=object)
    out.ravel()[:] = [Fraction(p * s + r * q if add else p * r, q * s)
                      for (p, q), (r, s) in zip(_pairs(a), _pairs(b))]
    return _canon(out)


def _is_obj(*arrays) -> bool:
    return any(a.dtype == object for a in arrays)


def _safe(a):
    # Dekker's two-product is error-free only without overflow/underflow of its partial products
    m = np.abs(a)
    return (m == 0) | ((m >= 2.0 ** -400) & (m <= 2.0 ** 400))


def _split(a):
    t = 134217729.0 * a  # Veltkamp split with 2**27 + 1
    hi = t - (t - a)
    return hi, a - hi


def _mul(a, b) -> np.ndarray:
    """Exact elementwise a * b (broadcasting)."""
    a, b = np.broadcast_arrays(np.asarray(a), np.asarray(b))
    if _is_obj(a, b):
        return _rational(a, b, add=False)
    with np.errstate(all="ignore"):
        p = a * b
        (ah, al), (bh, bl) = _split(a), _split(b)
        err = ((ah * bh - p) + ah * bl + al * bh) + al * bl  # == a*b - p exactly when _safe
    ok = (err == 0) & _safe(a) & _safe(b)
    return p if ok.all() else _rational(a, b, add=False)


def _add(a, b) -> np.ndarray:
    """Exact elementwise a + b (broadcasting)."""
    a, b = np.broadcast_arrays(np.asarray(a), np.asarray(b))
    if _is_obj(a, b):
        return _rational(a, b, add=True)
    with np.errstate(all="ignore"):
        s = a + b
        bb = s - a
        err = (a - (s - bb)) + (b - bb)  # Knuth's two-sum: s + err == a + b exactly
    return s if np.all((err == 0) & np.isfinite(s)) else _rational(a, b, add=True)


def _recip(c) -> np.ndarray:
    """Exact 1 / c (c nonzero): a float for powers of two, else a Fraction."""
    if not _is_obj(c):
        with np.errstate(all="ignore"):
            r = 1.0 / c
        if np.all((np.abs(np.frexp(c)[0]) == 0.5) & np.isfinite(r)):
            return r
    out = np.empty(c.shape, dtype=object)
    out.ravel()[:] = [Fraction(q, p) for p, q in _pairs(c)]
    return _canon(out)


def _scaled(a):
    """(object array of Python ints k, Fraction s) with a == k * s exactly."""
    if a.dtype == object:  # common denominator
        den = math.lcm(*(v.denominator for v in a.ravel()))
        k = np.empty(a.shape, dtype=object)
        k.ravel()[:] = [v.numerator * (den // v.denominator) for v in a.ravel()]
        return k, Fraction(1, den)
    m, e = np.frexp(a)
    k = (m * 2.0 ** 53).astype(np.int64)  # exact: a float64 mantissa has 53 bits
    e = e.astype(np.int64) - 53
    nz = k != 0
    e0 = int(e[nz].min()) if nz.any() else 0
    return np.left_shift(k.astype(object), np.where(nz, e - e0, 0).astype(object)), \
        Fraction(2) ** e0


def _dot(x, y) -> np.ndarray:
    """Exact matrix product x @ y (y a matrix or a vector), as one Python-int product."""
    if not (np.any(x) and np.any(y)):
        return np.zeros(x.shape[:1] + y.shape[1:])
    (kx, sx), (ky, sy) = _scaled(x), _scaled(y)
    z, s = kx.dot(ky), sx * sy
    out = np.empty(z.shape, dtype=object)
    out.ravel()[:] = [Fraction(v * s.numerator, s.denominator) for v in z.ravel()]
    return _canon(out)


def fold_batchnorm(gamma, beta, mean, var, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """(scale, shift) of inference-mode batch normalisation, float64 arrays of the channels.

    Shared by every frontend so that one network gives bit-identical IR from every source.
    The one inexact fold: sqrt is irrational, so the scale gamma / sqrt(var + eps) is its float64
    rounding; the shift beta - mean * scale is exact for that rounded scale.
    """
    gamma, beta, mean, var = (np.asarray(a, dtype=np.float64) for a in (gamma, beta, mean, var))
    s = gamma / np.sqrt(var + eps)
    return s, _add(beta, -_mul(mean, s))


# ---- the pending affine map and activation tensors ----

class _Map:
    """Pending affine map v = A @ x + b on flattened vectors. Kept structured so that layers that
    are no-ops on the vector cost nothing: A is None for a diagonal map with scale d (None: the
    identity), b None for a zero shift. Immutable: every method returns a new map."""

    __slots__ = ("n_in", "A", "d", "b")

    def __init__(self, n_in, A=None, d=None, b=None):
        self.n_in, self.A, self.d, self.b = n_in, A, d, b

    @property
    def n_out(self) -> int:
        return self.n_in if self.A is None else self.A.shape[0]

    @property
    def is_identity(self) -> bool:
        return self.A is None and self.d is None and self.b is None

    def shift(self, c) -> "_Map":  # v + c
        a = np.asarray(c)
        if not np.any(a) and (self.is_identity or a.dtype == object or not np.signbit(a).any()):
            return self  # + 0 changes nothing; a -0.0 bias of a layer keeps the file's bits
        return _Map(self.n_in, self.A, self.d, c if self.b is None else _add(self.b, c))

    def scale(self, c) -> "_Map":  # v * c, elementwise
        if np.all(c == 1):
            return self
        b = None if self.b is None else _mul(self.b, c)
        if self.A is None:
            return _Map(self.n_in, None, c if self.d is None else _mul(self.d, c), b)
        return _Map(self.n_in, _mul(self.A, np.asarray(c)[:, None]), None, b)

    def gather(self, idx) -> "_Map":  # v[idx]
        if len(idx) == self.n_out and np.array_equal(idx, np.arange(self.n_out)):
            return self
        return _Map(self.n_in, self.dense()[idx], None, None if self.b is None else self.b[idx])

    def then(self, M) -> "_Map | None":  # M @ v; None when folding is too costly
        b = None if self.b is None else _dot(M, self.b)
        if self.A is None:  # a diagonal scales M's columns: an elementwise product
            A = M if self.d is None else _mul(M, np.asarray(self.d)[None, :])
        elif M.shape[0] * M.shape[1] * self.n_in <= DENSE_FOLD_LIMIT:
            A = _dot(M, self.A)
        else:
            return None
        return _Map(self.n_in, A, None, b)

    def dense(self) -> np.ndarray:
        if self.A is not None:
            return self.A
        d = np.ones(self.n_in) if self.d is None else self.d
        out = np.zeros((self.n_in, self.n_in), dtype=d.dtype)
        out[np.arange(self.n_in), np.arange(self.n_in)] = d
        return out
