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
