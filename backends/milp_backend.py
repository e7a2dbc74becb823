"""MILP backends (`milp:highs`, `milp:scip`): a piecewise-linear script as a mixed-integer
program. They steer and never prove alone (floating point): a MILP solution is sat only after
the whole script holds on it in exact rationals, and an infeasible MILP is unsat only once
an exact SMT solver (z3) confirms it on the same script.

Lowering: declared variables and definitions are continuous columns (a definition: one
equality row); `Ite(cond, a, b)` is a column with one binary d and big-M rows (d = 1 forces
cond and the value a, d = 0 forces not cond and b); a disjunction is one binary per disjunct,
their sum >= 1; `a < b` is relaxed to `a <= b` (a superset of the real solutions). The big-M
constants come from interval propagation over the script from the bounds it asserts on single
variables (domain boxes, bound lemmas), widened outward. A declared variable the script leaves
unbounded (e.g. training weights) gets a steering box of +-BOX: this only restricts where the
MILP looks, since its answers are checked exactly or confirmed by z3 on the original script.

A float solution that fails the exact check by rounding is polished (`_polish`: the MILP's
binaries fixed, every inequality's slack maximised up to EPS, checked again), then handed to
z3 as the plain LP of the branches the MILP chose (`_repair`), then z3 gets the script itself
in the time left; otherwise the answer is unknown.
"""

from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import replace
from fractions import Fraction

import numpy as np

from nnsmt.errors import BackendUnavailable
from nnsmt.result import UNCONFIRMED_INFEASIBLE, Capabilities, Result, SolveOptions
from nnsmt.terms import (Add, And, Bool, Cmp, Div, Dot, Exp, Floor, Ite, Mul, Not, Num, Or, Script, Var, atoms,
                         is_symbolic, linear_form, unknown_term)
from nnsmt.vnnlib import term_eval

from .base import Backend

SOLVERS = ("highs", "scip")
WHY = "MILP backends take piecewise-linear scripts only"
BOX = 1e3  # the steering box of a declared variable the script leaves unbounded
TOL = 1e-9  # the solvers' feasibility tolerance (tight: the solution is replayed exactly)
EPS = 1e-6  # the polish LP's largest slack on an inequality
SNAP = 1e-8  # a declared value this close to an integer is taken as it (a few times TOL)
INF = math.inf


class Unsupported(Exception):
    """A term the MILP lowering cannot take (reported as an error Result, one line)."""


def _widen(lo: float, hi: float, scale: float) -> tuple[float, float]:
    """[lo, hi] widened outward by a relative margin covering float rounding."""
    m = 1e-7 * (scale + 1.0)  # well above the solvers' tolerances: bounds only steer
    return lo - m, hi + m


