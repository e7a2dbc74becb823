"""One interpretation loop over the IR, with pluggable domains (float, exact rational, ...).

An affine node may read several values (`y = Σ_k W_k x_k + b`, `Affine.terms()`): the loop
passes a domain's `affine` the value of every term's input, in that order. A `Sparse` weight is
never densified: the float domain multiplies with scipy's CSR product, the exact domains work
row by row over the nonzeros only.

The elementwise nodes (`nnsmt.ir` docstring) are one method each: `mul`, `div`, `pow`, `exp`,
`compare`, `select`, `to_int`. The float domain follows numpy (inf or NaN outside the network's
domain, as onnxruntime); the exact domain computes every node with a rational value and refuses
Exp and fractional powers (UnsupportedError naming the node: use the enclosure domain) and
points outside the network's domain (InputError: a divisor or power base of 0); the enclosure
domain bounds them all, rigorously, and refuses to decide what its enclosures cannot (a
comparison or a divisor whose enclosure straddles 0: ValidationError, the witness is not
certified). A domain without a method for a node is refused by the loop, naming the node."""

from __future__ import annotations

import math
from fractions import Fraction
from math import lcm
from typing import Mapping, Protocol

import numpy as np

from .errors import InputError, InternalError, UnsupportedError, ValidationError
from .ir import (OPS, Affine, Argmax, Compare, Const, Div, Exp, Graph, Input, Mul, Pow, Relu, Select,
                 Sigmoid, Sparse, SparseSym, Sym, ToInt)
from .sigmoid import exp_bounds, sigmoid_interval


class Domain(Protocol):
    """What a value means. Each method returns the value of one node."""

    def input(self, node: Input, value): ...
    def affine(self, node: Affine, x, *more): ...  # one value per `node.terms()` input
    def relu(self, node: Relu, x): ...
    def sigmoid(self, node: Sigmoid, x): ...
    def argmax(self, node: Argmax, x): ...
    def mul(self, node: Mul, a, b): ...
    def div(self, node: Div, a, b): ...
    def pow(self, node: Pow, x): ...
    def exp(self, node: Exp, x): ...
    def compare(self, node: Compare, x): ...
    def select(self, node: Select, c, x): ...
    def to_int(self, node: ToInt, x): ...


def _method(domain, name: str, node):
    fn = getattr(domain, name, None)
    if fn is None:
        raise UnsupportedError(f"{type(domain).__name__} does not handle {OPS[type(node)]} nodes "
                               f"(node {node.name!r})")
    return fn


def interpret(graph: Graph, domain: Domain, inputs: Mapping[str, object],
              initial_env: Mapping[str, object] | None = None) -> dict[str, object]:
    """Run `domain` over the graph.

    Args:
        graph: a checked graph.
        domain: what a value means (one method per node type).
        inputs: each Input node's name -> its value, passed to `domain.input`.
        initial_env: values taken as already computed, in the domain's own representation
            (partial evaluation, as torch.fx's `Interpreter.run(initial_env=...)`): a node whose
            name is given is skipped, an Input given here needs no entry in `inputs`.

    Returns:
        value name -> value, for every node (and every entry of `initial_env`).
    """
    env: dict[str, object] = dict(initial_env or {})
    try:
        for node in graph.nodes:
            if node.name in env:
                continue
            match node:
                case Input():
                    if node.name not in inputs:
                        raise InputError(f"no value given for input {node.name!r}")
                    env[node.name] = domain.input(node, inputs[node.name])
                case Affine():
                    env[node.name] = domain.affine(node, env[node.x], *(env[v] for v, _ in node.more))
                case Relu():
                    env[node.name] = domain.relu(node, env[node.x])
                case Sigmoid():
                    env[node.name] = domain.sigmoid(node, env[node.x])
                case Argmax():
                    env[node.name] = domain.argmax(node, env[node.x])
                case Mul() | Div():
                    env[node.name] = _method(domain, OPS[type(node)], node)(node, env[node.a], env[node.b])
                case Select():
                    env[node.name] = _method(domain, "select", node)(node, env[node.c], env[node.x])
                case Pow() | Exp() | Compare() | ToInt():
                    env[node.name] = _method(domain, OPS[type(node)], node)(node, env[node.x])
                case _:
                    raise InternalError(f"interpret: unknown IR node type {type(node).__name__} "
                                        f"(node {node.name!r})")
    except InputError as e:  # a bad parameter value: say which network (and node) it is in
        src = graph.meta.get("source", "")
        if src and src not in str(e):
            raise type(e)(f"{src}: node {node.name!r}: {e}") from None
        raise
    return env


