"""dReal 4 through its Python API: δ-complete decisions over the reals, with exp.

dReal answers `unsat` (exact: no solution) or `delta-sat` (a box where a δ-weakening of the
formula holds; δ is reported); never plain sat. Its minimiser gives native optimisation on
nonlinear problems. dReal computes with doubles and interval arithmetic: a constant that is not
a float64 becomes a fresh variable boxed by its two neighbouring floats, and a bound `v >= q`
is weakened to the float below q, so an unsat still holds for the exact formula.

When `import dreal` fails, `missing()` says what is missing: the Python package, or which
shared library its native code needs (parsed from the ImportError and by probing each library
the extension links against).
"""

from __future__ import annotations

import ctypes
import functools
import importlib.util
import operator
import os
import re
import struct
import time
from fractions import Fraction

from nnsmt.bounds import down, up
from nnsmt.result import Capabilities, Result, SolveOptions
from nnsmt.terms import (Add, And, Bool, Cmp, Div, Dot, Exp, Floor, Ite, Mul, Not, Num, Or, Script,
                         Var, is_symbolic, unknown_term)

from .base import Backend

DEFAULT_DELTA = 1e-6  # measured on the cats model: 1e-4 boxes often miss; 1e-6 costs no more

# Where each shared library comes from, for the message when it is missing.
LIBRARY_HINTS = {
    "libibex.so": "IBEX 2.7.4 from dReal's fork of ibex-lib, installed under /opt/libibex/2.7.4/lib "
                  "(the path dReal's wheel looks in); it is not packaged by Debian/Ubuntu",
    "libClpSolver.so.1": "Debian/Ubuntu package coinor-libclp1 (or coinor-libclp-dev)",
    "libClp.so.1": "Debian/Ubuntu package coinor-libclp1 (or coinor-libclp-dev)",
    "libCoinUtils.so.3": "Debian/Ubuntu package coinor-libcoinutils3v5 (or coinor-libcoinutils-dev)",
    "libnlopt.so.0": "Debian/Ubuntu package libnlopt0 (or libnlopt-dev)",
    "liblapack.so.3": "Debian/Ubuntu package liblapack3",
    "libblas.so.3": "Debian/Ubuntu package libblas3",
    "libbz2.so.1.0": "Debian/Ubuntu package libbz2-1.0",
    "libz.so.1": "Debian/Ubuntu package zlib1g",
}


