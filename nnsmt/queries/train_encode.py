"""Training encodings: a `TrainProblem` and a subset of its points -> a solver-neutral Script.

Three exact encodings (none loses a solution; `restriction` says so when one would):

* ``seed`` -- the seed paper's, faithfully: every free weight and bias a real variable, every
  point a copy of the network (ReLU as ``ite(a >= 0, a, 0)``, i.e. max(0, a)), the label's logit
  strictly above every other (one output: > 0 for label 1, < 0 for label 0). Symbolic weights
  times symbolic hidden values: nonlinear real arithmetic (QF_NRA) beyond one free layer.
* ``margin`` -- the same terms, but the class constraints ask for a margin of 1 with
  non-strict inequalities whenever that is equivalent (see `_margin_exact`), and interchangeable
  hidden units are ordered by bias (symmetry breaking).
* ``homog`` -- one hidden ReLU layer, a binary task, both layers free, weights unbounded:
  the query becomes *linear* (QF_LRA). The proof is in `encode_homog`'s docstring.

The default (``auto``) is ``homog`` where it applies, else ``margin``. Measured with
bench/train_scaling.py (nnsmt --no-widen rows: the solver at the requested width, CEGIS with
coarse stand-ins and phase hints, 60 s per attempt): on the seed's 12-point grid every 3-h-2
width tried fits, up to 1,538 weights, where the faithful pySMT+Z3 encoding stops at 98; on 50
and 200 random points up to 50 and 26 weights, where the faithful encoding fits none (its
3-1-2 is unsat, its 3-2-2 times out). ``margin`` versus ``seed`` beyond one hidden layer:
``bench/train_scaling.py --deep``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Callable

import numpy as np

from ..encode import TermDomain
from ..errors import UnsupportedError
from ..interpret import interpret
from ..ir import Affine, Relu, Sym
from ..terms import Add, And, Cmp, Dot, Ite, Mul, Num, Or, Script, ScriptBuilder, Var
from .train_widen import narrowable

ENCODINGS = ("auto", "seed", "margin", "homog")
ONE, ZERO, MINUS_ONE = Num(Fraction(1)), Num(Fraction(0)), Num(Fraction(-1))


@dataclass(frozen=True, eq=False)
class Encoded:
    """A script for some points, and how to read trained parameters out of its model.

    `restriction` is empty for an exact encoding (sat and unsat mean the same as for the
    network itself); otherwise it says what an unsat proved. `strict` tells whether the class
    constraints are strict (seed) or margin-1 (equivalent by scaling)."""

    script: Script
    encoding: str
    strict: bool
    decode: Callable[[dict], dict[str, np.ndarray]]
    restriction: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)


def point_name(i: int) -> str:
    """Name of the assertion that point i (0-based row of the data) is classified correctly."""
    return f"pt{i}"


def _frac_array(model: dict, names: np.ndarray) -> np.ndarray:
    out = np.empty(names.shape, dtype=object)
    out.ravel()[:] = [Fraction(model[n]) for n in names.ravel()]
    return out


def homog_applies(problem) -> str | None:
    """None if the homog encoding is exact for this problem, else why it does not apply."""
    g = problem.graph
    kinds = [type(n).__name__ for n in g.nodes]
    if kinds != ["Input", "Affine", "Relu", "Affine"]:
        return "needs exactly one hidden ReLU layer (input -> affine -> relu -> affine)"
    if problem.n_classes != 2:
        return f"needs a binary task (this one has {problem.n_classes} classes)"
    a1, a2 = g.nodes[1], g.nodes[3]
    if g.nodes[2].x != a1.name or a2.x != g.nodes[2].name:
        return "needs the layers chained input -> affine -> relu -> affine"
    if not all(isinstance(p, Sym) for p in (a1.weight, a1.bias, a2.weight, a2.bias)):
        return "needs both layers free (with a frozen layer the margin encoding is already linear)"
    if problem.weight_bound is not None:
        return "needs unbounded weights (rescaling a unit can leave the box)"
    return None


def _margin_exact(problem) -> bool:
    """Margin 1 with >= is equivalent to strict > when the last affine layer is free and
    unbounded: multiplying its weights and bias by c > 0 multiplies every logit difference
    (and a single logit) by c, so any strict solution with smallest margin m > 0 becomes, with
    c = 1/m, a solution with margin >= 1; the converse is immediate."""
    last = [n for n in problem.graph.nodes if isinstance(n, Affine)][-1]
    return problem.weight_bound is None and isinstance(last.weight, Sym) and isinstance(last.bias, Sym)


def _class_term(logits, label: int, binary_single: bool, strict: bool):
    """The label's logit beats the others: strictly, or by a margin of 1."""
    def v(a):
        return Var(a) if isinstance(a, str) else Num(Fraction(a))
    if binary_single:
        y = v(logits[0])
        if strict:
            return Cmp(">", y, ZERO) if label == 1 else Cmp("<", y, ZERO)
        return Cmp(">=", y, ONE) if label == 1 else Cmp("<=", y, MINUS_ONE)
    me = v(logits[label])
    atoms = []
    for j in range(len(logits)):
        if j != label:
            atoms.append(Cmp(">", me, v(logits[j])) if strict else
                         Cmp(">=", Add((me, Mul((MINUS_ONE, v(logits[j]))))), ONE))
    return atoms[0] if len(atoms) == 1 else And(tuple(atoms))