class Lowering:
    """A script as columns (lb, ub, integer), rows (coefficients, lo, hi) and an objective."""

    def __init__(self, script: Script, harvest: str | None = None, eps: float = 0.0, near=None):
        """`eps` > 0: the polish LP, whose unconditional inequality rows each get a slack of
        up to eps (maximised: room for rounding, so a float solution satisfies them exactly). A
        row with integer coefficients and bound over columns with integer values in `near` (a
        solution whose columns come first) is exact in float and gets none (sgn_0 >= sgn_1)."""
        self.eps, self.near = eps, near
        self.lb: list[float] = []
        self.ub: list[float] = []
        self.integer: list[bool] = []
        self.rows: list[tuple[dict[int, float], float, float]] = []
        self.obj: dict[int, float] = {}
        self.col: dict[str, int] = {}
        self.boxed: list[str] = []  # declared variables given the steering box
        self.ites: dict[int, tuple[int, int, Ite]] = {}  # id(term) -> (column, binary, term)
        self.ors: dict[int, tuple[list[int], Or]] = {}  # id(top-level Or) -> (binaries, term)
        self.harvest: list[int] = []
        known = {}
        for _, f in script.asserts:
            _merge(known, _implied_bounds(f))
        for n in script.decls:
            lo, hi = known.get(n, (-INF, INF))
            if not (math.isfinite(lo) and math.isfinite(hi)):
                self.boxed.append(n)
                lo, hi = (lo if math.isfinite(lo) else -BOX), (hi if math.isfinite(hi) else BOX)
            lo, hi = min(lo, hi), max(lo, hi)  # contradictory bounds: the assertion rows say so
            self.col[n] = self.new(*_widen(lo, hi, max(abs(lo), abs(hi))))
        self.n_decls = len(self.lb)  # the columns whose values become the model (exactly)
        for n, t in script.defs:
            e = self.lin(t)
            lo, hi = self.bounds(e)
            alo, ahi = known.get(n, (-INF, INF))
            tlo, thi = max(lo, _widen(alo, alo, abs(alo))[0]), min(hi, _widen(ahi, ahi, abs(ahi))[1])
            if tlo <= thi:  # (contradictory asserted bounds: their rows make the MILP infeasible)
                lo, hi = tlo, thi
            c = self.new(lo, hi)
            self.col[n] = c
            row = {k: -v for k, v in e[0].items()}
            row[c] = row.get(c, 0.0) + 1.0
            self.rows.append((row, e[1], e[1]))
        for n, f in script.asserts:
            if n == harvest and isinstance(f, Or):
                bs = self.disjunction(({}, 1.0), f.args)
                self.harvest = bs
                self.ors[id(f)] = (bs, f)
                for b in bs:
                    self.obj[b] = 1.0
            else:
                self.imply(({}, 1.0), f, top=True)

    def new(self, lo: float, hi: float, integer: bool = False) -> int:
        self.lb.append(lo)
        self.ub.append(hi)
        self.integer.append(integer)
        return len(self.lb) - 1

    def binary(self) -> int:
        return self.new(0.0, 1.0, True)

    # -- linear expressions: ({column: coefficient}, constant) --

    def lin(self, t) -> tuple[dict[int, float], float]:
        match t:
            case Var():
                if t.name not in self.col:
                    raise Unsupported(f"variable {t.name} used before it is defined")
                return {self.col[t.name]: 1.0}, 0.0
            case Num():
                return {}, float(t.value)
            case Add():
                out: dict[int, float] = {}
                const = 0.0
                for a in t.args:
                    c, k = self.lin(a)
                    for i, v in c.items():
                        out[i] = out.get(i, 0.0) + v
                    const += k
                return out, const
            case Mul():
                forms = [self.lin(a) for a in t.args]
                if sum(bool(c) for c, _ in forms) > 1:
                    raise Unsupported(f"{WHY} (a product of two unknowns)")
                coef, lin = 1.0, None
                for c, k in forms:
                    if c:
                        lin = (c, k)
                    else:
                        coef *= k
                if lin is None:
                    return {}, coef
                return {i: v * coef for i, v in lin[0].items()}, lin[1] * coef
            case Div():
                c, k = self.lin(t.den)
                if c or k == 0:
                    raise Unsupported(f"{WHY} (a division by an unknown or by 0)")
                c, n = self.lin(t.num)
                return {i: v / k for i, v in c.items()}, n / k
            case Dot():
                out, const = {}, 0.0
                if t.bias is not None:
                    out, const = self.lin(t.bias)
                    out = dict(out)
                sw, sx = is_symbolic(t.w), is_symbolic(t.x)
                if sw and sx:
                    raise Unsupported(f"{WHY} (a product of two unknowns)")
                if not sw and not sx:
                    return out, const + float(sum(float(a) * float(b) for a, b in zip(t.w, t.x)))
                names, coefs = (t.w, t.x) if sw else (t.x, t.w)
                for n, v in zip(names, coefs):
                    v = float(v)
                    if v:
                        i = self.col.get(n)
                        if i is None:
                            raise Unsupported(f"variable {n} used before it is defined")
                        out[i] = out.get(i, 0.0) + v
                return out, const
            case Ite():
                got = self.ites.get(id(t))  # a shared sub-term: one column
                return {(got[0] if got else self.ite(t)): 1.0}, 0.0
            case Exp() | Floor():
                raise Unsupported(f"{WHY} (exp and to_int have no MILP lowering here)")
            case Cmp() | And() | Or() | Not() | Bool():
                raise Unsupported(f"a boolean term used as a number: {type(t).__name__}")
        unknown_term(t, "backends.milp_backend.lin")

    def bounds(self, e) -> tuple[float, float]:
        """Interval of a linear expression over the column bounds, widened outward."""
        c, k = e
        lo = hi = k
        scale = abs(k)
        for i, v in c.items():
            a, b = v * self.lb[i], v * self.ub[i]
            lo += min(a, b)
            hi += max(a, b)
            scale += abs(v) * max(abs(self.lb[i]), abs(self.ub[i]))
        return _widen(lo, hi, scale)

    def _integral(self, e) -> bool:
        """Whether e is evaluated exactly in float at `near`: integer coefficients and values of
        declared variables (a definition's value is recomputed exactly from them)."""
        near = self.near
        if near is None or not float(e[1]).is_integer():
            return False
        return all(v.is_integer() and i < self.n_decls and abs(near[i] - round(near[i])) < 1e-9
                   for i, v in e[0].items())

    def at_boundary(self, f, sol, tol: float = 1e-6) -> bool | None:
        """None if no comparison in condition f is within tol of equality at the solution,
        else f's truth with those comparisons' sides taken as equal."""
        vals, near = {}, False
        for a in atoms(f):
            c, k = self.lin(_diff(a))  # lowered already: no new columns
            v = k + sum(w * sol[i] for i, w in c.items())
            if abs(v) < tol:
                v, near = 0.0, True
            vals[id(a)] = v
        if not near:
            return None

        def truth(g) -> bool:
            match g:
                case Cmp():
                    v = vals[id(g)]
                    return {"<=": v <= 0, "<": v < 0, ">=": v >= 0, ">": v > 0, "=": v == 0}[g.op]
                case And():
                    return all(truth(a) for a in g.args)
                case Or():
                    return any(truth(a) for a in g.args)
                case Not():
                    return not truth(g.arg)
                case Bool():
                    return g.value
            raise Unsupported(f"a {type(g).__name__} term used as a formula")
        return truth(f)

    def ite(self, t: Ite) -> int:
        a, b = self.lin(t.then), self.lin(t.other)
        (alo, ahi), (blo, bhi) = self.bounds(a), self.bounds(b)
        v = self.new(min(alo, blo), max(ahi, bhi))
        d = self.binary()
        self.ites[id(t)] = (v, d, t)
        self.imply(({d: 1.0}, 0.0), t.cond)
        self.imply(({d: -1.0}, 1.0), _negate(t.cond))
        for branch, lit in ((a, ({d: 1.0}, 0.0)), (b, ({d: -1.0}, 1.0))):
            diff = ({**{i: -w for i, w in branch[0].items()}}, -branch[1])
            diff[0][v] = diff[0].get(v, 0.0) + 1.0  # v - branch
            self.leq(lit, diff)
            self.leq(lit, _scale(diff, -1.0))
        return v

    # -- booleans: imply(lit, f) makes f hold whenever the 0/1 expression lit is 1 --

    def leq(self, lit, e, tight: bool = True) -> None:
        """lit = 1 forces e <= 0: e <= U (1 - lit), U an upper bound of e."""
        lc, lk = lit
        if not lc:  # an unconditional row (lit is the constant 1)
            if lk >= 1.0:
                row = dict(e[0])
                if tight and self.eps > 0 and not self._integral(e):
                    # e + t <= 0, t in [0, eps], the sum of the t maximised: slack where the
                    # row can have it (a row that must be tight, e.g. a dead unit's, keeps 0)
                    t = self.new(0.0, self.eps)
                    row[t] = 1.0
                    self.obj[t] = 1.0
                self.rows.append((row, -INF, -e[1]))
            return
        hi = self.bounds(e)[1]
        if hi <= 0:
            return  # holds on the bounds already
        if not math.isfinite(hi):
            raise Unsupported("a big-M constant would be infinite (an unbounded expression under "
                              "a condition)")
        row = dict(e[0])  # e + U lit <= U (1 - lk) ... with lit = lc.x + lk
        for i, w in lc.items():
            row[i] = row.get(i, 0.0) + hi * w
        self.rows.append((row, -INF, hi - e[1] - hi * lk))

    def imply(self, lit, f, top: bool = False) -> None:
        match f:
            case Cmp():
                d = self.lin(_diff(f))  # lhs - rhs
                if f.op in ("<=", "<", "="):
                    self.leq(lit, d, f.op != "=")
                if f.op in (">=", ">", "="):
                    self.leq(lit, _scale(d, -1.0), f.op != "=")
            case And():
                for a in f.args:
                    self.imply(lit, a, top)
            case Or():
                if len(f.args) == 1:
                    return self.imply(lit, f.args[0], top)
                bs = self.disjunction(lit, f.args)
                if top:
                    self.ors[id(f)] = (bs, f)
            case Not():
                self.imply(lit, _negate(f.arg), top)
            case Bool():
                if not f.value:
                    lc, lk = lit
                    self.rows.append((dict(lc), -INF, -lk))  # lit <= 0
            case _:
                raise Unsupported(f"a {type(f).__name__} term used as a formula")

    def disjunction(self, lit, args) -> list[int]:
        bs = [self.binary() for _ in args]
        lc, lk = lit
        row = {b: 1.0 for b in bs}  # sum b >= lit
        for i, w in lc.items():
            row[i] = row.get(i, 0.0) - w
        self.rows.append((row, lk, INF))
        for b, a in zip(bs, args):
            self.imply(({b: 1.0}, 0.0), a)
        return bs


