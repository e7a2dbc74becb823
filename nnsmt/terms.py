"""Solver-neutral terms and scripts: what every backend translates.

A `Script` holds real declarations, one definition per IR value element, named assertions and
an optional objective. Dense layers stay matrices: a `Dot` term is one row of an affine map over
numpy arrays, so a 256x784 layer is 256 terms, not 200,000.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Iterator, NoReturn, Union

import numpy as np

from .errors import InputError, InternalError


@dataclass(frozen=True, slots=True)
class Var:
    name: str


@dataclass(frozen=True, slots=True)
class Num:
    value: Fraction

    def __post_init__(self):
        object.__setattr__(self, "value", Fraction(self.value))


@dataclass(frozen=True, slots=True)
class Add:
    args: tuple


@dataclass(frozen=True, slots=True)
class Mul:
    args: tuple


@dataclass(frozen=True, slots=True)
class Div:
    """`num / den` (real division; a non-constant `den` makes the term nonlinear)."""

    num: object
    den: object


@dataclass(frozen=True, slots=True, eq=False)
class Dot:
    """`bias + sum_i w[i] * x[i]`. Each of w, x is a 1-D numeric array (float64 or object of
    Fraction, exact) or an object array of variable names; bias is a Term or None.
    Zero numeric coefficients contribute nothing."""

    w: np.ndarray
    x: np.ndarray
    bias: object = None


@dataclass(frozen=True, slots=True)
class Ite:
    cond: object
    then: object
    other: object


@dataclass(frozen=True, slots=True)
class Exp:
    arg: object


@dataclass(frozen=True, slots=True)
class Floor:
    """The greatest integer <= `arg`, as a real: SMT-LIB's `(to_real (to_int arg))` (mixed
    integer/real arithmetic: the "int" feature)."""

    arg: object


CMP_OPS = ("<=", "<", ">=", ">", "=")


@dataclass(frozen=True, slots=True)
class Cmp:
    op: str
    lhs: object
    rhs: object

    def __post_init__(self):
        if self.op not in CMP_OPS:
            raise InternalError(f"comparison {self.op!r} is not one of {', '.join(CMP_OPS)}")


@dataclass(frozen=True, slots=True)
class And:
    args: tuple


@dataclass(frozen=True, slots=True)
class Or:
    args: tuple


@dataclass(frozen=True, slots=True)
class Not:
    arg: object


@dataclass(frozen=True, slots=True)
class Bool:
    value: bool


Term = Union[Var, Num, Add, Mul, Div, Dot, Ite, Exp, Floor, Cmp, And, Or, Not, Bool]
TERMS: tuple[type, ...] = (Var, Num, Add, Mul, Div, Dot, Ite, Exp, Floor, Cmp, And, Or, Not, Bool)
"""Every term class. A walker handles each of them explicitly and calls `unknown_term` for
anything else (tests/test_terms.py checks every walker against this module's classes)."""


def unknown_term(t, where: str) -> NoReturn:
    """Raise the internal error of a walker (`where`) meeting something that is not a term."""
    raise InternalError(f"{where}: unknown term type {type(t).__name__} ({t!r}); a term is one "
                        f"of {', '.join(c.__name__ for c in TERMS)}")


def children(t) -> tuple:
    """The direct sub-terms of `t`. A `Dot`'s arrays hold names and numbers, not terms: its
    only sub-term is the bias (see `variables` for its names)."""
    match t:
        case Var() | Num() | Bool():
            return ()
        case Add() | Mul() | And() | Or():
            return tuple(t.args)
        case Div():
            return (t.num, t.den)
        case Dot():
            return () if t.bias is None else (t.bias,)
        case Ite():
            return (t.cond, t.then, t.other)
        case Exp() | Floor() | Not():
            return (t.arg,)
        case Cmp():
            return (t.lhs, t.rhs)
    unknown_term(t, "nnsmt.terms.children")


def subterms(t) -> Iterator:
    """`t` and every term below it, parents before children (iterative: no recursion limit)."""
    stack = [t]
    while stack:
        t = stack.pop()
        yield t
        stack.extend(reversed(children(t)))


def is_symbolic(a: np.ndarray) -> bool:
    """True for an array of variable names (as used in `Dot`)."""
    return a.dtype == object and a.size > 0 and isinstance(a.flat[0], str)


def variables(t) -> set[str]:
    """Names of the variables a term reads: `Var`s and the symbolic arrays of `Dot`s."""
    out: set[str] = set()
    for s in subterms(t):
        match s:
            case Var():
                out.add(s.name)
            case Dot():
                for a in (s.w, s.x):
                    if is_symbolic(a):
                        out.update(a.tolist())
    return out


def term_features(t) -> set[str]:
    """Features a term needs: "nonlinear" (product of two non-constants), "exp", "int"
    (rounding to an integer: mixed integer/real arithmetic)."""
    out: set[str] = set()
    for s in subterms(t):
        match s:
            case Dot():
                if is_symbolic(s.w) and is_symbolic(s.x):
                    out.add("nonlinear")
            case Mul():
                if sum(not isinstance(a, Num) for a in s.args) > 1:
                    out.add("nonlinear")
            case Div():
                if not isinstance(s.den, Num):
                    out.add("nonlinear")
            case Exp():
                out.add("exp")
            case Floor():
                out.add("int")
    return out


@dataclass(frozen=True, slots=True)
class Objective:
    sense: str  # "max" | "min"
    term: object


@dataclass(frozen=True, eq=False)
class Script:
    """A complete query. Names are SMT-LIB simple symbols; `decls` are free reals (the model
    gives their values), `defs` are (name, term) in dependency order, `asserts` are
    (name, boolean term). `meta` records what the names mean (e.g. the input/output symbols)."""

    decls: tuple[str, ...]
    defs: tuple[tuple[str, object], ...]
    asserts: tuple[tuple[str, object], ...]
    features: frozenset[str] = frozenset()
    objective: Objective | None = None
    meta: dict = field(default_factory=dict)

    aux: tuple[str, ...] = ()  # declared names defined by assertions (e.g. a fractional
    # power's root): not inputs, and a backend leaves an irrational model value of one out

    @property
    def logic(self) -> str:
        f = self.features
        if "exp" in f:
            return "ALL" if "int" in f else "QF_NRAT"
        if "nonlinear" in f:
            return "QF_NIRA" if "int" in f else "QF_NRA"
        return "QF_LIRA" if "int" in f else "QF_LRA"


class ScriptBuilder:
    """Collects declarations, definitions and assertions; checks names are unique."""

    def __init__(self):
        self.decls: list[str] = []
        self.defs: list[tuple[str, object]] = []
        self.asserts: list[tuple[str, object]] = []
        self.features: set[str] = set()
        self.objective: Objective | None = None
        self.meta: dict = {}
        self.aux: list[str] = []
        self._names: set[str] = set()

    def _fresh(self, name: str) -> str:
        if name in self._names:
            raise InputError(f"SMT name {name!r} is defined twice (two IR values or parameters "
                             "give the same generated name: rename one)")
        self._names.add(name)
        return name

    def declare(self, name: str, aux: bool = False) -> Var:
        """A free real; `aux`: one the script's assertions define (see `Script.aux`)."""
        self.decls.append(self._fresh(name))
        if aux:
            self.aux.append(name)
        return Var(name)

    def define(self, name: str, term) -> Var:
        self.features |= term_features(term)
        self.defs.append((self._fresh(name), term))
        return Var(name)

    def assert_(self, name: str, term) -> None:
        self.features |= term_features(term)
        self.asserts.append((self._fresh(name), term))

    def build(self) -> Script:
        return Script(tuple(self.decls), tuple(self.defs), tuple(self.asserts),
                      frozenset(self.features), self.objective, dict(self.meta), tuple(self.aux))


def atoms(t):
    """Every comparison inside a boolean term (through and/or/not), in order."""
    match t:
        case And() | Or():
            for a in t.args:
                yield from atoms(a)
        case Not():
            yield from atoms(t.arg)
        case Cmp():
            yield t
        case Bool() | Ite() | Var() | Num() | Add() | Mul() | Div() | Dot() | Exp() | Floor():
            pass  # no comparison below a constant; not boolean structure otherwise
        case _:
            unknown_term(t, "nnsmt.terms.atoms")


def linear_form(t) -> tuple[dict[str, Fraction], Fraction] | None:
    """(coefficients by variable, constant) of a linear arithmetic term; None if not linear."""
    match t:
        case Var():
            return {t.name: Fraction(1)}, Fraction(0)
        case Num():
            return {}, t.value
        case Add():
            coeffs: dict[str, Fraction] = {}
            const = Fraction(0)
            for a in t.args:
                f = linear_form(a)
                if f is None:
                    return None
                for k, v in f[0].items():
                    coeffs[k] = coeffs.get(k, Fraction(0)) + v
                const += f[1]
            return {k: v for k, v in coeffs.items() if v}, const
        case Mul():
            forms = [linear_form(a) for a in t.args]
            if any(f is None for f in forms) or sum(bool(f[0]) for f in forms) > 1:
                return None
            coeffs, const = {}, Fraction(1)
            for c, k in forms:
                if c:
                    coeffs = c
                    factor_const = k
                else:
                    const *= k
            if not coeffs:
                return {}, const
            # (sum c_i v_i + k) * const
            return {v: c * const for v, c in coeffs.items() if c * const}, factor_const * const
        case Div() | Dot() | Ite() | Exp() | Floor() | Cmp() | And() | Or() | Not() | Bool():
            return None  # not a linear form (or not arithmetic)
    unknown_term(t, "nnsmt.terms.linear_form")
