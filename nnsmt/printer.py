"""SMT-LIB 2 text of terms, with exact rational constants: the one term printer (the SMT-LIB
backend prints scripts with it; VNN-LIB text is the same syntax with decimal constants)."""

from __future__ import annotations

from fractions import Fraction
from typing import Callable

import numpy as np

from .terms import (Add, And, Bool, Cmp, Div, Dot, Exp, Floor, Ite, Mul, Not, Num, Or, Var,
                    is_symbolic, unknown_term)


def decimal(q: Fraction) -> str | None:
    """The exact decimal of `q` when it terminates (`-0.5`, `3`), else None."""
    q = Fraction(q)
    p, d = abs(q.numerator), q.denominator
    k, r = 0, d
    for f in (2, 5):
        j = 0
        while r % f == 0:
            r //= f
            j += 1
        k = max(k, j)
    if r != 1:
        return None
    digits = str(p * 10**k // d).rjust(k + 1, "0")
    s = f"{digits[:-k]}.{digits[-k:]}" if k else digits
    return "-" + s if q < 0 else s


def _ratio(n: int, d: int) -> str:
    s = f"{abs(n)}.0" if d == 1 else f"(/ {abs(n)} {d})"
    return f"(- {s})" if n < 0 else s


def fmt_fraction(q: Fraction) -> str:
    """Exact SMT-LIB real constant: 3.0, (/ 3 4), (- (/ 3 4)). Integers are written as decimals
    so that every parser reads a Real, even one that has not been told the logic."""
    return _ratio(q.numerator, q.denominator)


def fmt_float(v: float) -> str:
    """Exact SMT-LIB constant of a float: its integer ratio is already in lowest terms."""
    return _ratio(*v.as_integer_ratio())


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


def fmt_float_array(a: np.ndarray, names=None) -> list[str]:
    """`fmt_float` of every element of a float64 vector, vectorised (exact, same strings); with
    `names`, the products `a[i] * names[i]` instead (as `Printer._times` writes them)."""
    n, k, neg = _dyadic(a)
    if names is None:
        names = [None] * len(n)
    out = []
    for v, num, kk, ng, name in zip(a.tolist(), n.tolist(), k.tolist(), neg.tolist(), names):
        if kk <= 0:  # an integer (or zero)
            s = fmt_float(v)
            out.append(s if name is None else Printer._times(v, s, name))
        else:
            s = f"(- (/ {num} {_POW2[kk]}))" if ng else f"(/ {num} {_POW2[kk]})"
            out.append(s if name is None else f"(* {s} {name})")
    return out


class Printer:
    """Terms as SMT-LIB text. `num` writes a rational constant (default `fmt_fraction`)."""

    def __init__(self, num: Callable[[Fraction], str] = fmt_fraction):
        self.num = num

    def term(self, t) -> str:
        match t:
            case Var():
                return t.name
            case Num():
                return self.num(t.value)
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
            case Floor():  # to_int is floor; to_real keeps every term a Real (cvc5 is strict)
                return f"(to_real (to_int {self.term(t.arg)}))"
        unknown_term(t, "SMT-LIB printer")

    def _coef(self, c) -> str:
        return fmt_float(c) if isinstance(c, float) and self.num is fmt_fraction else self.num(Fraction(c))

    @staticmethod
    def _times(c, text: str, name: str) -> str:
        """c * name, with c written as `text`; 1 and -1 need no product."""
        if c == 1:
            return name
        if c == -1:
            return f"(- {name})"
        return f"(* {text} {name})"

    def _app(self, op, args, unit):
        if not args:
            return unit
        if len(args) == 1:
            return self.term(args[0])
        return f"({op} {' '.join(self.term(a) for a in args)})"

    def dot(self, t: Dot) -> str:
        w, x = t.w, t.x
        if not is_symbolic(w) or not is_symbolic(x):
            # numeric coefficients times names: skip zeros, write 1*v as v
            coef, var = (w, x) if not is_symbolic(w) else (x, w)
            keep = np.flatnonzero(coef != 0)
            c = coef[keep]
            names = var[keep].tolist()
            if c.dtype == np.float64 and self.num is fmt_fraction:  # the hot path: no Fraction
                parts = fmt_float_array(c, names)
            else:
                parts = [self._times(q, self._coef(q), name) for q, name in zip(c, names)]
        else:
            parts = [f"(* {a} {b})" for a, b in zip(w.tolist(), x.tolist())]
        if t.bias is not None and not (isinstance(t.bias, Num) and t.bias.value == 0):
            parts.append(self.term(t.bias))
        if not parts:
            return "0.0"
        return parts[0] if len(parts) == 1 else f"(+ {' '.join(parts)})"

