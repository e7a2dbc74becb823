"""Encoding choices, in one place: how IR values become solver-neutral terms.

`TermDomain` is a domain of the interpretation loop: it adds one definition per element of
every IR value to a `ScriptBuilder`. A value is either numeric (a concrete data point: an exact
float64 or Fraction array) or symbolic (an array of SMT names). ReLU is `ite(a >= 0, a, 0)`;
argmax is an `ite` chain picking the first maximal index, as numpy does. An affine value is one
`Dot` per output element over every term's input: a `Sparse` weight contributes only its row's
nonzeros (values and the matching input names), so a convolution costs its nonzeros, not
out x in; concrete terms (a data point times constant weights) fold exactly into the constant.
A `SparseSym` weight declares one variable per parameter (boxed, `box_<name>`) and puts it at
every stored entry tied to it: a row is the variables times the input names at its entries
(bilinear), or a linear sum over the variables when the input is a data point; entries tied
to -1 are constants as in a `Sparse` weight.

The elementwise nodes (`nnsmt.ir`), one definition per element:
- mul `(* a b)`; div `(/ a b)` with the network's domain asserted, `dom_<node>`: every
  `b != 0` (SMT-LIB's `/` is total but unspecified at 0: without it a solver could choose
  `a / 0`); both are "nonlinear" unless an operand is a number.
- pow with an integer exponent k: `(* x ... x)` (k factors; 1 for k = 0), `(/ 1 (* x ...))` for
  k < 0 with `x != 0` in `dom_<node>`; with a fractional exponent m/n a declared auxiliary `y`
  (`Script.aux`) defined by `pow_<node>`: `y >= 0 and y^n = x^m` (m > 0) or `y > 0 and
  y^n x^-m = 1` (m < 0), and `dom_<node>`: `x >= 0` (resp. `x > 0`).
- exp `(exp x)` ("exp": Z3 has none), or with `exp="pwl"` a declared variable held by a sound
  piecewise-linear relaxation (`nnsmt.sigmoid.encode_exp`: tangents below, chords above, over the
  input's `sigmoid_bounds`); compare `(ite (op x 0) 1 0)`; select
  `(ite (= c 0) 0 x)`; to_int through `Floor` = `(to_real (to_int .))` ("int"): floor, ceil as
  `-floor(-x)`, trunc as `(ite (>= x 0) floor ceil)`.
Concrete operands (a data point) fold exactly, except exp and fractional powers, whose values
are defined by the same terms over numbers.

Encodings of ReLU (`encoding=`):
- `plain`: every ReLU is `ite(a >= 0, a, 0)`.
- `bounded`: given sound pre-activation bounds [l, u] (`nnsmt.bounds`) for the region the query
  constrains the inputs to, a ReLU with u <= 0 is the constant 0, one with l >= 0 is the identity,
  and only the others are `ite`s. `lemmas` adds, per unstable neuron: "bounds" (default) its
  bounds as an asserted lemma (`bnd_<name>`, not a global big-M); "triangle" also the triangle
  relaxation `h >= 0, h >= a, (u - l) h <= u (a - l)` (`tri_<name>`); "none" nothing. All are
  implied by the plain encoding on that region, so both encodings have the same models there:
  an unsat is the same proof. (Lemmas can slow a solver down: on the 64-input digits networks
  Z3 and cvc5 stop finding easy models once dense bound rows are asserted; measure.)
"""

from __future__ import annotations

from fractions import Fraction
from typing import Callable, Mapping

import numpy as np

from .errors import UnsupportedError
from .interpret import ExactDomain, exact_matvec, interpret
from .ir import OPS, Affine, Argmax, Const, Graph, Input, Relu, Sigmoid, Sparse, SparseSym
from .sigmoid import encode_exp, encode_sigmoid
from .terms import (Add, And, Cmp, Div, Dot, Exp, Floor, Ite, Mul, Not, Num, ScriptBuilder, Var,
                    is_symbolic)

ENCODINGS = ("plain", "bounded")
LEMMAS = ("none", "bounds", "triangle")


def num(q) -> Num:
    return Num(Fraction(q))


