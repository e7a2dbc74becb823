"""Z3 through its Python API, fed the SMT-LIB text (Z3's C++ parser beats term-by-term calls)."""

from __future__ import annotations

import time
from fractions import Fraction

import z3

from nnsmt.result import Capabilities, Result, SolveOptions
from nnsmt.terms import Script

from .base import Backend
from .smtlib import to_smtlib


def z3_value(v) -> Fraction:
    """Exact value of a Z3 numeral; an irrational algebraic number is refused."""
    if z3.is_rational_value(v):
        return Fraction(v.numerator_as_long(), v.denominator_as_long())
    if z3.is_int_value(v):
        return Fraction(v.as_long())
    raise ValueError(f"model value {v} is not rational")


def _values(m):
    """name -> the exact value of the Real `name` in the Z3 model `m` (ValueError if irrational)."""
    return lambda n: z3_value(m.eval(z3.Real(n), model_completion=True))


class Z3Backend(Backend):
    name = "z3"
    # linear objectives go to Optimize, see solve
    capabilities = Capabilities(frozenset({"nonlinear", "int", "optimize"}), frozenset({"want_core"}),
                                why_not=(("exp", "Z3 has no exp (transcendental functions)"),))

    def run(self, script: Script, timeout: float | None, options: SolveOptions, t0: float) -> Result:
        if script.objective is not None:
            return self._optimize(script, timeout, t0)
        s = z3.SolverFor(script.logic)
        if timeout is not None:
            s.set("timeout", max(1, int(timeout * 1000)))
        want_core = options.want_core
        # named assertions are tracked for cores only when the text itself asks for it
        s.from_string(("(set-option :produce-unsat-cores true)\n" if want_core else "")
                      + to_smtlib(script, commands=False))
        t1 = time.perf_counter()
        r = s.check()
        t2 = time.perf_counter()
        stats = {"parse_s": t1 - t0, "solve_s": t2 - t1}
        if r == z3.unsat:
            core = tuple(sorted(str(c) for c in s.unsat_core())) if want_core else ()
            return Result("unsat", self.name, stats=stats, core=core)
        if r == z3.unknown:
            reason = s.reason_unknown()
            if reason in ("timeout", "canceled"):
                reason = "timeout"
            return Result("unknown", self.name, reason, stats=stats)
        return self.sat(script, _values(s.model()), stats)

    def _optimize(self, script: Script, timeout: float | None, t0: float) -> Result:
        """Z3's Optimize (OMT) for a linear script with an objective. The optimum is returned in
        stats["objective"] as an exact Fraction (a supremum when stats["objective_strict"] is
        1: not attained, e.g. under a strict inequality); the model attains or approaches it."""
        if "nonlinear" in script.features:
            return Result("error", self.name, "Z3's Optimize handles linear objectives and "
                          "constraints only (this script is nonlinear): use bisection")
        o = z3.Optimize()
        if timeout is not None:
            o.set("timeout", max(1, int(timeout * 1000)))
        o.from_string(to_smtlib(script, commands=False))  # includes (maximize ...) / (minimize ...)
        t1 = time.perf_counter()
        r = o.check()
        t2 = time.perf_counter()
        stats = {"parse_s": t1 - t0, "solve_s": t2 - t1}
        if r == z3.unsat:
            return Result("unsat", self.name, stats=stats)
        if r == z3.unknown:
            reason = o.reason_unknown()
            return Result("unknown", self.name, "timeout" if reason in ("timeout", "canceled") else reason,
                          stats=stats)
        is_max = script.objective.sense == "max"
        h = z3.OptimizeObjective(o, 0, is_max)
        inf, val, eps = (h.upper_values() if is_max else h.lower_values())
        if z3_value(inf) != 0:
            return Result("unknown", self.name, "the objective is unbounded", stats=stats)
        stats["objective"] = z3_value(val)
        stats["objective_strict"] = 0.0 if z3_value(eps) == 0 else 1.0
        return self.sat(script, _values(o.model()), stats)
