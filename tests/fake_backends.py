"""Misbehaving backends for the isolation tests."""

import os
import time

from nnsmt.result import Result


class Sleepy:
    name = "sleepy"

    def supports(self, features):
        return None

    def solve(self, script, timeout=None):  # ignores its timeout, like a stuck solver
        time.sleep(60)
        return Result("unsat", self.name)


class Crashy:
    name = "crashy"

    def supports(self, features):
        return None

    def solve(self, script, timeout=None):  # dies the way a segfaulting solver would
        os._exit(139)


class Liar:
    """Says unsat to everything."""

    name = "liar"

    def supports(self, features):
        return None

    def solve(self, script, timeout=None):
        return Result("unsat", self.name)


class Bogus:
    """Says sat with a model that puts every declared variable at 1000."""

    name = "bogus"

    def supports(self, features):
        return None

    def solve(self, script, timeout=None):
        from fractions import Fraction
        return Result("sat", self.name, model={n: Fraction(1000) for n in script.decls})