def _names(n: int, base: str) -> np.ndarray:
    return np.array([f"{base}_{i}" for i in range(n)], dtype=object)


class TermDomain:
    """Build terms for every IR value into `builder`.

    `names(node_name, dim)` may return SMT names for a value (e.g. X_i / Y_j); by default
    element i of value v is `{prefix}{v}_{i}`. `prefix` lets one network be instantiated
    several times in one script (one copy per data point in training).
    """

    def __init__(self, builder: ScriptBuilder, *, prefix: str = "",
                 names: Callable[[str, int], list[str] | None] | None = None,
                 encoding: str = "plain", bounds: Mapping | None = None, lemmas: str = "bounds",
                 sigmoid: str = "exp", sigmoid_bounds: Mapping | None = None,
                 sigmoid_extra: Mapping | None = None, exp: str = "exp"):
        """`bounds` (value name -> `nnsmt.bounds.Interval`) is used by encoding="bounded":
        sound bounds over the inputs the query allows (a ReLU without bounds stays an ite)."""
        if encoding not in ENCODINGS:
            raise UnsupportedError(f"unknown encoding {encoding!r}; choose from {', '.join(ENCODINGS)}")
        self.b, self.prefix, self.custom, self.encoding = builder, prefix, names, encoding
        self.bounds = bounds if encoding == "bounded" else None
        if lemmas not in LEMMAS:
            raise UnsupportedError(f"unknown lemmas {lemmas!r}; choose from {', '.join(LEMMAS)}")
        self.lemmas = lemmas
        # sigmoid encoding (nnsmt.sigmoid): "exp" exact, or "pwl" a sound relaxation that needs
        # sigmoid_bounds (value name -> Interval of the pre-activation) and takes refinement
        # points sigmoid_extra ((prefix + node name, neuron) -> pre-activation values)
        self.sigmoid_mode, self.sigmoid_bounds = sigmoid, sigmoid_bounds
        self.sigmoid_extra = sigmoid_extra or {}
        # exp nodes: "exp" exact, or "pwl"/"pwl:N" the relaxation, with the same bounds and
        # refinement points as sigmoids (opt-in: a query that relaxes exp must certify its sat)
        self.exp_mode = exp
        self.declared_params: dict[str, np.ndarray] = {}

    def _value_names(self, node_name: str, dim: int) -> np.ndarray:
        custom = self.custom(node_name, dim) if self.custom else None
        if custom is not None:
            return np.array(custom, dtype=object)
        return _names(dim, self.prefix + node_name)

    def param(self, p) -> np.ndarray:
        """Numeric array for a Const; declared variable names for a Sym or a SparseSym (declared
        once, boxed; a SparseSym's are one per parameter, not per stored entry)."""
        if isinstance(p, Const):
            return p.value
        if p.name not in self.declared_params:
            names = p.var_names()
            for n in names.ravel():
                self.b.declare(n)
            atoms = []
            for bound, op in ((p.lo, "<="), (p.hi, ">=")):
                if bound is not None:
                    atoms += [Cmp(op, num(v), Var(n)) for v, n in zip(bound.ravel(), names.ravel())]
            if atoms:
                self.b.assert_(f"box_{p.name}", And(tuple(atoms)))
            self.declared_params[p.name] = names
        return self.declared_params[p.name]

    def input(self, node: Input, value):
        if value is not None:  # concrete data
            return Const(np.asarray(value).reshape(-1)).value
        names = self._value_names(node.name, node.dim)
        for n in names:
            self.b.declare(n)
        return names

    def affine(self, node: Affine, x, *more):
        if not more and not isinstance(node.weight, (Sparse, SparseSym)):
            return self._dense_affine(node, x)
        bias = self.param(node.bias)
        terms = [(w if isinstance(w, (Sparse, SparseSym)) else self.param(w), v)
                 for (_, w), v in zip(node.terms(), (x,) + more)]
        m = node.bias.shape[0]
        # the exactly folded constant: numeric bias plus every all-numeric term
        const = np.empty(m, dtype=object)
        const[:] = [Fraction(0)] * m if is_symbolic(bias) else [Fraction(c) for c in bias]
        live = []
        for w, v in terms:
            if isinstance(w, SparseSym):
                self.param(w)
                fixed = _fixed_part(w)  # the entries tied to -1 fold like a Sparse weight's
                if fixed is not None and not is_symbolic(v):
                    const = const + exact_matvec(fixed, Const(v).fractions())
                live.append((w, v))
                continue
            if isinstance(w, Sparse) or not is_symbolic(w):
                if not is_symbolic(v):
                    const = const + exact_matvec(w, Const(v).fractions())
                    continue
            live.append((w, v))
        if not live and not is_symbolic(bias):
            return Const(const).value
        out = self._value_names(node.name, m)
        for i, name in enumerate(out):
            coefs, names, bilinear = [], [], []
            for w, v in live:
                if isinstance(w, SparseSym):  # variables at row i's entries (constants at -1)
                    fc, fv, vc, vn = _sym_row(w, self.declared_params[w.name], i)
                    if not is_symbolic(v):
                        if len(vc):
                            coefs.append(v[vc])
                            names.append(vn)
                        continue
                    if len(fc):
                        coefs.append(fv)
                        names.append(v[fc])
                    if len(vc):
                        bilinear.append(Dot(vn, v[vc]))
                elif isinstance(w, Sparse):  # numeric nonzeros of row i times input names
                    cols, vals = w.row(i)
                    coefs.append(vals)
                    names.append(v[cols])
                elif not is_symbolic(w):  # dense numeric row times input names
                    coefs.append(w[i])
                    names.append(v)
                elif not is_symbolic(v):  # weight variables times numeric inputs
                    coefs.append(v)
                    names.append(w[i])
                else:
                    bilinear.append(Dot(w[i], v))
            c = const[i]
            if is_symbolic(bias):
                b = Var(bias[i]) if c == 0 else Add((Var(bias[i]), num(c)))
            else:
                b = num(c)
            if coefs or not bilinear:
                w_all = np.concatenate(coefs) if coefs else np.zeros(0)
                x_all = np.concatenate(names) if names else np.zeros(0, dtype=object)
                term = Dot(w_all, x_all, b)
                if bilinear:
                    term = Add((term,) + tuple(bilinear))
            else:
                first = bilinear[0]
                term = Dot(first.w, first.x, b)
                if len(bilinear) > 1:
                    term = Add((term,) + tuple(bilinear[1:]))
            self.b.define(name, term)
        return out

    def _dense_affine(self, node: Affine, x):
        """One dense weight (the encoding of every chain network, unchanged)."""
        w, bias = self.param(node.weight), self.param(node.bias)
        if not is_symbolic(w) and not is_symbolic(x) and not is_symbolic(bias):
            wx = exact_matvec(w, Const(x).fractions())
            return Const(np.array([a + Fraction(c) for a, c in zip(wx, bias)], dtype=object)).value
        out = self._value_names(node.name, w.shape[0])
        sym_b = is_symbolic(bias)
        for i, name in enumerate(out):
            b = Var(bias[i]) if sym_b else num(bias[i])
            self.b.define(name, Dot(w[i], x, b))
        return out

    def relu(self, node: Relu, x):
        if not is_symbolic(x):
            return Const(np.array([max(Fraction(v), Fraction(0)) for v in x], dtype=object)).value
        out = self._value_names(node.name, len(x))
        zero = Num(Fraction(0))
        iv = self.bounds.get(node.x) if self.bounds is not None else None
        if iv is None:
            for o, a in zip(out, x):
                self.b.define(o, Ite(Cmp(">=", Var(a), zero), Var(a), zero))
            return out
        for o, a, l, u in zip(out, x, iv.lo.tolist(), iv.hi.tolist()):
            if u <= 0:  # stably inactive on the region: relu(a) = 0
                self.b.define(o, zero)
            elif l >= 0:  # stably active: relu(a) = a
                self.b.define(o, Var(a))
            else:
                self.b.define(o, Ite(Cmp(">=", Var(a), zero), Var(a), zero))
                self._relu_lemmas(o, a, l, u)
        return out

    def _relu_lemmas(self, o: str, a: str, l: float, u: float):
        """Bounds of an unstable pre-activation and the triangle relaxation, both implied."""
        if self.lemmas == "none":
            return
        atoms = []
        if l > -np.inf:
            atoms.append(Cmp(">=", Var(a), num(l)))
        if u < np.inf:
            atoms.append(Cmp("<=", Var(a), num(u)))
        if atoms:
            self.b.assert_(f"bnd_{o}", And(tuple(atoms)) if len(atoms) > 1 else atoms[0])
        if self.lemmas == "triangle" and np.isfinite(l) and np.isfinite(u):
            # (u - l) * h <= u * (a - l): the chord through (l, 0) and (u, u)
            chord = Cmp("<=", Mul((num(Fraction(u) - Fraction(l)), Var(o))),
                        Mul((num(u), Add((Var(a), num(-Fraction(l)))))))
            self.b.assert_(f"tri_{o}", And((Cmp(">=", Var(o), Num(Fraction(0))),
                                            Cmp(">=", Var(o), Var(a)), chord)))

    def sigmoid(self, node: Sigmoid, x):
        return encode_sigmoid(self, node, x)

    def argmax(self, node: Argmax, x):
        if not is_symbolic(x):
            xs = [Fraction(v) for v in x]
            return np.array([Fraction(max(range(len(xs)), key=lambda i: (xs[i], -i)))], dtype=object)
        n = len(x)
        term = num(n - 1)
        for i in reversed(range(n - 1)):  # i wins iff x_i > every earlier, >= every later
            conds = [Cmp(">", Var(x[i]), Var(x[j])) for j in range(i)]
            conds += [Cmp(">=", Var(x[i]), Var(x[j])) for j in range(i + 1, n)]
            term = Ite(And(tuple(conds)) if len(conds) > 1 else conds[0], num(i), term)
        out = self._value_names(node.name, 1)
        self.b.define(out[0], term)
        return out

    # -- the elementwise nodes --

    def _exact_or_none(self, node, *xs):
        """The exact value when every operand is numeric (a concrete data point), else None."""
        if any(is_symbolic(x) for x in xs):
            return None
        vals = [Const(np.asarray(x)).fractions() for x in xs]
        return Const(getattr(ExactDomain(), OPS[type(node)])(node, *vals)).value

    def _define_each(self, node, make, *xs):
        """Define element i of the node's value as make(term of element i of each operand)."""
        out = self._value_names(node.name, len(xs[-1]))
        args = [[Var(v) for v in x] if is_symbolic(x) else [num(v) for v in x] for x in xs]
        for o, *ts in zip(out, *args):
            self.b.define(o, make(*ts))
        return out, args

    def _domain(self, node, atoms):
        """Assert the network's domain at this node (`dom_<node>`)."""
        atoms = [a for a in atoms if a is not None]
        if atoms:
            self.b.assert_(f"dom_{self.prefix}{node.name}", And(tuple(atoms)) if len(atoms) > 1 else atoms[0])

    def mul(self, node, a, b):
        got = self._exact_or_none(node, a, b)
        if got is not None:
            return got
        return self._define_each(node, lambda p, q: Mul((p, q)), a, b)[0]

    def div(self, node, a, b):
        got = self._exact_or_none(node, a, b)  # refuses a concrete 0 divisor, naming the node
        if got is not None:
            return got
        if not is_symbolic(b):
            ExactDomain().div(node, np.ones(len(b), dtype=object), Const(np.asarray(b)).fractions())
        out, (_, dens) = self._define_each(node, lambda p, q: Div(p, q), a, b)
        self._domain(node, [_nonzero(t) for t in dens])
        return out

    def pow(self, node, x):
        p = node.p
        if p.denominator == 1:
            got = self._exact_or_none(node, x)
            if got is not None:
                return got
            k = int(p)
            out, (xs,) = self._define_each(node, lambda t: _power(t, k), x)
            if k < 0:
                self._domain(node, [_nonzero(t) for t in xs])
            return out
        m, n = p.numerator, p.denominator
        out = self._value_names(node.name, len(x))
        xs = [Var(v) for v in x] if is_symbolic(x) else [num(v) for v in x]
        zero, one = num(0), num(1)
        defs, dom = [], []
        for o, t in zip(out, xs):
            y = self.b.declare(o, aux=True)
            if m > 0:  # y >= 0, y^n = x^m, on x >= 0
                defs += [Cmp(">=", y, zero), Cmp("=", _power(y, n), _power(t, m))]
                dom.append(Cmp(">=", t, zero))
            else:  # y > 0, y^n x^-m = 1, on x > 0
                defs += [Cmp(">", y, zero), Cmp("=", Mul((_power(y, n), _power(t, -m))), one)]
                dom.append(Cmp(">", t, zero))
        self._domain(node, dom)
        self.b.assert_(f"pow_{self.prefix}{node.name}", And(tuple(defs)))
        return out

    def exp(self, node, x):
        if self.exp_mode != "exp":
            return encode_exp(self, node, x)
        return self._define_each(node, Exp, x)[0]

    def compare(self, node, x):
        got = self._exact_or_none(node, x)
        if got is not None:
            return got
        zero, one = num(0), num(1)
        if node.op == "!=":
            return self._define_each(node, lambda t: Ite(Cmp("=", t, zero), zero, one), x)[0]
        return self._define_each(node, lambda t: Ite(Cmp(node.op, t, zero), one, zero), x)[0]

    def select(self, node, c, x):
        got = self._exact_or_none(node, c, x)
        if got is not None:
            return got
        zero = num(0)
        return self._define_each(node, lambda u, t: Ite(Cmp("=", u, zero), zero, t), c, x)[0]

    def to_int(self, node, x):
        got = self._exact_or_none(node, x)
        if got is not None:
            return got
        return self._define_each(node, lambda t: _round(t, node.mode), x)[0]