def _scale(e, s: float):
    return {i: v * s for i, v in e[0].items()}, e[1] * s


def _negate(f):
    """not f, pushed inward (a < b relaxes later; `=` negates to a disjunction)."""
    match f:
        case Cmp():
            flip = {"<=": ">", "<": ">=", ">=": "<", ">": "<="}
            if f.op == "=":
                return Or((Cmp("<", f.lhs, f.rhs), Cmp(">", f.lhs, f.rhs)))
            return Cmp(flip[f.op], f.lhs, f.rhs)
        case And():
            return Or(tuple(_negate(a) for a in f.args))
        case Or():
            return And(tuple(_negate(a) for a in f.args))
        case Not():
            return f.arg
        case Bool():
            return Bool(not f.value)
    raise Unsupported(f"a {type(f).__name__} term used as a formula")


def _chosen_disjuncts(f: Or, bs, sol):
    """The disjuncts of `f` the MILP made hold (all of them: a harvest keeps its count)."""
    on = [a for a, b in zip(f.args, bs) if sol[b] > 0.5] or [f.args[int(np.argmax([sol[b] for b in bs]))]]
    return on[0] if len(on) == 1 else And(tuple(on))


def _diff(c: Cmp):
    """lhs - rhs of a comparison, as a term."""
    return Add((c.lhs, Mul((Num(-1), c.rhs))))


