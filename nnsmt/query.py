"""The query protocol every query type implements, and the one result type of the driver.

A query compiles itself to a solver-neutral `Script`, certifies a model of that script (an
exact replay, and a float replay where the source runs in onnxruntime), and may refine itself
after a rejected candidate (a piecewise-linear sigmoid relaxation, CEGIS, δ-sat margins).
`nnsmt.engine.driver` runs any query on any backend and returns an `Outcome`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Any, Callable, Mapping, Protocol

from .errors import ValidationError
from .result import Result, SolveOptions
from .terms import Script

# what every command reports: sat (a certified witness), unsat (a proof for the query's
# semantics), unknown (timeout, δ-sat that did not replay, an undecided relaxation), error (a
# solver failed, or an exact query's model failed the replay: never reported as sat)
OUTCOMES = ("sat", "unsat", "unknown", "error")


class Query(Protocol):
    """What the driver needs of a query.

    Attributes:
        kind: "verify", "train", "robustness", ... (reported in `Outcome.query`).
        options: the `SolveOptions` this query asks of solvers.
        relaxed: a model of the compiled script need not be a witness (a sound relaxation):
            a model that fails `certify` and cannot be refined is unknown, not an error.
        proves_unsat (optional, default True): False when the script strengthens the question
            (phase hints, coarse stand-ins of data, a strict threshold): its models are still
            certified, but its unsat proves nothing, and `settle` asks
            `refine_unsat(core)` for the next query instead (None: unknown).
    """

    kind: str
    options: SolveOptions
    relaxed: bool

    def compile(self) -> Script:
        """The solver-neutral script: sat iff (for exact queries) the question has a witness."""

    def certify(self, model: Mapping[str, Fraction]) -> Any:
        """The witness a model gives, checked; raises `nnsmt.errors.ValidationError` if none."""

    def refine(self, model: Mapping[str, Fraction], error: Exception) -> "Query | None":
        """A stronger query after `model` failed `certify` with `error`, or None."""


@dataclass(frozen=True)
class Outcome:
    """The driver's answer to one query, whichever engine and backend ran it.

    Attributes:
        status: one of OUTCOMES.
        query: the query's kind.
        backend: the backend that answered ("" when no solver was needed, e.g. bounds).
        engine: how the answer was reached, e.g. "plain", "bounded", "split(4096)", "bounds".
        reason: why, for unknown/error (e.g. "timeout").
        witness: the certified witness of a sat (e.g. `nnsmt.validate.Counterexample`).
        notes: what an answer means where it is not plain (a relaxation, δ-sat, float checks).
        rounds: solver calls made (refinement rounds, sub-queries).
        stats: timings in seconds and counters.
    """

    status: str
    query: str
    backend: str = ""
    engine: str = "plain"
    reason: str = ""
    witness: Any = None
    notes: tuple[str, ...] = ()
    rounds: int = 0
    stats: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict:
        """The JSON-ready fields every command prints with --json (the witness is the query's)."""
        return {"status": self.status, "query": self.query, "engine": self.engine,
                "backend": self.backend, "reason": self.reason, "notes": list(self.notes),
                "rounds": self.rounds, "stats": dict(self.stats)}


@dataclass(frozen=True)
class ScriptQuery:
    """A query given as a compiled script and a check of its models (`certify(model)` returns
    a witness or raises ValidationError): for scripts built outside a query type."""

    script: Script
    check: Any
    kind: str = "script"
    relaxed: bool = False
    options: SolveOptions = SolveOptions()

    def compile(self) -> Script:
        return self.script

    def certify(self, model):
        return self.check(model)

    def refine(self, model, error):
        return None


def first_line(e: Exception | str) -> str:
    return (str(e).splitlines() or [""])[0]


def settle(query: Query, res: Result) -> Outcome | Query:
    """One solver answer to `query`, settled: an Outcome, or the refined query to solve next.

    sat/δ-sat: the model must pass `query.certify`, else the query may refine itself; a model
    that neither certifies nor refines is unknown for a relaxation or a δ-sat, and an error for
    an exact query (a solver bug: never sat). unsat of a query that does not prove unsat (see
    `Query`) goes to `refine_unsat`. unsat/unknown/error pass through."""
    base = dict(query=query.kind, backend=res.backend)
    if res.status == "unsat" and not getattr(query, "proves_unsat", True):
        nxt = query.refine_unsat(res.core)
        if nxt is not None:
            return nxt
        return Outcome("unknown", reason=f"{query.kind}: the strengthened query has no model, "
                       "and its unsat proves nothing", **base)
    if res.status in ("unsat", "unknown", "error"):
        return Outcome(res.status, reason=res.reason, **base)
    if not res.model and getattr(query, "needs_model", True):
        return Outcome("error", reason=f"{res.backend} answered {res.status} without a model", **base)
    try:
        witness = query.certify(res.model)
    except ValidationError as e:
        nxt = query.refine(res.model, e)
        if nxt is not None:
            return nxt
        if res.status == "delta-sat":
            return Outcome("unknown", reason=f"δ-sat ({res.reason}); its candidate does not replay: "
                           f"{first_line(e)}", **base)
        if query.relaxed:
            return Outcome("unknown", reason="the relaxation's candidate does not replay on the "
                           f"network: {first_line(e)}", **base)
        return Outcome("error", reason=f"solver model fails the replay: {e}", **base)
    notes = tuple(getattr(witness, "notes", ()))
    if res.status == "delta-sat":
        notes += (f"{res.backend} answered δ-sat ({res.reason}); its candidate replays exactly",)
    return Outcome("sat", witness=witness, notes=notes, **base)


def decide(query: Query, solve: Callable[..., Result], timeout: float | None = None, *,
           notes: tuple[str, ...] = (), observe: Callable[[Query, Result], None] | None = None) -> Outcome:
    """Settle `query` round by round with a `nnsmt.result.Solve` callable (compile, solve,
    `settle`, solve the refined query ...), all rounds within `timeout` seconds: the driver's
    policy for queries that call solvers in a loop (bisection, CEGIS, per-neuron questions).
    `observe(query, result)` sees every answer."""
    t0 = time.perf_counter()
    rounds, solver_s = 0, 0.0
    while True:
        left = None if timeout is None else timeout - (time.perf_counter() - t0)
        if left is not None and left <= 0:
            o = Outcome("unknown", query.kind, getattr(solve, "backend", ""), reason="timeout")
            break
        rounds += 1
        res = solve(query.compile(), left, query.options)
        solver_s += sum(v for k, v in res.stats.items() if k in ("parse_s", "solve_s", "build_s"))
        if observe is not None:
            observe(query, res)
        got = settle(query, res)
        if isinstance(got, Outcome):
            o = got
            break
        query = got
    stats = dict(o.stats) | {"solve_s": round(solver_s, 4), "total_s": round(time.perf_counter() - t0, 4)}
    return replace(o, notes=tuple(notes) + o.notes, rounds=rounds, stats=stats)