def elf_needed(path: str) -> tuple[list[str], list[str]]:
    """(DT_NEEDED libraries, DT_RUNPATH/RPATH directories) of a 64-bit little-endian ELF file."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        return [], []
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    secs = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    dyn = next((s for s in secs if s[1] == 6), None)  # SHT_DYNAMIC
    if dyn is None:
        return [], []
    strtab = secs[dyn[6]]  # sh_link: the dynamic string table
    stroff = strtab[4]

    def cstr(off):
        end = data.index(b"\0", stroff + off)
        return data[stroff + off:end].decode()
    needed, runpath = [], []
    for i in range(dyn[5] // 16):
        tag, val = struct.unpack_from("<qQ", data, dyn[4] + 16 * i)
        if tag == 0:
            break
        if tag == 1:
            needed.append(cstr(val))
        elif tag in (15, 29):  # DT_RPATH, DT_RUNPATH
            runpath += cstr(val).split(":")
    return needed, runpath


def missing(error: BaseException | None = None) -> str:
    """One sentence saying why `import dreal` fails on this machine."""
    spec = importlib.util.find_spec("dreal")
    if spec is None or not spec.submodule_search_locations:
        return "the Python package dreal is not installed (pip install dreal)"
    pkg = list(spec.submodule_search_locations)[0]
    lib = os.path.join(pkg, "libdreal_.so")
    libs: list[str] = []
    if error is not None:  # "libibex.so: cannot open shared object file: ..."
        m = re.search(r"([\w.+-]+\.so[\w.]*): cannot open shared object file", str(error))
        if m:
            libs.append(m.group(1))
    if os.path.exists(lib):
        needed, runpath = elf_needed(lib)
        for name in needed:
            if name in libs:
                continue
            if not _loadable(name, runpath):
                libs.append(name)
    if not libs:
        if error is not None and "undefined symbol" in str(error):
            return (f"the Python package dreal is installed, but the shared library it loaded does not "
                    f"match the one it was built against ({error}); dReal 4.21 needs IBEX 2.7.4 of "
                    "dReal's fork of ibex-lib, built with the optim plugin, in /opt/libibex/2.7.4/lib")
        return f"the Python package dreal is installed but fails to import: {error}"
    parts = [f"{n} ({LIBRARY_HINTS[n]})" if n in LIBRARY_HINTS else n for n in libs]
    return ("the Python package dreal is installed, but its native library cannot load: missing "
            "shared " + ("library " if len(parts) == 1 else "libraries ") + "; ".join(parts))


def _loadable(name: str, runpath: list[str]) -> bool:
    for d in runpath:
        p = os.path.join(d, name)
        if os.path.exists(p):
            try:
                ctypes.CDLL(p)
                return True
            except OSError:
                return False
    try:
        ctypes.CDLL(name)
        return True
    except OSError:
        return False


dreal = None  # the module, imported by `load_dreal` (so `missing` works without it)


def load_dreal():
    """Import dreal once; ImportError carries `missing()`'s sentence (the registry turns it
    into BackendUnavailable)."""
    global dreal
    if dreal is None:
        try:
            import dreal as mod
        except ImportError as e:
            raise ImportError(missing(e)) from None
        dreal = mod
    return dreal


class _Builder:
    """Script terms -> dReal expressions and formulas."""

    def __init__(self, script: Script, margin: float = 0.0):
        self.margin = margin
        self.vars = {n: dreal.Variable(n) for n in script.decls}
        self.env = {n: dreal.Expression(v) for n, v in self.vars.items()}
        self.side: list = []  # constraints of fresh constant variables
        self.fresh = 0
        for name, t in script.defs:
            self.env[name] = self.expr(t)

    def const(self, q) -> object:
        q = Fraction(q)
        f = float(q)
        if Fraction(f) == q:
            return dreal.Expression(f)
        self.fresh += 1
        v = dreal.Variable(f"_c{self.fresh}")
        self.side += [v >= down(q), v <= up(q)]
        return dreal.Expression(v)

    def expr(self, t):
        match t:
            case Var():
                return self.env[t.name]
            case Num():
                return self.const(t.value)
            case Add() | Mul():  # folded from the neutral element
                op, out = (operator.add, 0.0) if isinstance(t, Add) else (operator.mul, 1.0)
                return functools.reduce(op, map(self.expr, t.args), dreal.Expression(out))
            case Div():
                return self.expr(t.num) / self.expr(t.den)
            case Exp():
                return dreal.exp(self.expr(t.arg))
            case Floor():  # the capabilities refuse "int" first; this says why if reached
                raise TypeError("dReal backend: dReal has no to_int (rounding to integers), "
                                "expected a real term without Floor")
            case Ite():
                return dreal.if_then_else(self.formula(t.cond), self.expr(t.then), self.expr(t.other))
            case Dot():
                return self.dot(t)
            case Bool() | Cmp() | And() | Or() | Not():
                raise TypeError(f"dReal backend: {type(t).__name__} is a formula where a real "
                                f"term is expected: {t!r}")
        unknown_term(t, "dReal translation")

    def dot(self, t: Dot):
        w, x = t.w, t.x
        out = self.expr(t.bias) if t.bias is not None else dreal.Expression(0.0)
        sw, sx = is_symbolic(w), is_symbolic(x)
        for a, b in zip(w.tolist(), x.tolist()):
            ea = self.env[a] if sw else None
            eb = self.env[b] if sx else None
            if not sw and Fraction(a) == 0 or not sx and Fraction(b) == 0:
                continue
            ea = ea if sw else self.const(a)
            eb = eb if sx else self.const(b)
            out = out + ea * eb
        return out

    def formula(self, t):
        match t:
            case Bool():
                return dreal.Formula.TRUE() if t.value else dreal.Formula.FALSE()
            case And():
                return dreal.And(*[self.formula(a) for a in t.args]) if len(t.args) > 1 else \
                    (self.formula(t.args[0]) if t.args else dreal.Formula.TRUE())
            case Or():
                return dreal.Or(*[self.formula(a) for a in t.args]) if len(t.args) > 1 else \
                    (self.formula(t.args[0]) if t.args else dreal.Formula.FALSE())
            case Not():
                return dreal.Not(self.formula(t.arg))
            case Cmp():
                return self.cmp(t)
            case Var() | Num() | Add() | Mul() | Div() | Exp() | Floor() | Ite() | Dot():
                raise TypeError(f"dReal backend: {type(t).__name__} is a real term where a "
                                f"formula is expected: {t!r}")
        unknown_term(t, "dReal translation")

    def cmp(self, t: Cmp):
        lhs, rhs, op = t.lhs, t.rhs, t.op
        if self.margin and op != "=":  # strengthened: a < b becomes a < b - margin (see run)
            m = dreal.Expression(self.margin)
            side = self.expr(rhs) - m if op in ("<", "<=") else self.expr(rhs) + m
            return _OPS[op](self.expr(lhs), side)
        # a bound against a non-float constant is weakened to the neighbouring float (sound)
        if isinstance(rhs, Num) and Fraction(float(rhs.value)) != rhs.value and op != "=":
            q = rhs.value
            c = down(q) if op in (">", ">=") else up(q)
            return _OPS[op](self.expr(lhs), dreal.Expression(c))
        if isinstance(lhs, Num) and Fraction(float(lhs.value)) != lhs.value and op != "=":
            q = lhs.value
            c = up(q) if op in (">", ">=") else down(q)
            return _OPS[op](dreal.Expression(c), self.expr(rhs))
        return _OPS[op](self.expr(lhs), self.expr(rhs))


_OPS = {"<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b,
        ">=": lambda a, b: a >= b, "=": lambda a, b: a == b}


class DrealBackend(Backend):
    name = "dreal"
    capabilities = Capabilities(frozenset({"nonlinear", "exp", "optimize"}), frozenset({"delta", "margin"}),
                                delta_complete=True,
                                why_not=(("int", "dReal has no to_int (rounding to integers)"),))

    def __init__(self, delta: float = DEFAULT_DELTA):
        load_dreal()
        self.delta = delta

    def run(self, script: Script, timeout: float | None, options: SolveOptions, t0: float) -> Result:
        """δ-decide the script (δ: `options.delta`, else the backend's). A model is the centre
        of dReal's box; stats["delta"] is the δ used. `timeout` is not enforced by dReal
        itself: callers run it in a child process killed at the deadline.

        `options.margin` = m > 0 strengthens every comparison by m (a < b becomes a < b - m):
        its δ-sat boxes then tend to satisfy the original strictly, so they are where to look
        for a witness that replays; its unsat says nothing about the original and is returned
        as unknown."""
        delta = float(options.delta if options.delta is not None else self.delta)
        margin = float(options.margin)
        try:
            b = _Builder(script, margin)
            f = dreal.And(*([b.formula(t) for _, t in script.asserts] + b.side + [dreal.Formula.TRUE()] * 2))
        except TypeError as e:
            return Result("error", self.name, str(e))
        t1 = time.perf_counter()
        if script.objective is not None:
            obj = b.expr(script.objective.term)
            if script.objective.sense == "max":
                obj = -obj
            box = dreal.Minimize(obj, f, delta)
        else:
            box = dreal.CheckSatisfiability(f, delta)
        t2 = time.perf_counter()
        stats = {"parse_s": t1 - t0, "solve_s": t2 - t1, "delta": delta}
        if box is None:
            if margin:
                return Result("unknown", self.name, f"no δ-sat box with comparisons strengthened "
                              f"by {margin:g}", stats=stats)
            return Result("unsat", self.name, stats=stats)
        model = {}
        for n, v in b.vars.items():
            iv = box[v]
            model[n] = Fraction(iv.mid())
        return Result("delta-sat", self.name, f"δ-sat with δ = {delta:g}", model=model, stats=stats)