def _relax(f):
    """f with every strict comparison made non-strict (a weaker formula)."""
    match f:
        case Cmp():
            return Cmp({"<": "<=", ">": ">="}.get(f.op, f.op), f.lhs, f.rhs)
        case And():
            return And(tuple(_relax(a) for a in f.args))
        case Or():
            return Or(tuple(_relax(a) for a in f.args))
        case Not():
            return _relax(_negate(f.arg))
    return f


def _single(f) -> tuple[str, float, float] | None:
    """(name, lo, hi) when the comparison bounds one variable (c*v op k), else None."""
    lf = linear_form(_diff(f))
    if lf is None or len(lf[0]) != 1:
        return None
    (n, c), = lf[0].items()
    v = float(-lf[1] / c)  # c*n + k op 0  <=>  n op' -k/c
    op = f.op if c > 0 else {"<=": ">=", "<": ">", ">=": "<=", ">": "<", "=": "="}[f.op]
    if op in ("<=", "<"):
        return n, -INF, v
    if op in (">=", ">"):
        return n, v, INF
    return n, v, v


def _implied_bounds(f) -> dict[str, tuple[float, float]]:
    """Bounds on single variables every model of `f` satisfies (an Or: the hull of its
    disjuncts' bounds on the variables every disjunct bounds)."""
    match f:
        case Cmp():
            s = _single(f)
            return {} if s is None else {s[0]: (s[1], s[2])}
        case And():
            out: dict = {}
            for a in f.args:
                _merge(out, _implied_bounds(a))
            return out
        case Or():
            parts = [_implied_bounds(a) for a in f.args]
            if not parts:
                return {}
            common = set(parts[0]).intersection(*parts[1:])
            return {n: (min(p[n][0] for p in parts), max(p[n][1] for p in parts)) for n in common}
    return {}