def _sparse_value(w, params: Mapping[str, np.ndarray]):
    """A SparseSym weight as the concrete `Sparse` for `params[name]` (or its nominal value);
    any other weight as it is."""
    return w.instantiate(params.get(w.name)) if isinstance(w, SparseSym) else w


def _param_value(p, params: Mapping[str, np.ndarray], exact: bool) -> np.ndarray:
    """A dense Const or Sym parameter's value (Fractions when `exact`, else float64); Sparse
    and SparseSym weights go through `float_matvec`/`exact_matvec`, never through here."""
    if isinstance(p, (Sparse, SparseSym)):
        raise InternalError("a sparse parameter was asked for as a dense array")
    if isinstance(p, Const):
        return p.fractions() if exact else p.floats()
    if p.name in params:
        v = np.asarray(params[p.name])
    elif p.nominal is not None:
        v = p.nominal
    else:
        raise InputError(f"symbolic parameter {p.name!r} has no value and no nominal value")
    if v.shape != p.shape:
        raise InputError(f"value for {p.name!r} has shape {v.shape}, expected {p.shape}")
    return Const(v).fractions() if exact else np.asarray(v, dtype=np.float64)


def _check_dim(node: Input, v: np.ndarray):
    if v.shape != (node.dim,):
        raise InputError(f"input {node.name!r} expects {node.dim} values, got shape {v.shape}")


class FloatDomain:
    """float64 numpy evaluation. Symbolic parameters take `params[name]` or their nominal."""

    def __init__(self, params: Mapping[str, np.ndarray] | None = None):
        self.params = params or {}

    def input(self, node, value):
        v = np.asarray(value, dtype=np.float64).reshape(-1)
        _check_dim(node, v)
        return v

    def affine(self, node, x, *more):
        out = None
        for (_, w), v in zip(node.terms(), (x,) + more):
            t = float_matvec(w, v, self.params)
            out = t if out is None else out + t
        return out + _param_value(node.bias, self.params, False)

    def relu(self, node, x):
        return np.maximum(x, 0.0)

    def sigmoid(self, node, x):
        return 0.5 * (1.0 + np.tanh(0.5 * x))  # overflow-free form of 1/(1+exp(-x))

    def argmax(self, node, x):
        return np.array([float(np.argmax(x))])

    def mul(self, node, a, b):
        with np.errstate(over="ignore", invalid="ignore"):
            return a * b

    def div(self, node, a, b):  # outside the domain (b = 0): inf or NaN, as onnxruntime
        with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
            return a / b

    def pow(self, node, x):
        with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
            return np.power(x, float(node.p))

    def exp(self, node, x):
        with np.errstate(over="ignore"):
            return np.exp(x)

    def compare(self, node, x):
        return _CMP[node.op](x, 0.0).astype(np.float64)

    def select(self, node, c, x):
        return np.where(c != 0, x, 0.0)

    def to_int(self, node, x):
        return {"trunc": np.trunc, "floor": np.floor, "ceil": np.ceil}[node.mode](x)


_CMP = {">": np.greater, ">=": np.greater_equal, "<": np.less, "<=": np.less_equal,
        "=": np.equal, "!=": np.not_equal}  # numpy ufuncs: on Fractions too, elementwise


