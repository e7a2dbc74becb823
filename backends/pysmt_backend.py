"""pySMT bridge: the solver-neutral script as pySMT formulas, solved by any solver pySMT has."""

from __future__ import annotations

import time
from fractions import Fraction

import numpy as np
from pysmt.environment import Environment
from pysmt.exceptions import SolverReturnedUnknownResultError
from pysmt.logics import QF_LRA, QF_NRA
from pysmt.typing import REAL

from nnsmt.errors import BackendUnavailable
from nnsmt.result import Capabilities, Result, SolveOptions
from nnsmt.terms import (Add, And, Bool, Cmp, Div, Dot, Exp, Floor, Ite, Mul, Not, Num, Or, Script, Var,
                         is_symbolic, unknown_term)

from .base import Backend


def installed_solvers() -> list[str]:
    return sorted(Environment().factory.all_solvers())


class ToPysmt:
    """Convert terms of one script; definitions are converted once and shared (a DAG)."""

    def __init__(self, env: Environment):
        self.mgr = env.formula_manager
        self.env: dict[str, object] = {}
        self._nums: dict[Fraction, object] = {}

    def num(self, q) -> object:
        q = Fraction(q)
        c = self._nums.get(q)
        if c is None:
            c = self._nums[q] = self.mgr.Real(q)
        return c

    def term(self, t):
        m = self.mgr
        match t:
            case Var():
                return self.env[t.name]
            case Num():
                return self.num(t.value)
            case Add():
                return m.Plus([self.term(a) for a in t.args]) if t.args else self.num(0)
            case Mul():
                return m.Times([self.term(a) for a in t.args]) if t.args else self.num(1)
            case Div():
                return m.Div(self.term(t.num), self.term(t.den))
            case Dot():
                w, x = t.w, t.x
                if not is_symbolic(w) or not is_symbolic(x):
                    coef, var = (w, x) if not is_symbolic(w) else (x, w)
                    keep = np.flatnonzero(coef != 0)
                    parts = [m.Times(self.num(c), self.env[v]) for c, v in zip(coef[keep], var[keep])]
                else:
                    parts = [m.Times(self.env[a], self.env[b]) for a, b in zip(w, x)]
                if t.bias is not None:
                    parts.append(self.term(t.bias))
                return m.Plus(parts) if parts else self.num(0)
            case Ite():
                return m.Ite(self.term(t.cond), self.term(t.then), self.term(t.other))
            case Cmp():
                a, b = self.term(t.lhs), self.term(t.rhs)
                return {"<=": m.LE, "<": m.LT, ">=": m.GE, ">": m.GT, "=": m.Equals}[t.op](a, b)
            case And():
                return m.And([self.term(a) for a in t.args])
            case Or():
                return m.Or([self.term(a) for a in t.args])
            case Not():
                return m.Not(self.term(t.arg))
            case Bool():
                return m.Bool(t.value)
            case Exp():
                raise BackendUnavailable("pySMT has no exp")
            case Floor():
                raise BackendUnavailable("the pySMT bridge has no to_int (rounding to integers)")
        unknown_term(t, "pySMT translation")


def script_to_pysmt(script: Script, env: Environment | None = None):
    """(formula, {declared name: symbol}) for a script; definitions are inlined as shared DAG
    nodes, every assertion is conjoined."""
    env = env or Environment()
    conv = ToPysmt(env)
    syms = {n: env.formula_manager.Symbol(n, REAL) for n in script.decls}
    conv.env.update(syms)
    for name, t in script.defs:
        conv.env[name] = conv.term(t)
    formula = env.formula_manager.And([conv.term(t) for _, t in script.asserts])
    return formula, syms


def _fraction(v) -> Fraction:
    c = v.constant_value()
    return Fraction(int(c.numerator), int(c.denominator)) if hasattr(c, "numerator") else Fraction(str(c))


class PysmtBackend(Backend):
    def __init__(self, solver: str):
        if solver not in installed_solvers():
            raise BackendUnavailable(f"pySMT has no solver {solver!r} installed "
                                     f"(installed: {', '.join(installed_solvers()) or 'none'})")
        self.solver = solver
        self.name = f"pysmt:{solver}"

    capabilities = Capabilities(frozenset({"nonlinear"}), why_not=(
        ("exp", "pySMT has no exp"), ("int", "the pySMT bridge has no to_int (rounding to integers)"),
        ("optimize", "the pySMT bridge does not optimise (use bisection)")))

    def run(self, script: Script, timeout: float | None, options: SolveOptions, t0: float) -> Result:
        env = Environment()
        formula, syms = script_to_pysmt(script, env)
        logic = QF_NRA if "nonlinear" in script.features else QF_LRA
        # pySMT has no portable timeout: callers that need a hard deadline use solve_isolated
        with env.factory.Solver(name=self.solver, logic=logic) as s:
            if timeout is not None and self.solver == "z3":
                s.z3.set("timeout", max(1, int(timeout * 1000)))
            s.add_assertion(formula)
            t1 = time.perf_counter()
            try:
                sat = s.solve()
            except SolverReturnedUnknownResultError:
                return Result("unknown", self.name, "timeout or incomplete",
                              stats={"build_s": t1 - t0, "solve_s": time.perf_counter() - t1})
            stats = {"build_s": t1 - t0, "solve_s": time.perf_counter() - t1}
            if not sat:
                return Result("unsat", self.name, stats=stats)

            def value(n):
                try:
                    return _fraction(s.get_value(syms[n]))
                except Exception as e:  # e.g. an algebraic number
                    raise ValueError(f"model value is not rational: {e}") from None
            return self.sat(script, value, stats)