def _merge(out: dict, more: dict) -> None:
    for n, (lo, hi) in more.items():
        a, b = out.get(n, (-INF, INF))
        out[n] = (max(a, lo), min(b, hi))


# -- the exact check: the script evaluated in rationals --

def exact_env(script: Script, model: dict[str, Fraction]) -> dict:
    """The model with every definition of `script` evaluated exactly on it (in order)."""
    env = dict(model)
    for n, t in script.defs:
        env[n] = term_eval(t, env)
    return env


def exact_failure(script: Script, model: dict[str, Fraction]) -> str | None:
    """None if every assertion of `script` holds exactly on `model`, else the first that fails."""
    try:
        env = exact_env(script, model)
        for n, f in script.asserts:
            if term_eval(f, env) is not True:
                return n
    except (TypeError, ZeroDivisionError, KeyError) as e:
        return f"not evaluable ({e})"
    return None


# -- the solvers: (status, values of every column or None, incumbents) --

_BANNER_SHOWN = False


def _quiet_highs():
    """A Highs object; HiGHS prints its banner on stdout (at the C level) the first time, which
    would corrupt --json output: it goes to /dev/null."""
    global _BANNER_SHOWN
    import highspy
    if _BANNER_SHOWN:
        return highspy.Highs()
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            h = highspy.Highs()
    finally:
        os.dup2(saved, 1)
        os.close(saved)
    _BANNER_SHOWN = True
    return h


def _run_highs(m: Lowering, timeout: float | None, collect: bool):
    import highspy
    h = _quiet_highs()
    for k, v in (("output_flag", False), ("threads", 1), ("mip_feasibility_tolerance", TOL),
                 ("primal_feasibility_tolerance", TOL), ("mip_rel_gap", 0.0)):
        h.setOptionValue(k, v)
    if timeout is not None:
        h.setOptionValue("time_limit", max(0.01, float(timeout)))
    n = len(m.lb)
    h.addVars(n, np.array(m.lb, dtype=float), np.array(m.ub, dtype=float))
    ints = np.array([i for i, b in enumerate(m.integer) if b], dtype=np.int32)
    if len(ints):
        h.changeColsIntegrality(len(ints), ints, np.array([highspy.HighsVarType.kInteger] * len(ints)))
    if m.rows:
        starts, idx, val, lo, hi = [], [], [], [], []
        for row, a, b in m.rows:
            starts.append(len(idx))
            idx.extend(row.keys())
            val.extend(row.values())
            lo.append(a)
            hi.append(b)
        h.addRows(len(m.rows), np.array(lo, dtype=float), np.array(hi, dtype=float), len(idx),
                  np.array(starts, dtype=np.int32), np.array(idx, dtype=np.int32), np.array(val, dtype=float))
    if m.obj:
        cols = np.array(list(m.obj), dtype=np.int32)
        h.changeColsCost(len(cols), cols, np.array(list(m.obj.values()), dtype=float))
        h.changeObjectiveSense(highspy.ObjSense.kMaximize)
    found = []
    if collect:
        h.cbMipSolution.subscribe(lambda e: found.append(np.array(e.data_out.mip_solution, dtype=float)))
    h.run()
    st = h.getModelStatus()
    S = highspy.HighsModelStatus
    has = h.getInfo().primal_solution_status == 2  # kSolutionStatusFeasible
    sol = np.array(h.getSolution().col_value, dtype=float) if has else None
    if st == S.kOptimal:
        return ("feasible" if has else "infeasible"), sol, found
    if st == S.kInfeasible:
        return "infeasible", None, found
    if st in (S.kTimeLimit, S.kInterrupt, S.kSolutionLimit, S.kIterationLimit):
        return ("feasible" if has else "timeout"), sol, found
    return f"HiGHS model status {h.modelStatusToString(st)}", sol, found


