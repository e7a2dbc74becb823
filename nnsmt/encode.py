"""Encoding choices, in one place: how IR values become solver-neutral terms.

`TermDomain` is a domain of the interpretation loop: it adds one definition per element of
every IR value to a `ScriptBuilder`. A value is either numeric (a concrete data point: an exact
float64 or Fraction array) or symbolic (an array of SMT names). ReLU is `ite(a >= 0, a, 0)`;
argmax is an `ite` chain picking the first maximal index, as numpy does.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Callable, Mapping

import numpy as np

from .errors import UnsupportedError
from .interpret import exact_matvec, interpret
from .ir import Affine, Argmax, Const, Graph, Input, Relu, Sigmoid, Sym
from .terms import Add, And, Bool, Cmp, Dot, Ite, Num, ScriptBuilder, Var, is_symbolic

ENCODINGS = ("plain",)


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
                 encoding: str = "plain"):
        if encoding not in ENCODINGS:
            raise UnsupportedError(f"unknown encoding {encoding!r}; choose from {', '.join(ENCODINGS)}")
        self.b, self.prefix, self.custom, self.encoding = builder, prefix, names, encoding
        self.declared_params: dict[str, np.ndarray] = {}

    def _value_names(self, node_name: str, dim: int) -> np.ndarray:
        custom = self.custom(node_name, dim) if self.custom else None
        if custom is not None:
            return np.array(custom, dtype=object)
        return _names(dim, self.prefix + node_name)

    def param(self, p) -> np.ndarray:
        """Numeric array for a Const; declared variable names for a Sym (declared once, boxed)."""
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

    def affine(self, node: Affine, x):
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
        for o, a in zip(out, x):
            self.b.define(o, Ite(Cmp(">=", Var(a), zero), Var(a), zero))
        return out

    def sigmoid(self, node: Sigmoid, x):
        raise UnsupportedError(f"sigmoid node {node.name!r}: this query cannot encode sigmoid yet "
                               "(exact sigmoid needs exp; see the robustness queries)")

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


def encode_graph(graph: Graph, builder: ScriptBuilder, inputs: Mapping[str, object] | None = None,
                 **kw) -> dict[str, np.ndarray]:
    """Encode `graph` into `builder`; inputs absent from `inputs` become declared variables.
    Returns each value's names (symbolic) or exact numbers (concrete)."""
    inputs = dict(inputs or {})
    for n in graph.inputs:
        inputs.setdefault(n.name, None)
    return interpret(graph, TermDomain(builder, **kw), inputs)
