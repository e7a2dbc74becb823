"""Estimate the largest ε (or σ) for a given δ as a certified bracket [lo, hi].

- `lo` always comes with a witness (perturbed parameters and an input) whose quantity was
  evaluated exactly, or with certified enclosures where there is a sigmoid (lo = 0 is the
  nominal network itself).
- `hi` is an unsat answer of the robustness query at `hi` (or, to start with, sound interval
  bounds of the outputs over the domain and the parameter boxes).

Bisection works on every backend: a probe v is the query "ε > v" (resp. "a label flips at
distance >= σ"); unsat lowers hi to v, a certified sat raises lo to the witness's value (>= v).
Native optimisation is used first where the solver declares it (`Capabilities.features`): an
exact optimiser on linear scripts (e.g. a fixed input with only the first layer's weights
perturbed, or only biases perturbed), a δ-complete minimiser on nonlinear ones; its optimum is
never trusted as such: its model is replayed (a lo witness) and its value is certified by an
unsat probe (hi), then bisection closes any gap. On a δ-complete solver, δ-sat answers whose
candidates do not replay exactly cannot raise lo: they only steer the search, and the final
bracket says where δ-sat was seen.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from fractions import Fraction

from ..errors import InputError
from ..result import Capabilities, SolveOptions
from ..sigmoid import SIGMOID_ENCODINGS
from .robustness import (Encoding, Question, Witness, analyse, build, check, needs_sigmoid,
                         query_bounds, replay, witness_from_model)

OBJECTIVES = ("eps", "sigma")
METHODS = ("auto", "bisect", "native")


@dataclass
class End:
    """One certified end of a bracket: its value, what proved it and how long that took."""

    value: Fraction
    how: str  # "witness" | "unsat" | "interval bounds" | "nominal network"
    backend: str = ""
    time_s: float = 0.0
    witness: Witness | None = None
    replayed: str | None = None  # a float replay the caller ran too (e.g. "onnxruntime")

    def to_json(self) -> dict:
        d = {"value": float(self.value), "exact": str(self.value), "proved_by": self.how,
             "backend": self.backend or None, "time_s": round(self.time_s, 4)}
        if self.witness is not None:
            d["witness"] = self.witness.to_json() | ({"also_replayed": self.replayed} if self.replayed else {})
        return d


@dataclass
class Bracket:
    """The certified bracket of one quantity ("eps", "sigma above", "sigma below")."""

    quantity: str
    lo: End
    hi: End
    method: str
    stopped: str = ""
    probes: list = field(default_factory=list)  # (value, status, seconds)
    note: str = ""
    delta_sat_at: Fraction | None = None  # highest probe answered δ-sat without a witness
    none: bool = False  # sigma: no label on this side can flip at all

    @property
    def width(self) -> Fraction:
        return self.hi.value - self.lo.value

    def to_json(self) -> dict:
        return {"quantity": self.quantity, "lo": self.lo.to_json(), "hi": self.hi.to_json(),
                "width": float(self.width), "method": self.method, "stopped": self.stopped,
                "probes": [{"value": float(v), "status": s, "time_s": round(t, 4)} for v, s, t in self.probes],
                "note": self.note or None, "no_flip": self.none or None,
                "delta_sat_at": None if self.delta_sat_at is None else float(self.delta_sat_at)}


def _dyadic_mid(lo: Fraction, hi: Fraction) -> Fraction:
    """A short binary rational near the midpoint (keeps the SMT constants small)."""
    w = hi - lo
    k = max(0, math.ceil(-math.log2(float(w))) + 3) if w > 0 else 60
    q = Fraction(round((lo + hi) / 2 * (1 << k)), 1 << k)
    return q if lo < q < hi else (lo + hi) / 2


@dataclass(frozen=True)
class EstimateOptions:
    """How to estimate.

    Attributes:
        tolerance: target bracket width.
        budget: seconds for the whole estimate (the best bracket reached is reported).
        method: "bisect", "native" (native optimisation, then bisection to close any gap) or
            "auto" (native where the solver optimises this script exactly or δ-completely).
        sigmoid: "exp" or "pwl"; "auto" must be resolved by the solver's capabilities before
            `estimate` runs (`nnsmt.engine.robustness.estimate` does).
        pieces: pwl grid segments per sigmoid (refined around rejected candidates).
        query_timeout: seconds per probe (default: what is left of the budget).
    """

    tolerance: Fraction = Fraction(1, 10**6)
    budget: float = 60.0
    method: str = "auto"
    sigmoid: str = "auto"
    pieces: int = 8
    query_timeout: float | None = None

    def __post_init__(self):
        if self.method not in METHODS:
            raise InputError(f"--method: choose auto, bisect or native (got {self.method!r})")
        object.__setattr__(self, "tolerance", Fraction(self.tolerance))
        if self.tolerance <= 0:
            raise InputError(f"--tolerance must be > 0, got {self.tolerance}")
        if not self.budget > 0:
            raise InputError(f"--budget must be > 0 seconds, got {self.budget}")
        if self.sigmoid not in ("auto", *SIGMOID_ENCODINGS):
            raise InputError(f"--sigmoid: choose auto, exp or pwl (got {self.sigmoid!r})")
        if self.pieces < 1:
            raise InputError(f"--pieces needs a positive number of segments, got {self.pieces}")


class _Clock:
    def __init__(self, budget):
        self.t0 = time.perf_counter()
        self.budget = budget

    def left(self) -> float:
        return self.budget - (time.perf_counter() - self.t0)


def estimate(graph, objective: str, solve, *, point=None, domain=None,
             options: EstimateOptions = EstimateOptions()) -> list[Bracket]:
    """Certified brackets for `objective` ("eps" or "sigma") on the symbolic network `graph`.

    Args:
        graph: network whose parameters are symbolic (`nnsmt.params.make_symbolic`).
        objective: "eps" (one bracket) or "sigma" (two: the "above" side, nominal label 1, and
            the "below" side, nominal label 0).
        solve: a `nnsmt.result.Solve` (`nnsmt.engine.driver.solver`); its capabilities decide
            native optimisation and δ-complete retries.
        point / domain: a fixed input (local ε) or an InputDomain (global).
        options: `EstimateOptions`.
    """
    if objective not in OBJECTIVES:
        raise InputError(f"--objective: choose eps or sigma (got {objective!r})")
    if options.sigmoid not in SIGMOID_ENCODINGS:
        raise InputError("--sigmoid auto is resolved by the backend's capabilities before an estimate "
                         "(nnsmt.engine.robustness.estimate)")
    clock = _Clock(options.budget)
    if objective == "eps":
        q = Question("eps", point=point, domain=domain)
        return [_run(graph, q, "eps", None, solve, clock, options)]
    Question("sigma", point=point, domain=domain)  # checks the input part (σ is global: a domain)
    out = []
    for i, side in enumerate(("above", "below")):
        sub = _Clock(clock.left() / (2 - i))  # split what is left between the sides
        out.append(_run(graph, Question("sigma", domain=domain, sides=(side,)), f"sigma {side}", side,
                        solve, sub, options))
    return out


@dataclass
class _Probe:
    """One probe's answer: its status (sat, unsat, unknown, error, or delta-sat: a δ-complete
    solver's candidate that did not replay), witness (certified, or for an undecided probe the
    replay of its last candidate), reason and time."""

    status: str
    witness: Witness | None
    reason: str
    backend: str
    time_s: float


def _probe(graph, q, solve, opts, t) -> _Probe:
    seen = []
    t1 = time.perf_counter()
    o = check(graph, q, solve, opts.sigmoid, opts.pieces, timeout=t, observe=lambda _, r: seen.append(r))
    dt = time.perf_counter() - t1
    w, status = o.witness, o.status
    if status in ("unknown", "error") and o.reason != "timeout":
        cands = [r for r in seen if r.status in ("sat", "delta-sat") and r.model]
        if cands:  # the last candidate's replay: its certified value still bounds the quantity
            try:
                w = witness_from_model(graph, q, cands[-1].model)
            except (KeyError, ValueError):
                w = None
            if any(r.status == "delta-sat" for r in seen):
                status = "delta-sat"
    return _Probe(status, w, o.reason, o.backend or getattr(solve, "backend", ""), dt)


def _run(graph, q, quantity, side, solve, clock, opts: EstimateOptions):
    head = analyse(graph)
    tol, method = opts.tolerance, opts.method
    bounds = query_bounds(graph, q)
    x0 = list(q.point) if q.point is not None else q.domain.center()
    probes: list = []
    notes = []
    if needs_sigmoid(graph, q) and opts.sigmoid == "pwl":
        notes.append("sigmoid by the sound piecewise-linear relaxation (unsat proves; candidates are "
                     "replayed on the network)")

    def run_check(value, t_left):
        qq = Question(q.kind, point=q.point, domain=q.domain, value=value, sides=q.sides)
        t = max(0.05, t_left if opts.query_timeout is None else min(opts.query_timeout, t_left))
        p = _probe(graph, qq, solve, opts, t)
        probes.append((value, p.status, p.time_s))
        return p, p.time_s

    # starting ends: interval bounds above, the nominal network (or a first flip) below
    ob = bounds[head.out]
    if not (all(map(math.isfinite, ob.lo.tolist())) and all(map(math.isfinite, ob.hi.tolist()))):
        raise InputError(f"{graph.source}: the output's interval bounds overflow float64 on this "
                         f"domain, so the bracket has no finite upper end to start from")
    if q.kind == "eps":
        hi0 = max(Fraction(up) - Fraction(lo) for lo, up in zip(ob.lo.tolist(), ob.hi.tolist()))
        hi = End(max(hi0, Fraction(0)), "interval bounds")
        w0 = replay(graph, Question("eps", point=q.point, domain=q.domain), x0, {})
        lo = End(Fraction(0), "nominal network", witness=w0)
    else:
        lvl = head.level
        hi0 = (Fraction(ob.hi[0]) - lvl) if side == "above" else (lvl - Fraction(ob.lo[0]))
        hi = End(max(hi0, Fraction(0)), "interval bounds")
        if hi0 < 0:  # the nominal output never reaches this side of the level
            return Bracket(quantity, End(Fraction(0), "interval bounds"), hi, "bounds", "no input of "
                           "this class in the domain", probes, "; ".join(notes), none=True)
        o, dt = run_check(Fraction(0), clock.left())
        if o.status == "unsat":
            e = End(Fraction(0), "unsat", o.backend, dt)
            return Bracket(quantity, e, e, "bisection", "no label of this class can flip", probes,
                           "; ".join(notes), none=True)
        if o.status != "sat":
            return Bracket(quantity, End(Fraction(0), "none"), hi, "bisection",
                           f"the first query (any flip) was {o.status}: {o.reason}", probes, "; ".join(notes))
        lo = End(o.witness.value, "witness", o.backend, dt, o.witness)
    used = "bisection"
    # native optimisation, then certify its value
    caps = getattr(solve, "capabilities", Capabilities())
    if method in ("auto", "native") and "optimize" in caps.features and lo.value < hi.value:
        nat = _native(graph, q, head, side, solve, caps, bounds, clock, opts, notes)
        if nat is not None:
            used = "native optimisation + certification"
            for w, t_w in nat["witnesses"]:
                if w.value is not None and w.value > lo.value:
                    lo = End(w.value, "witness", nat["backend"], t_w, w)
            cand = nat["candidate"]
            if cand is not None and lo.value <= cand < hi.value and clock.left() > 0:
                if q.kind == "sigma" and cand == lo.value:
                    cand = lo.value + tol / 2  # the optimum is attained: its own probe is sat
                o, dt = run_check(cand, clock.left())
                if o.status == "unsat":
                    hi = End(cand, "unsat", o.backend, dt)
                    if hi.value - lo.value > tol and clock.left() > 0:
                        # a supremum that is not attained: a witness just below it closes the gap
                        o, dt = run_check(max(lo.value, hi.value - tol / 2), clock.left())
                        if o.status == "sat" and o.witness.value > lo.value:
                            lo = End(o.witness.value, "witness", o.backend, dt, o.witness)
                elif o.status == "sat" and o.witness.value > lo.value:
                    lo = End(o.witness.value, "witness", o.backend, dt, o.witness)
        elif method == "native":
            notes.append("native optimisation does not apply here (the script is not linear, or "
                         "the backend has none): bisection only")
    elif method == "native":
        notes.append("native optimisation does not apply here (the backend has none): bisection only")
    # bisection
    search_lo, dsat, undecided, why = lo.value, None, None, ""
    stopped = ""
    while True:
        if hi.value - lo.value <= tol:
            stopped = f"width <= {float(tol):g}"
            break
        if hi.value - search_lo <= tol:
            stopped = (f"δ-sat up to {float(dsat):g}: no witness replays above lo, so the certified "
                       "bracket stays wider than the tolerance" if dsat is not None else
                       f"undecided at {float(undecided):g} ({why}): hi was tightened down to it")
            break
        left = clock.left()
        if left <= 0:
            stopped = "time budget spent"
            break
        v = _dyadic_mid(search_lo, hi.value)
        o, dt = run_check(v, left)
        if o.status == "unsat":
            hi = End(v, "unsat", o.backend, dt)
        elif o.status == "sat":
            if o.witness.value > lo.value:  # certified sat: the witness's value is >= v
                lo = End(o.witness.value, "witness", o.backend, dt, o.witness)
            search_lo = max(search_lo, lo.value)
        elif o.status == "delta-sat":
            w = o.witness  # its certified value still bounds the quantity from below
            if w is not None and w.value is not None and w.value > lo.value:
                lo = End(w.value, "witness", o.backend, dt, w)
            dsat = v if dsat is None else max(dsat, v)
            search_lo = max(search_lo, v)
        else:
            w = o.witness
            if w is not None and w.value is not None and w.value > lo.value:
                lo = End(w.value, "witness", o.backend, dt, w)
                search_lo = max(search_lo, lo.value)
            if o.status == "unknown" and o.reason != "timeout" and o.witness is not None:
                # undecided here (the relaxation's candidates do not replay): keep tightening hi above
                undecided, why = v, o.reason
                search_lo = max(search_lo, v)
                continue
            stopped = f"probe {float(v):g}: {o.status} ({o.reason})"
            break
    return Bracket(quantity, lo, hi, used, stopped, probes, "; ".join(notes), delta_sat_at=dsat)


NATIVE_DELTA = 1e-3  # δ of a δ-complete minimiser: its witness is replayed anyway


def _native(graph, q, head, side, solve, caps, bounds, clock, opts, notes):
    """Optimise natively; None when not applicable. Returns witnesses and a candidate for hi:
    an exact optimiser's value on a linear script (certified afterwards by an unsat probe); a
    δ-complete minimiser's value is δ-approximate, so only its witnesses count."""
    enc = Encoding(opts.sigmoid, opts.pieces, {}, bounds)
    if q.kind == "eps":
        k = len(bounds[head.out].lo)
        objs = [("eps", j, s) for j in range(k) for s in (1, -1)]
    else:
        objs = [("sigma", side)]
    scripts = [build(graph, q, enc, objective=o, kind="estimate") for o in objs]
    features = set().union(*(s.features for s in scripts))
    if caps.refuses("", features) or not caps.delta_complete and features & {"nonlinear", "exp"}:
        return None
    options = SolveOptions(delta=NATIVE_DELTA) if "delta" in caps.options else SolveOptions()
    wits, cands = [], []
    share = clock.left() / 4  # native optimisation gets a quarter of the budget: bisection certifies
    t_end = time.perf_counter() + share
    for s in scripts:
        left = min(clock.left(), t_end - time.perf_counter())
        if left <= 0:
            break
        t1 = time.perf_counter()
        res = solve(s, max(0.05, left if opts.query_timeout is None else min(opts.query_timeout, left)), options)
        dt = time.perf_counter() - t1
        if res.status not in ("sat", "delta-sat"):
            notes.append(f"native optimisation: {res.status} ({res.reason})")
            continue
        w = witness_from_model(graph, q, res.model) if q.kind == "eps" else \
            _sigma_witness(graph, q, res.model, side)
        wits.append((w, dt))
        val = res.stats.get("objective")
        if val is not None and res.status == "sat":  # an exact optimum (not δ-approximate)
            cands.append(_objective_to_value(q, head, side, Fraction(val)))
    backend = getattr(solve, "backend", "")
    notes.append(f"native optimisation on {backend}")
    return {"witnesses": wits, "candidate": max(cands) if cands else None, "backend": backend}


def _sigma_witness(graph, q, model, side):
    from ..params import params_from_model
    from .robustness import input_names
    params = params_from_model(graph, model)
    x = [model[n] for n in input_names(graph)]
    return replay(graph, Question("sigma", domain=q.domain, value=Fraction(0), sides=(side,)), x, params)


def _objective_to_value(q, head, side, val: Fraction) -> Fraction:
    """The optimum of the native objective as a value of the quantity (rounded up)."""
    if q.kind == "eps":
        return val
    if head.logit is None:
        return (val - head.level) if side == "above" else (head.level - val)
    from ..sigmoid import sigmoid_bounds
    if side == "above":
        return sigmoid_bounds(val)[1] - Fraction(1, 2) + Fraction(1, 1 << 50)
    return Fraction(1, 2) - sigmoid_bounds(val)[0] + Fraction(1, 1 << 50)