def _obj(vals) -> np.ndarray:
    vals = list(vals)
    out = np.empty(len(vals), dtype=object)
    out[:] = list(vals)
    return out


def _outside(node, i, why) -> InputError:
    return InputError(f"{OPS[type(node)]} {node.name!r}: element {i} {why}: the input lies outside "
                      "the network's domain (see nnsmt.ir: every divisor nonzero, every power "
                      "base where its power is defined)")


def _to_scaled_ints(w: np.ndarray) -> tuple[np.ndarray, int]:
    """float64 array -> (object array of Python ints, e) with w == ints * 2**e exactly."""
    m, ex = np.frexp(w)
    mant = (m * 2.0**53).astype(np.int64)  # exact: m has 53 significant bits
    ex = ex.astype(np.int64) - 53
    nz = mant != 0
    e = int(ex[nz].min()) if nz.any() else 0
    shifts = np.where(nz, ex - e, 0)
    out = np.empty(w.shape, dtype=object)
    out.ravel()[:] = [int(a) << int(s) for a, s in zip(mant.ravel(), shifts.ravel())]
    return out, e


def float_matvec(w, x: np.ndarray, params: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
    """float64 `w @ x` for a Const, Sparse (scipy CSR product over the nonzeros), Sym or
    SparseSym weight (`params[name]` or its nominal value)."""
    w = _sparse_value(w, params or {})
    if isinstance(w, Sparse):
        return w.csr() @ x
    return _param_value(w, params or {}, False) @ x


def _row_sums(prod: np.ndarray, indptr: np.ndarray, zero) -> np.ndarray:
    """Per-row sums of per-nonzero values in CSR order (object arrays: exact); `zero` for an
    empty row."""
    starts = indptr[:-1]
    out = np.empty(len(starts), dtype=object)
    out[:] = [zero] * len(starts)
    nonempty = starts < indptr[1:]
    if nonempty.any():
        out[nonempty] = np.add.reduceat(prod, starts[nonempty])
    return out


def _scaled_vector(x: np.ndarray) -> tuple[np.ndarray, int]:
    """Fractions x -> (object array of ints, den) with x == ints / den exactly."""
    den = lcm(*(f.denominator for f in x)) if x.size else 1
    return np.array([f.numerator * (den // f.denominator) for f in x], dtype=object), den


def _sparse_exact_matvec(w: Sparse, x: np.ndarray) -> np.ndarray:
    """Exact `w @ x` over the nonzeros of `w` (one product per nonzero, never densified)."""
    if not w.nnz:
        return _row_sums(np.zeros(0, dtype=object), w.indptr, Fraction(0))
    if not w.is_float:
        prod = w.data * np.asarray(x, dtype=object)[w.indices]
        return _row_sums(prod, w.indptr, Fraction(0))
    wi, e = _to_scaled_ints(w.data)
    xi, den = _scaled_vector(x)
    acc = _row_sums(wi * xi[w.indices], w.indptr, 0)
    scale = Fraction(2) ** e / den
    out = np.empty(len(acc), dtype=object)
    out[:] = [Fraction(int(a)) * scale for a in acc]
    return out


def exact_matvec(w: Const | Sparse | np.ndarray, x: np.ndarray) -> np.ndarray:
    """Exact `w @ x` for a float64 or Fraction `w` (a Const, a Sparse matrix: over its nonzeros
    only, or a dense array) and a vector of Fractions (object array)."""
    if isinstance(w, Sparse):
        return _sparse_exact_matvec(w, x)
    wv = w.value if isinstance(w, Const) else w
    if wv.dtype != np.float64:
        return np.dot(wv, x) if x.size else np.zeros(wv.shape[0], dtype=object) * Fraction(0)
    # Integer arithmetic is ~20x faster than Fraction arithmetic on big layers.
    wi, e = _to_scaled_ints(wv)
    xi, den = _scaled_vector(x)
    acc = wi.dot(xi) if x.size else np.zeros(wv.shape[0], dtype=object)
    scale = Fraction(2) ** e / den
    out = np.empty(wv.shape[0], dtype=object)
    out[:] = [Fraction(int(a)) * scale for a in acc]
    return out


class ExactDomain:
    """Exact rational evaluation (Fractions). Sigmoid has no rational value: refused."""

    def __init__(self, params: Mapping[str, np.ndarray] | None = None):
        self.params = params or {}

    def input(self, node, value):
        v = np.empty(node.dim, dtype=object)
        vals = list(np.asarray(value, dtype=object).reshape(-1))
        if len(vals) != node.dim:
            raise InputError(f"input {node.name!r} expects {node.dim} values, got {len(vals)}")
        v[:] = [Fraction(a) for a in vals]
        return v

    def affine(self, node, x, *more):
        wx = None
        for (_, w), v in zip(node.terms(), (x,) + more):
            if isinstance(w, Sym):
                t = np.dot(_param_value(w, self.params, True), v)
            else:
                t = exact_matvec(_sparse_value(w, self.params), v)
            wx = t if wx is None else wx + t  # object arrays: exact elementwise sums
        b = _param_value(node.bias, self.params, True)
        out = np.empty(len(wx), dtype=object)
        out[:] = [a + c for a, c in zip(wx, b)]
        return out

    def relu(self, node, x):
        out = np.empty(len(x), dtype=object)
        out[:] = [a if a > 0 else Fraction(0) for a in x]
        return out

    def sigmoid(self, node, x):
        raise UnsupportedError(f"sigmoid {node.name!r} has no exact rational value "
                               "(use evaluate_enclosure: certified rational bounds)")

    def argmax(self, node, x):
        best = max(range(len(x)), key=lambda i: (x[i], -i))  # first index on ties, as numpy
        return np.array([Fraction(best)], dtype=object)

    def mul(self, node, a, b):
        return _obj(u * v for u, v in zip(a, b))

    def div(self, node, a, b):
        for i, v in enumerate(b):
            if v == 0:
                raise _outside(node, i, "divides by 0")
        return _obj(Fraction(u) / v for u, v in zip(a, b))

    def pow(self, node, x):
        p = node.p
        if p.denominator != 1:
            raise UnsupportedError(f"pow {node.name!r}: x ** {p} has no exact rational value "
                                   "(use evaluate_enclosure: certified rational bounds)")
        k = int(p)
        if k < 0:
            for i, v in enumerate(x):
                if v == 0:
                    raise _outside(node, i, f"raises 0 to the power {k}")
        return _obj(Fraction(v) ** k for v in x)

    def exp(self, node, x):
        raise UnsupportedError(f"exp {node.name!r} has no exact rational value "
                               "(use evaluate_enclosure: certified rational bounds)")

    def compare(self, node, x):
        return _obj(Fraction(int(bool(_CMP[node.op](v, 0)))) for v in x)

    def select(self, node, c, x):
        return _obj(v if u != 0 else Fraction(0) for u, v in zip(c, x))

    def to_int(self, node, x):
        f = {"trunc": math.trunc, "floor": math.floor, "ceil": math.ceil}[node.mode]
        return _obj(Fraction(f(v)) for v in x)


def evaluate(graph: Graph, inputs: Mapping[str, object], params=None) -> dict[str, np.ndarray]:
    """float64 value of every node."""
    return interpret(graph, FloatDomain(params), inputs)


def evaluate_exact(graph: Graph, inputs: Mapping[str, object], params=None) -> dict[str, np.ndarray]:
    """Exact Fraction value of every node (inputs may be floats: converted exactly)."""
    return interpret(graph, ExactDomain(params), inputs)


class EnclosureDomain:
    """Certified rational enclosures: a value is a pair (lo, hi) of Fraction object arrays with
    lo <= exact real value <= hi. Affine maps, ReLU and the rational elementwise nodes are exact
    (lo == hi until the first sigmoid, exp or fractional power); a sigmoid or an exp gets
    rational bounds about 2**-bits wide (`nnsmt.sigmoid`), a fractional power exact n-th root
    bounds (`root_bounds`); products, quotients and integer powers of enclosures are exact
    interval products. This is how a witness of such a network is replayed: a strict comparison
    holds if the enclosure decides it, and a witness whose enclosure cannot decide it is not
    certified. Inside the network a Compare or Select must be decided by its input's enclosure
    (else ValidationError); a ToInt is monotone (the ends' integers). An argmax is a point when
    one index is certainly maximal, else the range of candidates."""

    def __init__(self, params: Mapping[str, np.ndarray] | None = None, bits: int = 96):
        self.exact = ExactDomain(params)
        self.bits = bits

    def input(self, node, value):
        v = self.exact.input(node, value)
        return v, v

    def affine(self, node, x, *more):
        pairs = (x,) + more
        if all(lo is hi or all(a == b for a, b in zip(lo, hi)) for lo, hi in pairs):
            v = self.exact.affine(node, *(lo for lo, _ in pairs))
            return v, v
        b = _param_value(node.bias, self.exact.params, True)
        # a value read by several terms (x + W x) gets its coefficients summed first: tighter
        coef: list[dict] = [{} for _ in b]
        env = {}
        for (v, w), iv in zip(node.terms(), pairs):
            env[v] = iv
            for i, cols, row in _exact_rows(w, self.exact.params):
                ci = coef[i]
                for j, c in zip(cols, row):
                    ci[v, j] = ci.get((v, j), 0) + c
        olo, ohi = list(b), list(b)
        for i, ci in enumerate(coef):
            for (v, j), c in ci.items():
                lo, hi = env[v]
                olo[i] += c * (lo[j] if c >= 0 else hi[j])
                ohi[i] += c * (hi[j] if c >= 0 else lo[j])
        out_lo, out_hi = np.empty(len(b), dtype=object), np.empty(len(b), dtype=object)
        out_lo[:], out_hi[:] = olo, ohi
        return out_lo, out_hi

    def relu(self, node, x):
        return self.exact.relu(node, x[0]), self.exact.relu(node, x[1])

    def sigmoid(self, node, x):
        lo = np.empty(len(x[0]), dtype=object)
        hi = np.empty(len(x[0]), dtype=object)
        for i, (a, b) in enumerate(zip(x[0], x[1])):
            lo[i], hi[i] = sigmoid_interval(a, b, self.bits)
        return lo, hi

    def argmax(self, node, x):
        lo, hi = x
        n = len(lo)
        # i can be the (first) argmax unless some j is certainly larger (or equal and earlier)
        cand = [i for i in range(n) if not any(lo[j] > hi[i] or (j < i and lo[j] >= hi[i])
                                               for j in range(n) if j != i)]
        return (np.array([Fraction(min(cand))], dtype=object),
                np.array([Fraction(max(cand))], dtype=object))

    # elementwise nodes: exact where every operand is a point and the node is rational

    def _exact(self, node, *pairs):
        if all(_point(p) for p in pairs):
            v = getattr(self.exact, OPS[type(node)])(node, *(lo for lo, _ in pairs))
            return v, v
        return None

    def mul(self, node, a, b):
        got = self._exact(node, a, b)
        if got:
            return got
        if node.a == node.b:  # a square: the product of an interval with itself is >= 0
            return _pairs(_power(lo, hi, 2) for lo, hi in zip(*a))
        return _pairs(_times(p, q) for p, q in zip(zip(*a), zip(*b)))

    def div(self, node, a, b):
        got = self._exact(node, a, b)
        if got:
            return got
        out = []
        for i, (p, (lo, hi)) in enumerate(zip(zip(*a), zip(*b))):
            out.append(_times(p, _reciprocal(node, i, lo, hi, "the divisor")))
        return _pairs(out)

    def pow(self, node, x):
        p = node.p
        if p.denominator == 1:
            got = self._exact(node, x)
            if got:
                return got
            k = int(p)
            if k >= 0:
                return _pairs(_power(lo, hi, k) for lo, hi in zip(*x))
            return _pairs(_reciprocal(node, i, *_power(lo, hi, -k), f"x ** {-k}")
                          for i, (lo, hi) in enumerate(zip(*x)))
        m, n = p.numerator, p.denominator
        out = []
        for i, (lo, hi) in enumerate(zip(*x)):
            if hi < 0 or m < 0 and hi <= 0:
                raise _outside(node, i, f"raises a negative number to the power {p}")
            if lo < 0 or m < 0 and lo <= 0:
                raise ValidationError(f"pow {node.name!r}: the enclosure [{float(lo):.6g}, "
                                      f"{float(hi):.6g}] of element {i} does not decide whether "
                                      f"x ** {p} is defined (the witness cannot be certified)")
            # x ** (m/n) = (x ** m) ** (1/n): increasing in x ** m, which is monotone in x
            a, b = (lo ** m, hi ** m) if m > 0 else (hi ** m, lo ** m)
            out.append((root_bounds(a, n, self.bits)[0], root_bounds(b, n, self.bits)[1]))
        return _pairs(out)

    def exp(self, node, x):
        out = []
        for lo, hi in zip(*x):
            a = exp_bounds(lo, self.bits)
            out.append((a[0], a[1] if lo == hi else exp_bounds(hi, self.bits)[1]))
        return _pairs(out)

    def compare(self, node, x):
        got = self._exact(node, x)
        if got:
            return got
        out = []
        for i, (lo, hi) in enumerate(zip(*x)):
            v = decide(node.op, lo, hi)
            if v is None:
                raise ValidationError(f"compare {node.name!r}: the enclosure [{float(lo):.6g}, "
                                      f"{float(hi):.6g}] of element {i} does not decide "
                                      f"x {node.op} 0 (the witness cannot be certified)")
            out.append((Fraction(int(v)),) * 2)
        return _pairs(out)

    def select(self, node, c, x):
        got = self._exact(node, c, x)
        if got:
            return got
        out = []
        for i, ((clo, chi), p) in enumerate(zip(zip(*c), zip(*x))):
            v = decide("!=", clo, chi)
            if v is None:
                raise ValidationError(f"select {node.name!r}: the enclosure [{float(clo):.6g}, "
                                      f"{float(chi):.6g}] of condition element {i} does not "
                                      "decide c != 0 (the witness cannot be certified)")
            out.append(p if v else (Fraction(0), Fraction(0)))
        return _pairs(out)

    def to_int(self, node, x):  # monotone: the ends' integers enclose it
        return self.exact.to_int(node, x[0]), self.exact.to_int(node, x[1])


def _point(pair) -> bool:
    lo, hi = pair
    return lo is hi or all(a == b for a, b in zip(lo, hi))


def _pairs(items) -> tuple[np.ndarray, np.ndarray]:
    """Per-element (lo, hi) pairs as the enclosure domain's pair of object arrays."""
    items = list(items)
    return _obj(a for a, _ in items), _obj(b for _, b in items)


def _times(p, q) -> tuple[Fraction, Fraction]:
    """Exact enclosure of the product of two rational intervals."""
    prods = [u * v for u in p for v in q]
    return min(prods), max(prods)


def _power(lo, hi, k: int) -> tuple[Fraction, Fraction]:
    """Exact enclosure of x ** k (k >= 0) over [lo, hi]: even powers dip to 0 across 0."""
    if k == 0:
        return Fraction(1), Fraction(1)
    a, b = Fraction(lo) ** k, Fraction(hi) ** k
    if k % 2 or lo >= 0:
        return min(a, b), max(a, b)
    if hi <= 0:
        return b, a
    return Fraction(0), max(a, b)


def _reciprocal(node, i, lo, hi, what) -> tuple[Fraction, Fraction]:
    if lo == hi == 0:
        raise _outside(node, i, f"has {what} 0")
    if lo <= 0 <= hi:
        raise ValidationError(f"{OPS[type(node)]} {node.name!r}: the enclosure [{float(lo):.6g}, "
                              f"{float(hi):.6g}] of {what} (element {i}) contains 0 (the witness "
                              "cannot be certified)")
    return 1 / Fraction(hi), 1 / Fraction(lo)


def decide(op: str, lo, hi) -> bool | None:
    """Whether `v op 0` holds for every v in [lo, hi] (True), for none (False), or neither
    (None); op is one of nnsmt.ir.COMPARE_OPS."""
    if op == "!=":
        v = decide("=", lo, hi)
        return None if v is None else not v
    if op == "<=":
        return True if hi <= 0 else (False if lo > 0 else None)
    if op == "<":
        return True if hi < 0 else (False if lo >= 0 else None)
    if op == ">=":
        return True if lo >= 0 else (False if hi < 0 else None)
    if op == ">":
        return True if lo > 0 else (False if hi <= 0 else None)
    return True if lo == hi == 0 else (False if lo > 0 or hi < 0 else None)


def _iroot(t: int, n: int) -> int:
    """floor(t ** (1/n)) for an integer t >= 0 (Newton's method from above)."""
    if t < 2:
        return t
    x = 1 << -(-t.bit_length() // n)  # 2 ** ceil(bits / n) > t ** (1/n)
    while True:
        y = ((n - 1) * x + t // x ** (n - 1)) // n
        if y >= x:
            return x
        x = y


def root_bounds(q, n: int, bits: int = 96) -> tuple[Fraction, Fraction]:
    """Rationals lo <= q ** (1/n) <= hi for a rational q >= 0, relative width about 2**-bits
    (lo == hi when the root is that rational). floor(r * 2**k) is the integer n-th root of
    floor(q * 2**(k n)), computed exactly."""
    q = Fraction(q)
    if q < 0:
        raise InternalError(f"root_bounds: {q} is negative")
    if q == 0 or n == 1:
        return q, q
    mag = (q.numerator.bit_length() - q.denominator.bit_length()) // n
    k = bits + 2 - mag
    t = (q.numerator << (k * n)) // q.denominator if k >= 0 else \
        q.numerator // (q.denominator << (-k * n))
    s = _iroot(t, n)
    lo = Fraction(s, 1 << k) if k >= 0 else Fraction(s << -k)
    if lo ** n == q:
        return lo, lo
    return lo, lo + (Fraction(1, 1 << k) if k >= 0 else Fraction(1 << -k))


def _exact_rows(w, params):
    """(row, columns, exact values) of every row of a weight: the nonzeros of a Sparse one."""
    w = _sparse_value(w, params)
    if isinstance(w, Sparse):
        for i in range(w.shape[0]):
            cols, vals = w.row(i)
            yield i, cols.tolist(), [Fraction(v) for v in vals]
        return
    m = _param_value(w, params, True)
    cols = list(range(m.shape[1]))
    for i in range(m.shape[0]):
        yield i, cols, m[i]


def evaluate_enclosure(graph: Graph, inputs: Mapping[str, object], params=None,
                       bits: int = 96) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Certified rational (lo, hi) of every node; exact (lo == hi) for networks whose nodes are
    all `nnsmt.ir.exact_rational` (no sigmoid, exp or fractional power).

    Raises:
        ValidationError: an enclosure does not decide a comparison, a selection, a divisor's
            sign or whether a fractional power is defined.
        InputError: the input lies outside the network's domain (a divisor certainly 0)."""
    return interpret(graph, EnclosureDomain(params, bits), inputs)
