"""Any SMT-LIB2 solver binary: `smt2:COMMAND` (e.g. `smt2:z3 -in`) fed the text on stdin."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from fractions import Fraction

from nnsmt.errors import BackendUnavailable
from nnsmt.result import Capabilities, Result, SolveOptions
from nnsmt.terms import Script

from .base import Backend
from .smtlib import to_smtlib

GRACE_S = 0.5
_TOKEN = re.compile(r"\(|\)|[^\s()]+")


def parse_sexprs(text: str) -> list:
    """Nested lists of atoms for every s-expression (and bare atom) in `text`."""
    stack: list[list] = [[]]
    for tok in _TOKEN.findall(text):
        if tok == "(":
            stack.append([])
        elif tok == ")":
            if len(stack) == 1:
                raise ValueError("unbalanced ')' in solver output")
            done = stack.pop()
            stack[-1].append(done)
        else:
            stack[-1].append(tok)
    if len(stack) != 1:
        raise ValueError("unbalanced '(' in solver output")
    return stack[0]


def value_of(e) -> Fraction:
    """Exact value of a solver's real constant: 3, 3.0, 0.25, (- x), (/ x y)."""
    if isinstance(e, str):
        return Fraction(e)
    if e and e[0] == "-" and len(e) == 2:
        return -value_of(e[1])
    if e and e[0] == "/" and len(e) == 3:
        return value_of(e[1]) / value_of(e[2])
    raise ValueError(f"model value {e!r} is not a rational constant")


def find_binary(name: str) -> str | None:
    """`name` on PATH, else in this interpreter's bin folder: pip installs the binaries that
    solver packages ship (z3-solver's `z3`) there, which is not on PATH in an unactivated venv."""
    found = shutil.which(name)
    if found is None and "/" not in name:
        found = shutil.which(name, path=str(Path(sys.executable).parent))
    return found


def command_argv(command: str, scheme: str, example: str, what: str) -> list[str]:
    """The argv of a `SCHEME:COMMAND` backend, its program resolved (`find_binary`), or
    BackendUnavailable naming what is missing."""
    argv = shlex.split(command)
    if not argv:
        raise BackendUnavailable(f"{scheme}: needs a command, e.g. {scheme}:{example}")
    found = find_binary(argv[0])
    if found is None:
        raise BackendUnavailable(f"{what} {argv[0]!r} not found on PATH nor beside this "
                                 f"Python ({Path(sys.executable).parent})")
    return [os.path.abspath(found)] + argv[1:]  # verifiers may run in a folder of their own


class Smt2CommandBackend(Backend):
    """Runs `command` with the script's SMT-LIB2 text (check-sat, get-value) on stdin."""

    def __init__(self, command: str):
        self.argv = command_argv(command, "smt2", "z3 -in", "solver binary")
        self.name = f"smt2:{command}"

    # the binary decides: a feature it lacks comes back as its error
    capabilities = Capabilities(frozenset({"nonlinear", "exp", "int", "optimize"}))

    def run(self, script: Script, timeout: float | None, options: SolveOptions, t0: float) -> Result:
        text = to_smtlib(script)
        t0 = time.perf_counter()  # the solver's time: from the start of its process
        try:
            proc = subprocess.run(self.argv, input=text, capture_output=True, text=True,
                                  timeout=None if timeout is None else timeout + GRACE_S)
        except subprocess.TimeoutExpired:  # subprocess.run kills the child
            return Result("unknown", self.name, "timeout", stats={"solve_s": time.perf_counter() - t0})
        stats = {"solve_s": time.perf_counter() - t0}
        try:
            out = parse_sexprs(proc.stdout)
        except ValueError as e:
            return Result("error", self.name, f"{e}: {proc.stdout[:200]!r}", stats=stats)
        verdicts = [i for i, e in enumerate(out) if e in ("sat", "unsat", "unknown", "timeout")]
        # errors after the verdict come from get-value (e.g. "model is not available" on unsat)
        upto = out[: verdicts[0]] if verdicts else out
        errors = [e for e in upto if isinstance(e, list) and e[:1] == ["error"]]
        if errors or not verdicts:
            msg = " ".join(" ".join(map(str, e[1:])) for e in errors) or proc.stderr.strip()[:300] \
                or f"no verdict (exit code {proc.returncode})"
            return Result("error", self.name, msg, stats=stats)
        v = out[verdicts[0]]
        if v in ("unknown", "timeout"):
            return Result("unknown", self.name, "timeout" if v == "timeout" else "solver said unknown", stats=stats)
        if v == "unsat":
            return Result("unsat", self.name, stats=stats)
        pairs = [p for e in out if isinstance(e, list) for p in e
                 if isinstance(p, list) and len(p) == 2 and isinstance(p[0], str)]
        decls, aux = set(script.decls), set(script.aux)
        model = {}
        for name, val in pairs:
            if name not in decls:
                continue
            try:
                model[name] = value_of(val)
            except (ValueError, ZeroDivisionError) as e:
                if name not in aux:  # an auxiliary's irrational value (a root) is not needed
                    return Result("error", self.name, str(e), stats=stats)
        missing = decls - aux - set(model)
        if missing:
            return Result("error", self.name, f"solver gave no value for {sorted(missing)[:5]}", stats=stats)
        return Result("sat", self.name, model=model, stats=stats)