def _run_scip(m: Lowering, timeout: float | None, collect: bool):
    from pyscipopt import SCIP_EVENTTYPE, Eventhdlr, Model, quicksum
    s = Model()
    s.hideOutput()
    s.setParam("numerics/feastol", TOL)
    s.setParam("limits/gap", 0.0)
    if timeout is not None:
        s.setParam("limits/time", max(0.01, float(timeout)))
    big = s.infinity()
    clip = lambda v: big if v == INF else (-big if v == -INF else v)  # noqa: E731
    xs = [s.addVar(lb=clip(lo), ub=clip(hi), vtype="B" if integer and lo >= 0 and hi <= 1 else
                   ("I" if integer else "C")) for lo, hi, integer in zip(m.lb, m.ub, m.integer)]
    for row, a, b in m.rows:
        e = quicksum(v * xs[i] for i, v in row.items())
        if a == b:
            s.addCons(e == a)
        else:
            if a > -INF:
                s.addCons(e >= a)
            if b < INF:
                s.addCons(e <= b)
    if m.obj:
        s.setObjective(quicksum(v * xs[i] for i, v in m.obj.items()), "maximize")
    found = []
    if collect:
        class Collect(Eventhdlr):
            def eventinit(self):
                self.model.catchEvent(SCIP_EVENTTYPE.BESTSOLFOUND, self)

            def eventexit(self):
                self.model.dropEvent(SCIP_EVENTTYPE.BESTSOLFOUND, self)

            def eventexec(self, event):
                sol = self.model.getBestSol()
                found.append(np.array([self.model.getSolVal(sol, x) for x in xs], dtype=float))
        s.includeEventhdlr(Collect(), "nnsmt_collect", "collects every incumbent")
    s.optimize()
    st = s.getStatus()
    sol = None
    if s.getNSols() > 0:
        best = s.getBestSol()
        sol = np.array([s.getSolVal(best, x) for x in xs], dtype=float)
    if st == "optimal":
        return ("feasible" if sol is not None else "infeasible"), sol, found
    if st == "infeasible":
        return "infeasible", None, found
    if st in ("timelimit", "userinterrupt", "sollimit", "bestsollimit", "nodelimit", "gaplimit"):
        return ("feasible" if sol is not None else "timeout"), sol, found
    return f"SCIP status {st}", sol, found


RUNNERS = {"highs": _run_highs, "scip": _run_scip}


def _polisher(solver: str):
    """The solver of the polish LP: HiGHS when installed (SCIP declared polish LPs with slacks
    of 1e-6 infeasible that HiGHS solves: its epsilons are coarser), else the MILP's own."""
    try:
        __import__("highspy")
        return RUNNERS["highs"]
    except ImportError:
        return RUNNERS[solver]


