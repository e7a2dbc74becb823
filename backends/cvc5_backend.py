"""cvc5 through its Python API, fed the SMT-LIB text via cvc5's own parser."""

from __future__ import annotations

import sys
import time
from fractions import Fraction

import cvc5
from cvc5 import InputLanguage, InputParser, SymbolManager

from nnsmt.result import Capabilities, Result, SolveOptions
from nnsmt.terms import Script

from .base import Backend
from .smtlib import to_smtlib


def _rational(name: str, v) -> Fraction:
    limit = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)  # cvc5 hands values over as text; exp models get long
    try:
        return Fraction(v.getRealValue())
    except Exception as e:  # e.g. an irrational algebraic number
        raise ValueError(f"model value of {name} is not rational: {e}") from None
    finally:
        sys.set_int_max_str_digits(limit)


class Cvc5Backend(Backend):
    name = "cvc5"
    capabilities = Capabilities(frozenset({"nonlinear", "exp", "int"}), frozenset({"want_core", "simplex"}),
                                why_not=(("optimize", "cvc5 has no optimisation (use bisection)"),))

    def run(self, script: Script, timeout: float | None, options: SolveOptions, t0: float) -> Result:
        tm = cvc5.TermManager()
        slv = cvc5.Solver(tm)
        slv.setOption("produce-models", "true")
        want_core = options.want_core
        if want_core:
            slv.setOption("produce-unsat-cores", "true")
        if timeout is not None:
            slv.setOption("tlimit-per", str(max(1, int(timeout * 1000))))
        if options.simplex == "soi":  # measured to help stability's many small LRA queries
            slv.setOption("use-soi", "true")
        logic = script.logic
        slv.setLogic(logic)
        sm = SymbolManager(tm)
        parser = InputParser(slv, sm)
        parser.setStringInput(InputLanguage.SMT_LIB_2_6, to_smtlib(script, commands=False), "nnsmt")
        while True:
            cmd = parser.nextCommand()
            if cmd.isNull():
                break
            cmd.invoke(slv, sm)
        t1 = time.perf_counter()
        r = slv.checkSat()
        t2 = time.perf_counter()
        stats = {"parse_s": t1 - t0, "solve_s": t2 - t1}
        if r.isUnsat():
            core = ()
            if want_core:
                named = sm.getNamedTerms()
                core = tuple(sorted(named[t] for t in slv.getUnsatCore() if t in named))
            return Result("unsat", self.name, stats=stats, core=core)
        if r.isUnknown():
            reason = str(r.getUnknownExplanation())
            if "TIMEOUT" in reason.upper():
                reason = "timeout"
            return Result("unknown", self.name, reason.lower(), stats=stats)
        terms = {str(t): t for t in sm.getDeclaredTerms()}
        return self.sat(script, lambda n: _rational(n, slv.getValue(terms[n])), stats)