def _symmetry(problem, b: ScriptBuilder, declared: dict) -> list[str]:
    """Order the biases of a free hidden layer whose next layer is free too.

    Exact: permuting the units of such a layer (rows of W_l, b_l; columns of W_{l+1}) leaves the
    network's function unchanged and the box of --weight-bound is the same for every weight,
    so every solution has a permuted twin with sorted biases."""
    notes = []
    for k, _ in narrowable(problem):  # the same layers narrowing may cut (see train_widen)
        n = problem.graph.nodes[k]
        names = declared.get(n.bias.name)
        if names is None or len(names) < 2:
            continue
        b.assert_(f"sym_{n.name}", And(tuple(Cmp("<=", Var(names[j]), Var(names[j + 1]))
                                             for j in range(len(names) - 1))))
        notes.append(f"units of {n.name} ordered by bias (symmetry breaking, exact)")
    return notes


def _coords(problem, xs):
    return (lambda i: problem.data.x[i]) if xs is None else (lambda i: xs.get(i, problem.data.x[i]))


def _hint_atoms(names, active) -> list:
    """Pre-activations `names` (SMT names or numbers) on their hinted side of 0."""
    return [Cmp(">=" if a else "<=", Var(n), ZERO) for n, a in zip(names, active)
            if isinstance(n, str)]


def encode_network(problem, points, encoding: str = "margin", xs=None, hints=None) -> Encoded:
    """The `seed` (strict, faithful) or `margin` encoding of the given points (`xs` may map a
    point to other coordinates: CEGIS's coarse stand-ins)."""
    x_of = _coords(problem, xs)
    strict = encoding == "seed" or not _margin_exact(problem)
    b = ScriptBuilder()
    declared: dict[str, np.ndarray] = {}
    for i in points:
        td = TermDomain(b, prefix=f"p{i}_")
        td.declared_params = declared  # one set of weight variables shared by every copy
        env = interpret(problem.graph, td, {problem.input: x_of(i)})
        b.assert_(point_name(i), _class_term(env[problem.logits], int(problem.data.y[i]),
                                             problem.binary_single, strict))
        if hints is not None:
            atoms = []
            for n in problem.graph.nodes:
                if isinstance(n, Relu) and n.name in hints.pattern:
                    atoms += _hint_atoms(env[n.x], hints.pattern[n.name][i])
            if atoms:
                b.assert_(f"hint_{point_name(i)}", And(tuple(atoms)))
    for _, _, p in problem.graph.params():  # a free parameter no point reached still has a value
        if isinstance(p, Sym) and p.name not in declared:
            td = TermDomain(b)
            td.declared_params = declared
            td.param(p)
    notes = []
    if encoding == "margin":
        notes = [] if hints is not None else _symmetry(problem, b, declared)
        notes.insert(0, "class constraints strict (margin 1 would not be exact here)" if strict
                     else "margin 1 with >= (exact: the free last layer rescales)")
    b.meta.update(_meta(problem, encoding, points))
    syms = {p.name: p for _, _, p in problem.graph.params() if isinstance(p, Sym)}

    def decode(model):
        return {name: _frac_array(model, declared[name]) for name in syms}

    return Encoded(b.build(), encoding, strict, decode, "", tuple(notes))