class MilpBackend(Backend):
    """A MILP solver steering an exact answer (see the module docstring)."""

    # want_core: every unsat comes from z3's confirmation, which gives the core
    capabilities = Capabilities(frozenset(), frozenset({"harvest", "want_core"}),
                                why_not=(("nonlinear", WHY + " (no products of unknowns)"),
                                         ("exp", WHY + " (no exp)"),
                                         ("int", WHY + " (no to_int/floor)"),
                                         ("optimize", WHY + " (no objectives)")))

    def __init__(self, solver: str):
        solver = solver.strip()
        if solver not in SOLVERS:
            raise BackendUnavailable(f"unknown MILP solver {solver!r} in 'milp:{solver}'; "
                                     f"choose from {', '.join('milp:' + s for s in SOLVERS)}")
        __import__("highspy" if solver == "highs" else "pyscipopt")  # ImportError: not installed
        self.solver = solver
        self.name = f"milp:{solver}"

    def run(self, script: Script, timeout: float | None, options: SolveOptions, t0: float) -> Result:
        try:
            res = self._run(script, timeout, options, t0)
            # the driver counts solve_s: the MILP and every exact step after it
            res.stats["solve_s"] = sum(res.stats.get(k, 0.0) for k in
                                       ("milp_s", "polish_s", "repair_s", "confirm_s"))
            return res
        except Unsupported as e:
            return Result("error", self.name, str(e))
        except Exception as e:  # noqa: BLE001 -- a solver failure is an answer, never a traceback
            msg = (str(e).splitlines() or [""])[0]
            return Result("error", self.name, f"{self.solver} failed: {type(e).__name__}: {msg}")

    def _left(self, timeout, t0):
        return None if timeout is None else max(0.0, timeout - (time.perf_counter() - t0))

    def _run(self, script: Script, timeout, options: SolveOptions, t0: float) -> Result:
        if script.objective is not None:
            return Result("error", self.name, f"{WHY}; objectives are not supported: use z3")
        m = Lowering(script, options.harvest)
        t1 = time.perf_counter()
        stats = {"build_s": t1 - t0, "milp_cols": float(len(m.lb)), "milp_rows": float(len(m.rows)),
                 "milp_boxed": float(len(m.boxed))}
        status, sol, found = RUNNERS[self.solver](m, self._left(timeout, t0), bool(m.harvest))
        t2 = time.perf_counter()
        stats["milp_s"] = t2 - t1
        models, seen = [], set()
        for v in found:
            got = self._model(script, m, v)
            key = tuple(got.values())
            if key not in seen:
                seen.add(key)
                models.append(got)
        models = tuple(models)
        if status == "feasible":
            model = self._model(script, m, sol)
            bad = exact_failure(script, model)
            if bad is None:
                return Result("sat", self.name, model=model, stats=stats, models=models)
            got = self._polish(script, m, sol, timeout, t0, stats)
            if got is None:
                got = self._repair(script, m, sol, timeout, t0, stats)
            if got is None:  # last resort: z3 on the script itself, in the time left
                got = self._confirm(script, timeout, t0, stats,
                                    f"MILP solution fails the exact check (assertion {bad})", options)
            return replace(got, models=models)
        if status == "timeout":
            return Result("unknown", self.name, "timeout", stats=stats, models=models)
        if status == "infeasible":
            return self._confirm(script, timeout, t0, stats, UNCONFIRMED_INFEASIBLE, options)
        return Result("error", self.name, status, stats=stats)

    @staticmethod
    def _model(script, m: Lowering, values) -> dict[str, Fraction]:
        """Exact values of the declared variables; a value within SNAP of an integer is taken
        as that integer (a candidate only: the exact check decides)."""
        out = {}
        for n in script.decls:
            v = float(values[m.col[n]])
            r = round(v)
            out[n] = Fraction(r) if abs(v - r) <= SNAP else Fraction(v)
        return out

    def _z3(self, script: Script, seconds, options: SolveOptions = SolveOptions()):
        from . import get_backend
        return get_backend("z3").solve(script, seconds, SolveOptions(want_core=options.want_core))

    @staticmethod
    def _chosen(script, m: Lowering, sol) -> Script:
        """A conjunctive LP: every ite replaced by the branch the MILP chose (its condition,
        non-strict, asserted), every top-level disjunction by its chosen disjunct. Its models
        need not be models of the script at a boundary: the exact check decides."""
        on = {k: sol[d] > 0.5 for k, (_, d, _) in m.ites.items()}
        conds = []

        def pick(t):
            match t:
                case Ite():
                    if id(t) not in on:
                        return t
                    a = on[id(t)]
                    conds.append(_relax(t.cond if a else _negate(t.cond)))
                    return pick(t.then if a else t.other)
                case Add() | Mul():
                    return type(t)(tuple(pick(a) for a in t.args))
                case Div():
                    return Div(pick(t.num), pick(t.den))
                case Dot():
                    return t if t.bias is None else Dot(t.w, t.x, pick(t.bias))
                case Cmp():
                    return Cmp(t.op, pick(t.lhs), pick(t.rhs))
                case And():
                    return And(tuple(pick(a) for a in t.args))
                case Or():
                    got = m.ors.get(id(t))
                    if got is not None:
                        return pick(_chosen_disjuncts(t, got[0], sol))
                    return Or(tuple(pick(a) for a in t.args))
                case Not():
                    return Not(pick(t.arg))
            return t

        defs = tuple((n, pick(t)) for n, t in script.defs)
        asserts = tuple((n, pick(f)) for n, f in script.asserts)
        asserts += tuple((f"milp_fix_{i}", f) for i, f in enumerate(conds))
        return Script(script.decls, defs, asserts, script.features, None, script.meta, script.aux)

    def _polish(self, script, m: Lowering, sol, timeout, t0, stats, rounds: int = 8) -> Result | None:
        """The MILP's choices fixed and the slack of every inequality maximised (up to EPS):
        a float solution of that LP usually holds exactly (rounding stays inside the slack).
        A condition on its boundary (a pre-activation at 0, which the MILP may take either
        way) first takes the side its exact evaluation takes there (z >= 0 holds at 0:
        active); where an assertion on the same columns then fails exactly, the other side."""
        t = time.perf_counter()
        fixed, boundary = {}, {}
        for k, (_, d, ite) in m.ites.items():
            on = m.at_boundary(ite.cond, sol)
            fixed[k] = float(round(sol[d]) if on is None else on)
            if on is not None:
                boundary[k] = {i for a in atoms(ite.cond) for i in m.lin(_diff(a))[0]}
        try:
            for _ in range(rounds):
                left = self._left(timeout, t0)
                if left is not None and left <= 0:
                    return None
                p = Lowering(script, eps=EPS, near=sol)
                for k, v in fixed.items():
                    p.lb[p.ites[k][1]] = p.ub[p.ites[k][1]] = v
                for k, (bs, _) in m.ors.items():
                    for b, c in zip(bs, p.ors[k][0]):
                        p.lb[c] = p.ub[c] = float(round(sol[b]))
                status, psol, _ = _polisher(self.solver)(p, left, False)
                if status != "feasible":
                    return None
                model = self._model(script, p, psol)
                try:
                    env = exact_env(script, model)
                    failed = [a for _, f in script.asserts if term_eval(f, env) is not True for a in atoms(f)
                              if term_eval(a, env) is not True]
                except (TypeError, ZeroDivisionError, KeyError):
                    return None
                if not failed:
                    return Result("sat", self.name, "MILP choices, LP polished", model=model, stats=stats)
                cols = {i for a in failed for i in m.lin(_diff(a))[0]}
                flip = [k for k, used in boundary.items() if used & cols]
                if not flip:
                    return None
                for k in flip:
                    fixed[k] = 1.0 - fixed[k]
                    del boundary[k]
            return None
        finally:
            stats["polish_s"] = time.perf_counter() - t

    def _repair(self, script, m: Lowering, sol, timeout, t0, stats) -> Result | None:
        """The MILP's choices fixed, the rest an exact LP for z3. None if that fails too."""
        fixed = self._chosen(script, m, sol)
        left = self._left(timeout, t0)
        if left is not None and left <= 0:
            return None
        t = time.perf_counter()
        try:
            r = self._z3(fixed, left)
        except BackendUnavailable:
            return None
        stats["repair_s"] = time.perf_counter() - t
        if r.status == "sat" and exact_failure(script, r.model) is None:
            return Result("sat", self.name, "MILP choices, exact LP by z3", model=r.model, stats=stats)
        return None

    def _confirm(self, script, timeout, t0, stats, why: str, options: SolveOptions = SolveOptions()) -> Result:
        """z3 on the script itself: an infeasible MILP is unsat only once z3 says so; `why`
        starts the reason of an unknown."""
        left = self._left(timeout, t0)
        if left is not None and left <= 0:
            return Result("unknown", self.name, f"{why}: no time left to confirm", stats=stats)
        t = time.perf_counter()
        try:
            r = self._z3(script, left, options)
        except BackendUnavailable as e:
            return Result("unknown", self.name, f"{why}: {e}", stats=stats)
        stats["confirm_s"] = time.perf_counter() - t
        if r.status == "unsat":
            return Result("unsat", self.name, "confirmed by z3" + (
                " (the MILP was infeasible)" if why == UNCONFIRMED_INFEASIBLE else ""), stats=stats,
                core=r.core)
        if r.status == "sat":
            stats["milp_wrong"] = 1.0 if why == UNCONFIRMED_INFEASIBLE else 0.0
            return Result("sat", self.name, "model by z3", model=r.model, stats=stats)
        return Result("unknown", self.name, f"{why}: z3 {r.status} ({r.reason or 'no reason'})", stats=stats)
