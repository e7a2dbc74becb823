"""Misbehaving backends for the isolation tests."""

import os
import time

from nnsmt.result import Capabilities, Result

ANY = Capabilities(frozenset({"nonlinear", "exp", "optimize"}))


class Sleepy:
    name = "sleepy"

    capabilities = ANY

    def supports(self, features):
        return None

    def solve(self, script, timeout=None, options=None):  # ignores its timeout, like a stuck solver
        time.sleep(60)
        return Result("unsat", self.name)


class Crashy:
    name = "crashy"

    capabilities = ANY

    def supports(self, features):
        return None

    def solve(self, script, timeout=None, options=None):  # dies the way a segfaulting solver would
        os._exit(139)


class Liar:
    """Says unsat to everything."""

    name = "liar"

    capabilities = ANY

    def supports(self, features):
        return None

    def solve(self, script, timeout=None, options=None):
        return Result("unsat", self.name)


class Bogus:
    """Says sat with a model that puts every declared variable at 1000."""

    name = "bogus"

    capabilities = ANY

    def supports(self, features):
        return None

    def solve(self, script, timeout=None, options=None):
        from fractions import Fraction
        return Result("sat", self.name, model={n: Fraction(1000) for n in script.decls})
