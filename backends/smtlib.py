"""SMT-LIB 2.6 text printer: exact rational constants, one define-fun per value, named asserts.

Output is deterministic: it depends only on the script.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from nnsmt import __version__
from nnsmt.terms import (Add, And, Bool, Cmp, Div, Dot, Exp, Ite, Mul, Not, Num, Or, Script, Var,
                         is_symbolic)


def fmt_fraction(q: Fraction) -> str:
    """Exact SMT-LIB real constant: 3.0, (/ 3 4), (- (/ 3 4)). Integers are written as decimals
    so that every parser reads a Real, even one that has not been told the logic."""
    n, d = q.numerator, q.denominator
    s = f"{abs(n)}.0" if d == 1 else f"(/ {abs(n)} {d})"
    return f"(- {s})" if n < 0 else s


def fmt_float(v: float) -> str:
    """Exact SMT-LIB constant of a float: its integer ratio is already in lowest terms."""
    n, d = v.as_integer_ratio()
    s = f"{abs(n)}.0" if d == 1 else f"(/ {abs(n)} {d})"
    return f"(- {s})" if n < 0 else s


_POW2 = [str(2**k) for k in range(1100)]  # denominators of float64 values


def _dyadic(a: np.ndarray):
    """(n, k, negative) with a == (-1)**negative * n / 2**k in lowest terms, vectorised.
    Elements that are integers (k <= 0) or zero come back with k <= 0: format them exactly
    one by one."""
    m, e = np.frexp(a)
    mant = (m * 2.0**53).astype(np.int64)  # exact: a == mant * 2**(e - 53)
    low = mant & -mant  # lowest set bit: strip trailing zero bits to reach lowest terms
    tz = np.log2(np.where(low == 0, 1, np.abs(low))).astype(np.int64)
    n = np.abs(mant) >> tz
    k = np.where(mant == 0, 0, 53 - e - tz)
    return n, k, mant < 0


def fmt_float_array(a: np.ndarray) -> list[str]:
    """`fmt_float` of every element of a float64 vector, vectorised (exact, same strings)."""
    n, k, neg = _dyadic(a)
    out = []
    for v, num, kk, ng in zip(a.tolist(), n.tolist(), k.tolist(), neg.tolist()):
        if kk <= 0:
            out.append(fmt_float(v))
        elif ng:
            out.append(f"(- (/ {num} {_POW2[kk]}))")
        else:
            out.append(f"(/ {num} {_POW2[kk]})")
    return out


class Printer:
    def term(self, t) -> str:
        match t:
            case Var():
                return t.name
            case Num():
                return fmt_fraction(t.value)
            case Dot():
                return self.dot(t)
            case Add():
                return self._app("+", t.args, "0.0")
            case Mul():
                return self._app("*", t.args, "1.0")
            case Cmp():
                return f"({t.op} {self.term(t.lhs)} {self.term(t.rhs)})"
            case Ite():
                return f"(ite {self.term(t.cond)} {self.term(t.then)} {self.term(t.other)})"
            case And():
                return self._app("and", t.args, "true")
            case Or():
                return self._app("or", t.args, "false")
            case Not():
                return f"(not {self.term(t.arg)})"
            case Bool():
                return "true" if t.value else "false"
            case Exp():
                return f"(exp {self.term(t.arg)})"
            case Div():
                return f"(/ {self.term(t.num)} {self.term(t.den)})"
        raise TypeError(f"cannot print {t!r}")

    @staticmethod
    def _term_of(c, name: str) -> str:
        """c * name, written exactly; 1 and -1 need no product."""
        if c == 1:
            return name
        if c == -1:
            return f"(- {name})"
        return f"(* {fmt_float(c) if isinstance(c, float) else fmt_fraction(Fraction(c))} {name})"

    def _app(self, op, args, unit):
        if not args:
            return unit
        if len(args) == 1:
            return self.term(args[0])
        return f"({op} {' '.join(self.term(a) for a in args)})"

    def dot(self, t: Dot) -> str:
        w, x = t.w, t.x
        parts = []
        if not is_symbolic(w) or not is_symbolic(x):
            # numeric coefficients times names: skip zeros, write 1*v as v
            coef, var = (w, x) if not is_symbolic(w) else (x, w)
            keep = np.flatnonzero(coef != 0)
            c = coef[keep]
            names = var[keep].tolist()
            if c.dtype == np.float64:  # the hot path: one f-string a term, no Fraction
                n, k, neg = _dyadic(c)
                for v, num, kk, ng, name in zip(c.tolist(), n.tolist(), k.tolist(), neg.tolist(), names):
                    if kk > 0:
                        parts.append(f"(* (- (/ {num} {_POW2[kk]})) {name})" if ng
                                     else f"(* (/ {num} {_POW2[kk]}) {name})")
                    else:
                        parts.append(self._term_of(v, name))
            else:
                parts = [self._term_of(q, name) for q, name in zip(c, names)]
        else:
            parts = [f"(* {a} {b})" for a, b in zip(w.tolist(), x.tolist())]
        if t.bias is not None and not (isinstance(t.bias, Num) and t.bias.value == 0):
            parts.append(self.term(t.bias))
        if not parts:
            return "0.0"
        return parts[0] if len(parts) == 1 else f"(+ {' '.join(parts)})"


def to_smtlib(script: Script, *, commands: bool = True) -> str:
    """The script as SMT-LIB 2.6 text. With commands=False only declarations, definitions and
    assertions are written (what a native parser is fed before the backend calls check-sat)."""
    p = Printer()
    out = []
    if commands:
        out.append(f"; generated by nnsmt {__version__}")
        for k in sorted(script.meta):
            v = script.meta[k]
            if isinstance(v, (str, int, float)):
                out.append(f"; {k}: {v}")
        out.append("(set-info :smt-lib-version 2.6)")
        out.append("(set-option :produce-models true)")
        out.append(f"(set-logic {script.logic})")
    out.extend(f"(declare-const {n} Real)" for n in script.decls)
    out.extend(f"(define-fun {n} () Real {p.term(t)})" for n, t in script.defs)
    out.extend(f"(assert (! {p.term(t)} :named {n}))" for n, t in script.asserts)
    if script.objective is not None:
        kw = "maximize" if script.objective.sense == "max" else "minimize"
        out.append(f"({kw} {p.term(script.objective.term)})")
    if commands:
        out.append("(check-sat)")
        if script.decls:
            out.append(f"(get-value ({' '.join(script.decls)}))")
        out.append("(exit)")
    return "\n".join(out) + "\n"
