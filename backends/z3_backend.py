"""Z3 through its Python API, fed the SMT-LIB text (Z3's C++ parser beats term-by-term calls)."""

from __future__ import annotations

import time
from fractions import Fraction

import z3

from nnsmt.result import Result
from nnsmt.terms import Script

from .smtlib import to_smtlib


def z3_value(v) -> Fraction:
    """Exact value of a Z3 numeral; an irrational algebraic number is refused."""
    if z3.is_rational_value(v):
        return Fraction(v.numerator_as_long(), v.denominator_as_long())
    if z3.is_int_value(v):
        return Fraction(v.as_long())
    raise ValueError(f"model value {v} is not rational")


class Z3Backend:
    name = "z3"

    def supports(self, features):
        if "exp" in features:
            return "Z3 has no exp (transcendental functions)"
        if "optimize" in features:
            return None
        return None

    def solve(self, script: Script, timeout: float | None = None) -> Result:
        t0 = time.perf_counter()
        why = self.supports(script.features)
        if why:
            return Result("error", self.name, why)
        s = z3.SolverFor(script.logic)
        if timeout is not None:
            s.set("timeout", max(1, int(timeout * 1000)))
        s.from_string(to_smtlib(script, commands=False))
        t1 = time.perf_counter()
        r = s.check()
        t2 = time.perf_counter()
        stats = {"parse_s": t1 - t0, "solve_s": t2 - t1}
        if r == z3.unsat:
            return Result("unsat", self.name, stats=stats)
        if r == z3.unknown:
            reason = s.reason_unknown()
            if reason in ("timeout", "canceled"):
                reason = "timeout"
            return Result("unknown", self.name, reason, stats=stats)
        m = s.model()
        model = {}
        for n in script.decls:
            v = m.eval(z3.Real(n), model_completion=True)
            try:
                model[n] = z3_value(v)
            except ValueError as e:
                return Result("error", self.name, str(e), stats=stats)
        return Result("sat", self.name, model=model, stats=stats)
