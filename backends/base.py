"""What the solver backends share (z3, cvc5, dReal, pySMT, an SMT-LIB2 binary): capability
checks before solving, and a sat `Result` read from the solver's model value by value."""

from __future__ import annotations

import time
from typing import Callable

from nnsmt.result import Capabilities, Result, SolveOptions
from nnsmt.terms import Script

# Longer limits than this are no limit: solvers take theirs as 32-bit milliseconds or as
# integers that a limit like 1e300 s overflows (a bad-option error, not an answer).
NO_LIMIT_BEYOND_S = 1e6


class Backend:
    """A backend that declares `capabilities`: `solve` refuses a script with a feature it does
    not have (an error `Result` saying why) and otherwise calls `run`, its solver."""

    name: str
    capabilities: Capabilities

    def supports(self, features) -> str | None:
        """Why the backend cannot take a script with these features, or None."""
        return self.capabilities.refuses(self.name, features)

    def solve(self, script: Script, timeout: float | None = None,
              options: SolveOptions = SolveOptions()) -> Result:
        """Solve `script` within `timeout` seconds; timings from now are in the result's stats."""
        t0 = time.perf_counter()
        why = self.supports(script.features)
        if why:
            return Result("error", self.name, why)
        if timeout is not None and timeout > NO_LIMIT_BEYOND_S:
            timeout = None
        return self.run(script, timeout, options, t0)

    def run(self, script: Script, timeout: float | None, options: SolveOptions, t0: float) -> Result:
        """The solver on a script it can take (`t0`: when `solve` was called)."""
        raise NotImplementedError

    def sat(self, script: Script, value: Callable[[str], object], stats: dict) -> Result:
        """sat with `value(name)` of every declared variable, or an error with the message of
        the first ValueError (a value that is not rational); an auxiliary (`Script.aux`, e.g. a
        root defined by assertions) whose value is not rational is left out of the model."""
        model = {}
        aux = set(script.aux)
        for n in script.decls:
            try:
                model[n] = value(n)
            except ValueError as e:
                if n not in aux:
                    return Result("error", self.name, str(e), stats=stats)
        return Result("sat", self.name, model=model, stats=stats)