def encode_homog(problem, points, xs=None, hints=None, order_biases: bool = False) -> Encoded:
    """One hidden ReLU layer, binary task: a linear (QF_LRA) encoding that loses no solution.

    Write the decision function as s(x) = c + sum_j v_j relu(w_j . x + b_j) (one output: the
    logit; two logits: their difference, since only it decides the class). Claims:

    1. Positive homogeneity: relu(t z) = t relu(z) for t > 0, so unit j with v_j != 0 can take
       (|v_j| w_j, |v_j| b_j) as incoming weights and sign(v_j) as outgoing weight: s unchanged.
       A unit with v_j = 0 adds nothing; give it w_j = 0, b_j = 0, v_j = +1 (relu(0) = 0).
       So WLOG every v_j is +1 or -1 (`sgn_j`, a real asserted to be 1 or -1).
    2. Permuting units does not change s, so WLOG the +1 units come first (`sym_sgn`) and,
       within a sign, biases ascend (`sym_bias`; off by default: Z3 was slower with it).
    3. Scaling every w_j, b_j and c by t > 0 scales s by t, so strict s > 0 / s < 0 on finitely
       many points is equivalent to s >= 1 / s <= -1 (take t = 1 / min |s(x_i)|).

    With x_i concrete, w_j . x_i + b_j is linear in the unknowns, relu is an ite of it, and
    `ite(sgn_j > 0, r, -r)` selects the sign without a product: the query is linear.
    Conversely every model is a network (v_j = sgn_j), so sat and unsat are exact.
    """
    why = homog_applies(problem)
    if why:
        raise UnsupportedError(f"encoding homog does not apply: it {why}")
    g = problem.graph
    a1, r1, a2 = g.nodes[1], g.nodes[2], g.nodes[3]
    h, d = a1.weight.shape
    b = ScriptBuilder()
    W = a1.weight.var_names()
    bias = a1.bias.var_names()
    for n in list(W.ravel()) + list(bias):
        b.declare(n)
    sgn = np.array([f"sgn_{j}" for j in range(h)], dtype=object)
    for n in sgn:
        b.declare(n)
    c = b.declare("c_out")
    for j in range(h):
        b.assert_(f"sgnval_{j}", Or((Cmp("=", Var(sgn[j]), ONE), Cmp("=", Var(sgn[j]), MINUS_ONE))))
    if hints is not None and hints.signs is not None:  # a hinted query: signs as the float fit
        b.assert_("hint_sgn", And(tuple(Cmp("=", Var(sgn[j]), ONE if hints.signs[j] > 0 else MINUS_ONE)
                                        for j in range(h))))
    elif h > 1:
        b.assert_("sym_sgn", And(tuple(Cmp(">=", Var(sgn[j]), Var(sgn[j + 1])) for j in range(h - 1))))
        if order_biases:  # within a sign group: b_j <= b_{j+1} (sgn_j = sgn_{j+1} -> ...)
            b.assert_("sym_bias", And(tuple(
                Or((Cmp(">", Var(sgn[j]), Var(sgn[j + 1])), Cmp("<=", Var(bias[j]), Var(bias[j + 1]))))
                for j in range(h - 1))))
    x_of, Y = _coords(problem, xs), problem.data.y
    if hints is not None and r1.name in hints.pattern:
        order_biases = False
    for i in points:
        contrib = [c]
        for j in range(h):
            z = b.define(f"p{i}_{a1.name}_{j}", Dot(W[j], x_of(i), Var(bias[j])))
            r = b.define(f"p{i}_{r1.name}_{j}", Ite(Cmp(">=", z, ZERO), z, ZERO))
            contrib.append(Ite(Cmp(">", Var(sgn[j]), ZERO), r, Mul((MINUS_ONE, r))))
        s = b.define(f"p{i}_s", Add(tuple(contrib)))
        if hints is not None and r1.name in hints.pattern:
            b.assert_(f"hint_{point_name(i)}", And(tuple(_hint_atoms(
                [f"p{i}_{a1.name}_{j}" for j in range(h)], hints.pattern[r1.name][i]))))
        b.assert_(point_name(i), Cmp(">=", s, ONE) if Y[i] == 1 else Cmp("<=", s, MINUS_ONE))
    b.meta.update(_meta(problem, "homog", points))
    k = a2.weight.shape[0]

    def decode(model):
        v = _frac_array(model, sgn)
        cv = Fraction(model["c_out"])
        if k == 1:
            w2, b2 = v.reshape(1, h), np.array([cv], dtype=object)
        else:  # two logits: class 1 iff y1 - y0 = s > 0
            w2 = np.empty((2, h), dtype=object)
            w2[0, :] = Fraction(0)
            w2[1, :] = v
            b2 = np.array([Fraction(0), cv], dtype=object)
        return {a1.weight.name: _frac_array(model, W), a1.bias.name: _frac_array(model, bias),
                a2.weight.name: w2, a2.bias.name: b2}

    notes = ("outgoing weights fixed to +1/-1 by positive homogeneity (exact)",
             "margin 1 with >= (exact by scaling)", "units ordered by sign and bias (exact)")
    return Encoded(b.build(), "homog", False, decode, "", notes)


def _meta(problem, encoding, points):
    return {"query": "train", "network": problem.graph.meta.get("source", ""),
            "data": problem.data.source, "encoding": encoding, "points": len(points)}


def resolve_encoding(problem, encoding: str | None) -> str:
    """The concrete encoding for a request (None/"auto": homog where it applies, else margin)."""
    if encoding in (None, "auto"):
        return "homog" if homog_applies(problem) is None else "margin"
    if encoding not in ENCODINGS:
        raise UnsupportedError(f"unknown training encoding {encoding!r}; choose from {', '.join(ENCODINGS)}")
    return encoding


def encode(problem, points, encoding: str | None = None, xs=None, hints=None) -> Encoded:
    """Encode the given points (indices into problem.data) with the requested encoding;
    `xs` optionally maps a point index to the coordinates to use instead of its own."""
    enc = resolve_encoding(problem, encoding)
    if enc == "homog":
        return encode_homog(problem, points, xs, hints)
    return encode_network(problem, points, enc, xs, hints)