def _nonzero(t):
    """`t != 0` as a term; None for a nonzero number (nothing to assert)."""
    if isinstance(t, Num):
        return None
    return Not(Cmp("=", t, Num(Fraction(0))))


def _power(t, k: int):
    """t ** k for an integer k: a product of |k| factors, its reciprocal for k < 0."""
    if k == 0:
        return Num(Fraction(1))
    prod = t if abs(k) == 1 else Mul((t,) * abs(k))
    return prod if k > 0 else Div(Num(Fraction(1)), prod)


def _neg(t):
    return Mul((Num(Fraction(-1)), t))


def _round(t, mode: str):
    """floor, ceil (-floor(-t)) or trunc (toward zero) of a term, as a real."""
    if mode == "floor":
        return Floor(t)
    ceil = _neg(Floor(_neg(t)))
    if mode == "ceil":
        return ceil
    return Ite(Cmp(">=", t, Num(Fraction(0))), Floor(t), ceil)


def _fixed_part(w: SparseSym) -> Sparse | None:
    """The constant entries of a SparseSym (tied to -1) as a Sparse, or None without any."""
    P = w.pattern
    fixed = P.tie < 0
    if not fixed.any():
        return None
    rows = np.repeat(np.arange(P.shape[0]), np.diff(P.indptr))[fixed]
    indptr = np.zeros(P.shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=P.shape[0]), out=indptr[1:])
    return Sparse(P.shape, indptr, P.indices[fixed], P.data[fixed])


def _sym_row(w: SparseSym, var_names: np.ndarray, i: int):
    """Row i of a SparseSym: (columns, values) of its constant entries and (columns, variable
    names) of its symbolic ones."""
    P = w.pattern
    a, b = P.indptr[i], P.indptr[i + 1]
    cols, tie = P.indices[a:b], P.tie[a:b]
    fixed = tie < 0
    return cols[fixed], P.data[a:b][fixed], cols[~fixed], var_names[tie[~fixed]]


def encode_graph(graph: Graph, builder: ScriptBuilder, inputs: Mapping[str, object] | None = None,
                 **kw) -> dict[str, np.ndarray]:
    """Encode `graph` into `builder`; inputs absent from `inputs` become declared variables.
    Returns each value's names (symbolic) or exact numbers (concrete)."""
    inputs = dict(inputs or {})
    for n in graph.inputs:
        inputs.setdefault(n.name, None)
    return interpret(graph, TermDomain(builder, **kw), inputs)
